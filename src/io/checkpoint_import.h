// What a user may tell about a model file, shared by every reader: for a timm / Hugging Face
// checkpoint (a .safetensors file without vitopt metadata) the facts its tensors do not carry
// (heads, config.json location), and for any file the preprocessing and token-merging overrides.
// A checkpoint is always read through io/checkpoint_convert.h's one conversion (heads from
// config.json or --import-heads, never guessed), whichever command reads it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vitopt::io {

struct ImportHints {
  std::optional<int> num_heads;            // --import-heads (must agree with config.json)
  std::filesystem::path config_json;       // --import-config (empty: config.json next to the file)
  std::optional<std::vector<float>> mean;  // --mean override (any file)
  std::optional<std::vector<float>> std;   // --std override (any file)
  // --merge-r override (any file): a token-merging schedule (io/merge_schedule.h) replacing the
  // stored one, so both engines and every count read the same overridden config.
  std::optional<std::string> merge_r;
};

}  // namespace vitopt::io
