// ViTConfig: everything needed to build a ViT, as plain data with a JSON round trip that keeps
// every field. Stored in the model file's __metadata__ ("vitopt.config") so a file alone rebuilds
// its model; read by both halves (LibTorch module, runtime) through this one definition. Pruning
// and search edit `blocks` (per-block heads/MLP widths/skips/ranks/sharing) with the weights.
// Legend: C embed dim, H heads, D head dim, M MLP width, P patch, N tokens.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vitopt::io {

// Input preprocessing the model expects (like timm's pretrained_cfg).
struct Preprocess {
  std::vector<float> mean{0.5f};  // per channel, applied after scaling pixels to [0, 1]
  std::vector<float> std{0.5f};   // per channel (one value broadcasts to every channel)
  std::string interpolation = "bilinear";  // "bilinear", "bicubic" or "nearest"
  float crop_pct = 1.0f;  // eval: resize to image_size / crop_pct, then center crop (e.g. 0.875)
  bool operator==(const Preprocess&) const = default;
};

// One transformer block. Defaults (0 / empty) mean "as the model-level value"; normalize() makes
// num_heads and mlp_dim explicit.
struct BlockConfig {
  int num_heads = 0;            // H_b: heads kept in this block (0: ViTConfig::num_heads)
  std::vector<int> kept_heads;  // original head indices kept, for bookkeeping (may be empty)
  int mlp_dim = 0;              // M_b: hidden width of fc1 (0: ViTConfig::mlp_dim)
  bool skip_attn = false;       // attention sub-block removed (identity residual)
  bool skip_mlp = false;        // MLP sub-block removed
  int qkv_rank = 0, proj_rank = 0, fc1_rank = 0, fc2_rank = 0;  // low-rank factors (0: dense)
  // Weight sharing (MiniViT-style): the attention's weight matrices (qkv, proj; dense or their
  // factors) and/or the MLP's (fc1, fc2) are an earlier block's (-1: own). Biases and LayerNorms
  // always stay the block's own. delta_rank > 0 adds a per-block low-rank correction to every
  // Linear this block shares, W_b = W_owner + delta_u (out, r) @ delta_v (r, in), stored fp32.
  int attn_shared_with = -1;
  int mlp_shared_with = -1;
  int delta_rank = 0;
  // Token merging (ToMe): tokens merged away between this block's attention and its MLP. The
  // effective count is capped at half the mergeable (non-prefix) tokens and is 0 in a block whose
  // attention is skipped (the keys are the similarity metric): see ViTConfig::merge_at.
  int merge_r = 0;
  bool operator==(const BlockConfig&) const = default;
  bool shares() const { return attn_shared_with >= 0 || mlp_shared_with >= 0; }
};

struct ViTConfig {
  std::string name = "custom";
  int image_size = 28;   // square input side, e.g. 28 (Fashion-MNIST) or 224
  int in_channels = 1;   // 1 (grey) or 3 (RGB)
  int patch_size = 4;    // P: patch side, e.g. 4 or 16
  int embed_dim = 128;   // C: token width, e.g. 128, 192 (DeiT-Tiny), 768 (ViT-B)
  int depth = 6;         // number of blocks
  int num_heads = 4;     // default heads per block
  int head_dim = 0;      // D per head (0: embed_dim / num_heads)
  int mlp_dim = 256;     // default MLP hidden width (4x embed_dim in DeiT/ViT)
  int num_classes = 10;  // K
  bool qkv_bias = true;
  bool distill_token = false;  // DeiT distillation token + second head ("head_dist")
  std::string pool = "token";  // "token" (class token) or "avg" (mean of patch tokens)
  // timm layouts (VisionTransformer's class_token / reg_tokens / no_embed_class / fc_norm). Prefix
  // tokens come first in this order: class, distillation, registers; then the patches.
  bool class_token = true;      // "cls_token" (1, 1, C); without it pool must be "avg"
  int reg_tokens = 0;           // register tokens "reg_token" (1, R, C): attended, never pooled
  bool no_embed_class = false;  // pos_embed covers the patches only (prefix tokens get none)
  bool fc_norm = false;  // final LayerNorm on the pooled (B, C) features ("fc_norm.*") instead of
                         // on every token ("norm.*"), as timm's global_pool="avg" default
  double ln_eps = 1e-6;        // timm's LayerNorm eps
  std::vector<BlockConfig> blocks;  // size depth after normalize(); overrides per block
  Preprocess preprocess;

  // Fills defaults (head_dim, blocks[] of size depth, per-block heads/widths, per-channel mean/std)
  // and checks every value against docs/model-format.md (including the size limits that keep
  // every product of dimensions far from int overflow); throws InputError naming `source` and the
  // field. Idempotent. Every reader calls it, so both halves accept exactly the same configs.
  void normalize(const std::string& source = "config");

  int grid() const { return image_size / patch_size; }  // patches per side
  int num_patches() const { return grid() * grid(); }
  // class + distillation + register tokens: never merged, never in the average pool
  int num_prefix_tokens() const {
    return (class_token ? 1 : 0) + (distill_token ? 1 : 0) + reg_tokens;
  }
  int num_tokens() const { return num_patches() + num_prefix_tokens(); }  // N
  int pos_embed_tokens() const { return no_embed_class ? num_patches() : num_tokens(); }
  // Name of the final LayerNorm's tensors' prefix: "fc_norm" or "norm".
  const char* final_norm_name() const { return fc_norm ? "fc_norm" : "norm"; }
  int patch_features() const { return in_channels * patch_size * patch_size; }
  int block_heads(int b) const;
  int block_mlp(int b) const;
  int block_attn_dim(int b) const { return block_heads(b) * head_dim; }  // H_b * D
  // Token merging: tokens removed in block b when `tokens` enter it (merge_r capped as above).
  int merge_at(int b, int tokens) const;
  // Tokens entering each block and, last, leaving the final one (depth + 1 entries; all
  // num_tokens() without merging).
  std::vector<int> token_counts() const;
  bool merges_tokens() const;  // any block merges

  nlohmann::json to_json() const;
  // Parses every field (unknown fields and wrong types refused, naming `source` and the field).
  // Does not normalize: callers may still edit the config (e.g. command-line overrides) first.
  static ViTConfig from_json(const nlohmann::json& j, const std::string& source = "config");
};

}  // namespace vitopt::io
