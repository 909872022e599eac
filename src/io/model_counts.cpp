// Parameter and MAC counts from a config (see model_counts.h). Checked against instantiated
// modules and a naive counted forward in tests/io and tests/eval.
#include "io/model_counts.h"

#include <functional>
#include <map>
#include <numeric>
#include <string>

#include "io/code_packing.h"
#include "io/tensor_layout.h"

namespace vitopt::io {
namespace {

// Parameters of one Linear (dense, or two factors (out, r) x (r, in) when rank > 0).
int64_t linear_params(int64_t in, int64_t out, bool bias, int64_t rank) {
  return (rank > 0 ? rank * (in + out) : in * out) + (bias ? out : 0);
}

// MACs of one Linear applied to `tokens` rows.
int64_t linear_macs(int64_t tokens, int64_t in, int64_t out, int64_t rank) {
  return tokens * (rank > 0 ? rank * (in + out) : in * out);
}

// Block b's config, or the defaults when `blocks` was never filled (before normalize()).
BlockConfig block_at(const ViTConfig& c, int b) {
  return b < static_cast<int>(c.blocks.size()) ? c.blocks[static_cast<size_t>(b)] : BlockConfig{};
}

int64_t head_dim_of(const ViTConfig& c) {
  return c.head_dim > 0 ? c.head_dim : c.embed_dim / c.num_heads;
}

}  // namespace

std::vector<int64_t> block_params(const ViTConfig& c) {
  const int64_t C = c.embed_dim, D = head_dim_of(c);
  std::vector<int64_t> out;
  for (int b = 0; b < c.depth; ++b) {
    const BlockConfig bc = block_at(c, b);
    const int64_t hd = c.block_heads(b) * D, m = c.block_mlp(b), dr = bc.delta_rank;
    // A shared Linear stores its bias and its delta (rank dr), not the owner's weights.
    auto lin = [&](int64_t in, int64_t out_f, bool bias, int rank, bool shared) {
      if (!shared) return linear_params(in, out_f, bias, rank);
      return (bias ? out_f : 0) + dr * (in + out_f);
    };
    int64_t n = 0;
    if (!bc.skip_attn) {
      const bool sh = bc.attn_shared_with >= 0;
      n += 2 * C + lin(C, 3 * hd, c.qkv_bias, bc.qkv_rank, sh) + lin(hd, C, true, bc.proj_rank, sh);
    }
    if (!bc.skip_mlp) {
      const bool sh = bc.mlp_shared_with >= 0;
      n += 2 * C + lin(C, m, true, bc.fc1_rank, sh) + lin(m, C, true, bc.fc2_rank, sh);
    }
    out.push_back(n);
  }
  return out;
}

int64_t other_params(const ViTConfig& c) {
  const int64_t C = c.embed_dim, K = c.num_classes;
  int64_t n = C * c.patch_features() + C;          // patch_embed.proj
  n += C * c.num_prefix_tokens();                  // cls, dist, register tokens
  n += int64_t{c.pos_embed_tokens()} * C;          // pos_embed
  n += 2 * C;                                      // final norm
  n += (C * K + K) * (c.distill_token ? 2 : 1);    // head (+ head_dist)
  return n;
}

int64_t count_params(const ViTConfig& c) {
  const auto blocks = block_params(c);
  return std::accumulate(blocks.begin(), blocks.end(), other_params(c));
}

int64_t count_macs(const ViTConfig& c) {
  const int64_t C = c.embed_dim, D = head_dim_of(c);
  int64_t n = int64_t{c.num_patches()} * C * c.patch_features();  // patch conv
  int64_t N = c.num_tokens();
  for (int b = 0; b < c.depth; ++b) {
    const BlockConfig bc = block_at(c, b);
    const int64_t h = c.block_heads(b), hd = h * D, m = c.block_mlp(b);
    // A shared Linear also runs its low-rank delta (delta_rank r: r * (in + out) per token).
    const int64_t attn_delta = bc.attn_shared_with >= 0 ? bc.delta_rank : 0;
    const int64_t mlp_delta = bc.mlp_shared_with >= 0 ? bc.delta_rank : 0;
    if (!bc.skip_attn) {
      n += linear_macs(N, C, 3 * hd, bc.qkv_rank);  // qkv
      n += 2 * h * N * N * D;                       // q @ k^T and attn @ v
      n += linear_macs(N, hd, C, bc.proj_rank);     // proj
      n += N * attn_delta * (C + 3 * hd + hd + C);
    }
    if (const int r = c.blocks.empty() ? 0 : c.merge_at(b, static_cast<int>(N)); r > 0) {
      n += ((N + 1) / 2) * (N / 2) * D;  // token merging: cosine similarities of the two halves
      N -= r;                            // the MLP and every later block see N - r tokens
    }
    if (!bc.skip_mlp) {
      n += linear_macs(N, C, m, bc.fc1_rank) + linear_macs(N, m, C, bc.fc2_rank);
      n += N * mlp_delta * 2 * (C + m);
    }
  }
  n += C * c.num_classes * (c.distill_token ? 2 : 1);  // head (+ head_dist)
  return n;
}

int64_t quantized_weight_bytes(int64_t rows, int64_t cols, const WeightQuant& spec) {
  const auto shape = packed_shape(rows, cols, spec.bits);
  const int64_t codes = shape[0] * shape[1] * static_cast<int64_t>(dtype_size(code_dtype(spec.bits)));
  const int64_t n = spec.per_channel ? rows : 1;
  return codes + 4 * n + (spec.symmetric ? 0 : 4 * n);
}

int64_t tensor_bytes(const ViTConfig& c, const std::optional<QuantSpec>& quant) {
  std::map<std::string, const WeightLayout*> weights;
  const auto linears = model_linears(c);
  for (const auto& l : linears)
    for (const auto& w : l.weights) weights[w.name] = &w;
  int64_t n = 0;
  for (const TensorLayout& t : model_tensors(c)) {
    const auto q = quant ? quant->weights.find(t.name) : std::map<std::string, WeightQuant>::const_iterator{};
    if (quant && q != quant->weights.end()) {
      const WeightLayout& w = *weights.at(t.name);
      n += quantized_weight_bytes(w.out, w.in, q->second);
      continue;
    }
    n += 4 * std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<>());
  }
  return n;
}

}  // namespace vitopt::io
