// timm / Hugging Face ViT checkpoints -> a complete vitopt model file, LibTorch-free. The facts a
// checkpoint's tensors do not carry (heads, pooling, preprocessing, layer-norm eps, class names)
// come from the config.json that timm (`model_args`, `architecture`, `pretrained_cfg`) or HF
// (`num_attention_heads`, `layer_norm_eps`, `id2label`) writes next to the weights, or from
// explicit hints; when the heads cannot be known the import is refused, never guessed.
// Layouts: timm names (class token or none, register tokens, position embedding with or without
// the prefix tokens (no_embed_class), token or average pooling, final norm on the tokens or on the
// pooled features (fc_norm), layer scale ls1/ls2.gamma folded exactly into attn.proj / mlp.fc2),
// HF ViT names (q/k/v joined into qkv); qk-norm, attention-pool heads and anything else are
// refused by name. Every reader of a checkpoint goes through this one conversion (the loaders and
// io::read_model_header call it for a file without vitopt metadata).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint_import.h"
#include "io/safetensors.h"

namespace vitopt::io {

// True when `file` has no vitopt metadata (a checkpoint to import).
bool is_foreign_checkpoint(const SafeTensorsFile& file);

// The checkpoint converted: vitopt tensor names (timm's), fp32, "vitopt.config" (+ class names)
// in the metadata. InputError naming the file, the tensor or config field, and what to do.
std::vector<uint8_t> convert_checkpoint_bytes(const SafeTensorsFile& file,
                                              const ImportHints& hints);
SafeTensorsFile convert_checkpoint(const SafeTensorsFile& file, const ImportHints& hints);

}  // namespace vitopt::io
