// Importing a timm/HF ViT checkpoint (a .safetensors file without vitopt metadata): the config is
// inferred from tensor shapes (timm records neither heads nor preprocessing, so those come from
// hints or defaults). The header reader calls it for every file without "vitopt.config". The
// complete conversion (heads from config.json or refused, HF names, layer scale folded) is
// io/checkpoint_convert.h (`vitopt import`), which writes a vitopt file once.
#pragma once

#include <optional>
#include <vector>

#include "io/safetensors.h"
#include "io/vit_config.h"

namespace vitopt::io {

// What the user may tell about a file that does not say it itself (--heads/--mean/--std).
struct ImportHints {
  std::optional<int> num_heads;            // timm files do not record heads (default: C / 64)
  std::optional<std::vector<float>> mean;  // --mean override (any file)
  std::optional<std::vector<float>> std;   // --std override (any file)
  // --merge-r override (any file): a token-merging schedule (io/merge_schedule.h) replacing the
  // stored one, so both engines and every count read the same overridden config.
  std::optional<std::string> merge_r;
};

// The config of a timm-named checkpoint, from the shapes of patch_embed.proj.weight, pos_embed,
// blocks.<i>.*, head.weight (+ dist_token/head_dist): per-block MLP widths and heads (a pruned
// timm-named file) included. Not yet normalized. InputError naming the file and tensor when the
// shapes are not a ViT's.
ViTConfig config_from_checkpoint(const SafeTensorsFile& file, const ImportHints& hints);

}  // namespace vitopt::io
