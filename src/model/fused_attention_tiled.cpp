// Fused attention as batched LibTorch ops on tiles (see fused_attention_tiled.h).
#include "model/fused_attention_tiled.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace vitopt::model::detail {
namespace {

using torch::Tensor;

// Largest tiles along N: 128 bounds a score tile at BH x 128 x 128 (12.5 MiB at BH = 192,
// float32) while keeping the tile GEMMs large enough (64-row tiles measured slower on the CPU,
// where LibTorch's bmm runs one GEMM per matrix).
constexpr int64_t kTile = 128;

// Rows [begin, end) of the token axis.
struct Span {
  int64_t begin, end;
};

// The token-axis tiles of n rows with at most max_tile rows each, balanced: 197 rows with a cap
// of 128 become 99 + 98 rather than 128 + 69, so no tile is a thin sliver that runs the GEMMs
// at poor efficiency while paying the same per-op overhead.
std::vector<Span> tiles(int64_t n, int64_t max_tile) {
  const int64_t count = std::max<int64_t>(1, (n + max_tile - 1) / max_tile);
  std::vector<Span> out;
  for (int64_t t = 0; t < count; ++t) out.push_back({n * t / count, n * (t + 1) / count});
  return out;
}

// (BH, N, ...) -> (BH, tile, ...): a view, so in-place updates land in the full tensor.
Tensor rows(const Tensor& t, Span s) { return t.slice(1, s.begin, s.end); }

// Scores of one tile pair, (BH, tq, tk): qs_i k_j^T (+ the keys' bias). qs is q times scale, so
// the scaling costs one pass over (BH, N, D) instead of one per score tile.
// Only bmm is used for products, never baddbmm / baddbmm_: on the CPU (LibTorch 1.13, generic
// BLAS) those loop over the BH matrices through dispatched select + addmm_ calls, ~8 us of
// overhead per matrix, while bmm calls the GEMM per matrix directly.
Tensor tile_scores(const Tensor& qs_i, const Tensor& k_j, const Tensor& bias, Span keys) {
  auto s = torch::bmm(qs_i, k_j.transpose(1, 2));
  if (bias.defined()) s.add_(bias.slice(2, keys.begin, keys.end));
  return s;
}

// acc += val, where an undefined acc is "nothing yet": the first term is taken as it is, so no
// zero-filled buffer is allocated and swept (fresh pages cost a fault each on this path).
void accumulate(Tensor& acc, Tensor val) {
  if (acc.defined()) {
    acc.add_(val);
  } else {
    acc = std::move(val);
  }
}

// Online softmax of one query tile over the key tiles seen so far; undefined before the first.
struct OnlineSoftmax {
  Tensor m;    // (BH, tq, 1) running row max of the scores
  Tensor l;    // (BH, tq, 1) running row sum of exp(score - m)
  Tensor acc;  // (BH, tq, D) running sum of exp(score - m) v
};

// Folds one key tile's scores s (consumed in place) into the state. Exponents are taken against
// the running max, so nothing overflows; what was accumulated under the old max is rescaled by
// exp(m_old - m_new) <= 1. A row whose scores are all -inf gives NaN, like softmax does.
void absorb_key_tile(OnlineSoftmax& st, Tensor s, const Tensor& v_j) {
  auto m_new = s.amax(-1, /*keepdim=*/true);  // (BH, tq, 1)
  if (st.m.defined()) {
    m_new = torch::maximum(st.m, m_new);
    const auto alpha = st.m.sub_(m_new).exp_();  // old state's weight under the new max
    st.l.mul_(alpha);
    st.acc.mul_(alpha);
  }
  const auto p = s.sub_(m_new).exp_();  // (BH, tq, tk)
  accumulate(st.l, p.sum(-1, /*keepdim=*/true));
  accumulate(st.acc, torch::bmm(p, v_j));
  st.m = m_new;
}

// target = a @ b on the first contribution, target += a @ b after: the sums over tiles land in
// the gradient tensors' views, with no zero fill and no concatenation.
void accumulate_product(const Tensor& target, bool first, const Tensor& a, const Tensor& b) {
  if (!target.defined()) return;
  if (first) {
    auto out = target;  // bmm_out takes a non-const reference to the view
    torch::bmm_out(out, a, b);
  } else {
    target.add_(torch::bmm(a, b));
  }
}

}  // namespace

void tiled_forward(const Tensor& out, const Tensor& lse, const Tensor& qs, const Tensor& k,
                   const Tensor& v, const Tensor& bias) {
  const auto key_tiles = tiles(k.size(1), kTile);
  for (const Span qt : tiles(qs.size(1), kTile)) {
    const auto qs_i = rows(qs, qt);
    OnlineSoftmax st;
    for (const Span kt : key_tiles)
      absorb_key_tile(st, tile_scores(qs_i, rows(k, kt), bias, kt), rows(v, kt));
    auto out_i = rows(out, qt), lse_i = rows(lse, qt);  // views: written in place
    torch::div_out(out_i, st.acc, st.l);
    torch::add_out(lse_i, st.m.squeeze(-1), st.l.log_().squeeze(-1));
  }
}

// FlashAttention-2 backward: key tiles outside (dK_j, dV_j complete after
// one sweep of the query tiles), query tiles inside (dQ_i sums over key tiles). Recomputing S
// costs one more GEMM per tile pair than plain backward (5 instead of 4), the price of not
// keeping P. Per tile pair: P = exp(S - LSE), dV_j += P^T dO_i, dP = dO_i V_j^T,
// dS = P (dP - Delta), dQ_i += dS K_j, dK_j += dS^T Qs_i.
void tiled_backward(const Tensor& qs, const Tensor& k, const Tensor& v, const Tensor& bias,
                    const Tensor& out, const Tensor& lse, const Tensor& dout,
                    const AttentionGrads& g) {
  // Delta_i = sum_j P_ij dP_ij = rowsum(dO * O): the softmax Jacobian's correction term, from
  // (BH, N, D) tensors instead of a (BH, N, N) one.
  const auto delta = (dout * out).sum(-1, /*keepdim=*/true);  // (BH, N, 1)
  const auto query_tiles = tiles(qs.size(1), kTile);
  const auto key_tiles = tiles(k.size(1), kTile);
  for (size_t j = 0; j < key_tiles.size(); ++j) {
    const Span kt = key_tiles[j];
    const auto k_j = rows(k, kt), v_j = rows(v, kt);
    const auto dk_j = g.dk.defined() ? rows(g.dk, kt) : Tensor();
    const auto dv_j = g.dv.defined() ? rows(g.dv, kt) : Tensor();
    for (size_t i = 0; i < query_tiles.size(); ++i) {
      const Span qt = query_tiles[i];
      const auto qs_i = rows(qs, qt), do_i = rows(dout, qt);
      const auto p = tile_scores(qs_i, k_j, bias, kt).sub_(rows(lse, qt).unsqueeze(-1)).exp_();
      accumulate_product(dv_j, i == 0, p.transpose(1, 2), do_i);
      if (!g.dq.defined() && !g.dk.defined()) continue;
      const auto ds = torch::bmm(do_i, v_j.transpose(1, 2)).sub_(rows(delta, qt)).mul_(p);
      accumulate_product(g.dq.defined() ? rows(g.dq, qt) : Tensor(), j == 0, ds, k_j);
      accumulate_product(dk_j, i == 0, ds.transpose(1, 2), qs_i);
    }
  }
}

}  // namespace vitopt::model::detail
