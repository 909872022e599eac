// The model shape as the runtime reads it from a file's "vitopt.config" metadata: the same JSON as
// model::ViTConfig (src/model/vit_config.h), parsed and validated here without LibTorch. Unknown
// fields are refused, so a config feature the runtime does not implement is never ignored.
// Legend: C embed dim, H heads, D head dim, M MLP width, P patch, N tokens.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vitopt::runtime {

struct BlockShape {
  int num_heads = 0;             // H_b (0 in JSON: the model default)
  int mlp_dim = 0;               // M_b (0 in JSON: the model default)
  bool skip_attn = false, skip_mlp = false;
  int qkv_rank = 0, proj_rank = 0, fc1_rank = 0, fc2_rank = 0;  // low-rank factors (0: dense)
  int shared_with = -1;          // reuse the weights of an earlier block (-1: own weights)
};

struct ModelConfig {
  std::string name = "custom";
  int image_size = 28, in_channels = 1, patch_size = 4;
  int embed_dim = 128, depth = 6, num_heads = 4, head_dim = 0, mlp_dim = 256, num_classes = 10;
  bool qkv_bias = true, distill_token = false;
  std::string pool = "token";    // "token" or "avg"
  double ln_eps = 1e-6;
  std::vector<BlockShape> blocks;
  std::vector<float> mean{0.5f}, std{0.5f};
  std::string interpolation = "bilinear";
  float crop_pct = 1.0f;

  int grid() const { return image_size / patch_size; }
  int num_patches() const { return grid() * grid(); }
  int num_prefix_tokens() const { return distill_token ? 2 : 1; }
  int num_tokens() const { return num_patches() + num_prefix_tokens(); }
  int patch_features() const { return in_channels * patch_size * patch_size; }

  // Parses and validates (defaults filled, every override checked); InputError naming `source`.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_json() const;
  int64_t macs() const;  // multiply-accumulates per image (Linears, conv, attention matmuls)
};

}  // namespace vitopt::runtime
