// Fused attention for training as a LibTorch custom autograd function (FlashAttention-2 schedule
// on batched LibTorch ops): forward tiles queries x keys with an online softmax and saves only
// q, k, v, the output and the per-row logsumexp; backward recomputes each probability tile from
// the logsumexp. Every op works on all B*H heads of one tile pair at once, so the per-op overhead
// is paid once per tile pair, not once per head.
// Legend: B batch, H heads, N tokens, D head dim, BH = B*H, tq/tk rows of a query/key tile.
#include "model/fused_attention.h"

#include <cstdlib>

#include <fmt/ranges.h>

#include <algorithm>
#include <string>
#include <utility>

#include "core/error.h"

namespace vitopt::model {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_bias) {
  for (const auto* t : {&q, &k, &v}) {
    if (!t->defined() || t->dim() != 4 || t->sizes() != q.sizes())
      core::throw_internal("fused_attention: q, k, v must all be (B, H, N, D), got q [{}], k [{}], "
                           "v [{}]", fmt::join(q.sizes(), ", "), fmt::join(k.sizes(), ", "),
                           fmt::join(v.sizes(), ", "));
    if (t->scalar_type() != q.scalar_type() || t->device() != q.device())
      core::throw_internal("fused_attention: q, k, v must share dtype and device");
  }
  if (q.scalar_type() != torch::kFloat && q.scalar_type() != torch::kDouble)
    core::throw_internal("fused_attention: expected float32 or float64, got {}",
                         std::string(c10::toString(q.scalar_type())));
  if (!key_bias.defined()) return;
  if (key_bias.dim() != 2 || key_bias.size(0) != q.size(0) || key_bias.size(1) != q.size(2))
    core::throw_internal("fused_attention: key_bias must be (B, N) = [{}, {}], got [{}]",
                         q.size(0), q.size(2), fmt::join(key_bias.sizes(), ", "));
  if (key_bias.scalar_type() != q.scalar_type() || key_bias.device() != q.device())
    core::throw_internal("fused_attention: key_bias must share q's dtype and device");
}

// (B, H, N, D) -> (BH, N, D), contiguous so every row tile is a batch of row-major matrices with
// a fixed stride, which bmm takes as it is (no per-tile copies).
Tensor fold_heads(const Tensor& t) { return t.contiguous().view({-1, t.size(2), t.size(3)}); }

// key_bias (B, N) -> (BH, 1, N) (one row per head, broadcast over query rows), or undefined.
Tensor bias_per_head(const Tensor& key_bias, int64_t heads) {
  if (!key_bias.defined()) return {};
  const int64_t B = key_bias.size(0), N = key_bias.size(1);
  return key_bias.view({B, 1, 1, N}).expand({B, heads, 1, N}).reshape({B * heads, 1, N});
}

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

struct ForwardResult {
  Tensor out;  // (BH, N, D), a view of the (B, H, N, D) output
  Tensor lse;  // (BH, N) row logsumexp of the scores, all backward needs to rebuild P
};

// out_4d: (B, H, N, D) to fill; qs, k, v: (BH, N, D); bias: (BH, 1, N) or undefined.
ForwardResult tiled_forward(const Tensor& out_4d, const Tensor& qs, const Tensor& k,
                            const Tensor& v, const Tensor& bias) {
  const int64_t BH = qs.size(0), N = qs.size(1), D = qs.size(2);
  ForwardResult r{out_4d.view({BH, N, D}), torch::empty({BH, N}, qs.options())};
  const auto key_tiles = tiles(N, kFusedKeyTile);
  for (const Span qt : tiles(N, kFusedQueryTile)) {
    const auto qs_i = rows(qs, qt);
    OnlineSoftmax st;
    for (const Span kt : key_tiles)
      absorb_key_tile(st, tile_scores(qs_i, rows(k, kt), bias, kt), rows(v, kt));
    auto out_i = rows(r.out, qt), lse_i = rows(r.lse, qt);  // views: written in place
    torch::div_out(out_i, st.acc, st.l);
    torch::add_out(lse_i, st.m.squeeze(-1), st.l.log_().squeeze(-1));
  }
  return r;
}

struct Grads {
  Tensor dq, dk, dv;  // (BH, N, D) each; undefined where no gradient was asked for
};

// Per-tile gradient sums, concatenated along N once at the end.
Tensor join(const std::vector<Tensor>& parts) {
  if (parts.empty() || !parts[0].defined()) return {};
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

// FlashAttention-2 backward: key tiles outside (dK_j, dV_j complete after one sweep of the query
// tiles), query tiles inside (dQ_i sums over key tiles). Recomputing S costs one more GEMM per
// tile pair than plain backward (5 instead of 4), the price of not keeping P. Per tile pair: P = exp(S - LSE),
// dV_j += P^T dO_i, dP = dO_i V_j^T, dS = P (dP - Delta), dQ_i += dS K_j, dK_j += dS^T Qs_i;
// dQ's factor scale is applied once at the end (Qs = q * scale already carries dK's).
Grads tiled_backward(const Tensor& qs, const Tensor& k, const Tensor& v, const Tensor& bias,
                     const Tensor& out, const Tensor& lse, const Tensor& dout, double scale,
                     bool need_q, bool need_k, bool need_v) {
  // Delta_i = sum_j P_ij dP_ij = rowsum(dO * O): the softmax Jacobian's correction term, from
  // (BH, N, D) tensors instead of a (BH, N, N) one.
  const auto delta = (dout * out).sum(-1, /*keepdim=*/true);  // (BH, N, 1)
  const auto query_tiles = tiles(qs.size(1), kFusedQueryTile);
  const auto key_tiles = tiles(k.size(1), kFusedKeyTile);
  std::vector<Tensor> dq(query_tiles.size()), dk(key_tiles.size()), dv(key_tiles.size());
  for (size_t j = 0; j < key_tiles.size(); ++j) {
    const Span kt = key_tiles[j];
    const auto k_j = rows(k, kt), v_j = rows(v, kt);
    for (size_t i = 0; i < query_tiles.size(); ++i) {
      const Span qt = query_tiles[i];
      const auto qs_i = rows(qs, qt), do_i = rows(dout, qt);
      const auto p = tile_scores(qs_i, k_j, bias, kt).sub_(rows(lse, qt).unsqueeze(-1)).exp_();
      if (need_v) accumulate(dv[j], torch::bmm(p.transpose(1, 2), do_i));
      if (!need_q && !need_k) continue;
      const auto ds = torch::bmm(do_i, v_j.transpose(1, 2)).sub_(rows(delta, qt)).mul_(p);
      if (need_q) accumulate(dq[i], torch::bmm(ds, k_j));
      if (need_k) accumulate(dk[j], torch::bmm(ds.transpose(1, 2), qs_i));
    }
  }
  Grads g{join(dq), join(dk), join(dv)};
  if (g.dq.defined()) g.dq.mul_(scale);
  return g;
}

// The autograd node. Saved: qs (q * scale, folded), k, v (folded), the output, the logsumexp
// and the folded bias: O(B*H*N*D) in all, never O(B*H*N*N).
struct FusedAttentionFn : public torch::autograd::Function<FusedAttentionFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        double scale, const c10::optional<Tensor>& key_bias) {
    torch::NoGradGuard no_grad;
    // q * scale written straight into a contiguous buffer: one pass over q, whatever its strides.
    auto qs = torch::empty(q.sizes(), q.options());
    torch::mul_out(qs, q, torch::scalar_tensor(scale, q.options()));
    qs = qs.view({-1, q.size(2), q.size(3)});
    const auto kf = fold_heads(k), vf = fold_heads(v);
    const auto bias = bias_per_head(key_bias ? *key_bias : Tensor(), q.size(1));
    auto out = torch::empty(q.sizes(), qs.options());  // (B, H, N, D)
    const auto r = tiled_forward(out, qs, kf, vf, bias);
    ctx->save_for_backward({qs, kf, vf, bias, out, r.lse});  // in the order of enum Saved
    ctx->saved_data["scale"] = scale;
    return out;
  }

  // What forward saves for backward, by position.
  enum Saved { kQScaled = 0, kK, kV, kBias, kOut, kLse };

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    // Gradients are computed under no-grad, so a graph built through them would be silently wrong.
    if (torch::GradMode::is_enabled())
      core::throw_internal("fused_attention: double backward (create_graph) is not supported");
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    const auto& out = saved[kOut];
    const auto sizes = out.sizes();
    const auto dout = fold_heads(grad_out[0]);
    const auto g = tiled_backward(saved[kQScaled], saved[kK], saved[kV], saved[kBias],
                                  fold_heads(out), saved[kLse], dout,
                                  ctx->saved_data["scale"].toDouble(), ctx->needs_input_grad(0),
                                  ctx->needs_input_grad(1), ctx->needs_input_grad(2));
    const auto unfold = [&](const Tensor& t) { return t.defined() ? t.view(sizes) : t; };
    // One entry per forward input: q, k, v, then none for `scale` (a number) and none for the
    // key bias, a constant of this op by design (fused_attention() detaches it).
    return {unfold(g.dq), unfold(g.dk), unfold(g.dv), Tensor(), Tensor()};
  }
};

}  // namespace

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              double scale, const torch::Tensor& key_bias) {
  check_inputs(q, k, v, key_bias);
  // Detached: the bias is a constant of this op (no gradient edge into token merging's sizes).
  // Optional, because Function::apply cannot take an undefined Tensor argument.
  const auto bias = key_bias.defined() ? c10::optional<Tensor>(key_bias.detach()) : c10::nullopt;
  return FusedAttentionFn::apply(q, k, v, scale, bias);
}

namespace {

std::string& attention_mode() {
  static std::string mode = [] {
    const char* env = std::getenv("VITOPT_ATTENTION");
    return std::string(env != nullptr && *env != '\0' ? env : "auto");
  }();
  return mode;
}

}  // namespace

void set_training_attention(const std::string& mode) {
  if (mode != "auto" && mode != "plain" && mode != "fused")
    core::throw_input("attention '{}': expected auto, plain or fused", mode);
  attention_mode() = mode;
}

std::string training_attention() { return attention_mode(); }

bool use_fused_attention(int64_t tokens) {
  const std::string& mode = attention_mode();
  if (mode == "fused") return true;
  if (mode == "plain") return false;
  if (mode != "auto")
    core::throw_input("VITOPT_ATTENTION '{}': expected auto, plain or fused", mode);
  return tokens >= kFusedMinTokens;
}

std::vector<torch::Tensor> fused_attention_saved(const torch::Tensor& out) {
  const auto* node =
      dynamic_cast<const torch::autograd::CppNode<FusedAttentionFn>*>(out.grad_fn().get());
  if (node == nullptr) return {};
  return node->ctx_.get_saved_variables();
}

}  // namespace vitopt::model
