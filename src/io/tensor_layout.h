// The tensors a config implies, by timm name (docs/model-format.md, "Tensors"): every Linear with
// its weight tensor name(s) and (out, in) shape, and every fp32 tensor of an unquantized file.
// The one place the layout is spelled out for the header reader (quant names), the size counts
// and the readers' checks.
// Legend: C embed dim, N tokens, P patch, H_b heads of block b, D head dim, M_b MLP width.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::io {

// One weight matrix y = x @ W^T of a Linear (a low-rank Linear has two: weight_v then weight_u).
struct WeightLayout {
  std::string name;  // tensor name, e.g. "blocks.0.attn.qkv.weight" or ".weight_v"
  int64_t out = 0, in = 0;
};

struct LinearLayout {
  std::string name;                   // e.g. "blocks.0.attn.qkv", "patch_embed.proj", "head"
  int64_t in = 0, out = 0;            // of the whole Linear (patch: in_ch * P * P)
  int64_t rank = 0;                   // 0: dense
  bool bias = true;                   // "<name>.bias" (out)
  std::vector<WeightLayout> weights;  // dense: {(out, in)}; low-rank: {v (r, in), u (out, r)}
                                      // empty when shared (the owner's hold the values)
  std::string shared_from;            // the owner's Linear (weights shared), or empty
  int64_t delta_rank = 0;  // shared only: "<name>.delta_u" (out, r) and ".delta_v" (r, in), fp32
};

struct TensorLayout {
  std::string name;
  std::vector<int64_t> shape;  // as an fp32 file stores it (patch conv: (C, in_ch, P, P))
};

// Linears in module order: patch_embed.proj, per block (not skipped) attn.qkv, attn.proj,
// mlp.fc1, mlp.fc2, then head and head_dist. A Linear of a shared branch is listed with its bias
// and delta and no weights of its own. `c` must be normalized.
std::vector<LinearLayout> model_linears(const ViTConfig& c);
// Every tensor of an fp32 file, sorted by name (the writer's order).
std::vector<TensorLayout> model_tensors(const ViTConfig& c);

}  // namespace vitopt::io
