// timm / Hugging Face ViT checkpoints -> a complete vitopt model file, LibTorch-free. The facts a
// checkpoint's tensors do not carry (heads, pooling, preprocessing, layer-norm eps, class names)
// come from the config.json that timm (`model_args`, `architecture`, `pretrained_cfg`) or HF
// (`num_attention_heads`, `layer_norm_eps`, `id2label`) writes next to the weights, or from
// explicit hints; when the heads cannot be known the import is refused, never guessed.
// Layouts: timm names (class token, token or average pooling without fc_norm, layer scale
// ls1/ls2.gamma folded exactly into attn.proj / mlp.fc2), HF ViT names (q/k/v joined into qkv);
// fc_norm, missing class token, register tokens and anything else are refused by name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace vitopt::io {

struct CheckpointHints {
  std::optional<int> num_heads;            // --import-heads (must agree with config.json)
  std::optional<std::vector<float>> mean;  // --mean / --std override the recorded preprocessing
  std::optional<std::vector<float>> std;
  std::filesystem::path config_json;  // empty: <folder of the checkpoint>/config.json
};

// True when `file` has no vitopt metadata (a checkpoint to import).
bool is_foreign_checkpoint(const SafeTensorsFile& file);

// The checkpoint converted: vitopt tensor names (timm's), fp32, "vitopt.config" (+ class names)
// in the metadata. InputError naming the file, the tensor or config field, and what to do.
std::vector<uint8_t> convert_checkpoint_bytes(const SafeTensorsFile& file,
                                              const CheckpointHints& hints);
SafeTensorsFile convert_checkpoint(const SafeTensorsFile& file, const CheckpointHints& hints);

}  // namespace vitopt::io
