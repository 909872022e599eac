// The tensor layout of a config (see tensor_layout.h).
#include "io/tensor_layout.h"

#include <fmt/format.h>

#include <algorithm>

namespace vitopt::io {
namespace {

LinearLayout linear(const std::string& name, int64_t in, int64_t out, int64_t rank, bool bias) {
  LinearLayout l{name, in, out, rank, bias, {}, {}, 0};
  if (rank > 0) {
    l.weights = {{name + ".weight_v", rank, in}, {name + ".weight_u", out, rank}};
  } else {
    l.weights = {{name + ".weight", out, in}};
  }
  return l;
}

}  // namespace

std::vector<LinearLayout> model_linears(const ViTConfig& c) {
  const int64_t C = c.embed_dim;
  std::vector<LinearLayout> out;
  out.push_back(linear("patch_embed.proj", c.patch_features(), C, 0, true));
  for (int b = 0; b < c.depth; ++b) {
    const BlockConfig& s = c.blocks[static_cast<size_t>(b)];
    const std::string pre = fmt::format("blocks.{}.", b);
    const int64_t hd = int64_t{s.num_heads} * c.head_dim, m = s.mlp_dim;
    // A shared branch: the owner's weights, this block's biases and delta.
    auto push = [&](int owner, LinearLayout l, const std::string& leaf) {
      if (owner >= 0) {
        l.weights.clear();
        l.shared_from = fmt::format("blocks.{}.{}", owner, leaf);
        l.delta_rank = s.delta_rank;
      }
      out.push_back(std::move(l));
    };
    if (!s.skip_attn) {
      push(s.attn_shared_with, linear(pre + "attn.qkv", C, 3 * hd, s.qkv_rank, c.qkv_bias),
           "attn.qkv");
      push(s.attn_shared_with, linear(pre + "attn.proj", hd, C, s.proj_rank, true), "attn.proj");
    }
    if (!s.skip_mlp) {
      push(s.mlp_shared_with, linear(pre + "mlp.fc1", C, m, s.fc1_rank, true), "mlp.fc1");
      push(s.mlp_shared_with, linear(pre + "mlp.fc2", m, C, s.fc2_rank, true), "mlp.fc2");
    }
  }
  out.push_back(linear("head", C, c.num_classes, 0, true));
  if (c.distill_token) out.push_back(linear("head_dist", C, c.num_classes, 0, true));
  return out;
}

std::vector<TensorLayout> model_tensors(const ViTConfig& c) {
  const int64_t C = c.embed_dim, P = c.patch_size;
  const std::string final_norm = c.final_norm_name();
  std::vector<TensorLayout> t = {{"pos_embed", {1, c.pos_embed_tokens(), C}},
                                 {final_norm + ".weight", {C}},
                                 {final_norm + ".bias", {C}}};
  if (c.class_token) t.push_back({"cls_token", {1, 1, C}});
  if (c.distill_token) t.push_back({"dist_token", {1, 1, C}});
  if (c.reg_tokens > 0) t.push_back({"reg_token", {1, c.reg_tokens, C}});
  for (int b = 0; b < c.depth; ++b) {
    const BlockConfig& s = c.blocks[static_cast<size_t>(b)];
    const std::string pre = fmt::format("blocks.{}.", b);
    for (const auto& [norm, on] : {std::pair{"norm1", !s.skip_attn}, {"norm2", !s.skip_mlp}}) {
      if (!on) continue;
      t.push_back({pre + norm + ".weight", {C}});
      t.push_back({pre + norm + ".bias", {C}});
    }
  }
  for (const LinearLayout& l : model_linears(c)) {
    for (const WeightLayout& w : l.weights) {
      if (l.name == "patch_embed.proj") {
        t.push_back({w.name, {C, c.in_channels, P, P}});
      } else {
        t.push_back({w.name, {w.out, w.in}});
      }
    }
    if (l.bias) t.push_back({l.name + ".bias", {l.out}});
    if (l.delta_rank > 0) {
      t.push_back({l.name + ".delta_u", {l.out, l.delta_rank}});
      t.push_back({l.name + ".delta_v", {l.delta_rank, l.in}});
    }
  }
  std::sort(t.begin(), t.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return t;
}

}  // namespace vitopt::io
