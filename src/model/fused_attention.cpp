// Fused attention for training as a LibTorch custom autograd function: forward saves only q, k,
// v, the output and each row's logsumexp; backward rebuilds the probabilities from the
// logsumexp. On the CPU, heads are spread over the intra-op threads and each runs whole in a
// per-thread workspace (fused_attention_heads.h); elsewhere the tiled batched ops of
// fused_attention_tiled.h run.
// Legend: B batch, H heads, N tokens, D head dim, BH = B*H.
#include "model/fused_attention.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "model/fused_attention_heads.h"
#include "model/fused_attention_tiled.h"

namespace vitopt::model {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

// One head's pointers into the folded (BH, N, D) tensors; the key bias is (B, N), one row per
// image shared by its heads.
template <class T>
detail::HeadInputs<T> head_inputs(const Tensor& qs, const Tensor& k, const Tensor& v,
                                  const Tensor& key_bias, int64_t heads, int64_t h) {
  const int64_t n = qs.size(1), d = qs.size(2), at = h * n * d;
  return {n,
          d,
          qs.data_ptr<T>() + at,
          k.data_ptr<T>() + at,
          v.data_ptr<T>() + at,
          key_bias.defined() ? key_bias.data_ptr<T>() + (h / heads) * n : nullptr};
}

// f(head, workspace) for every head of the fold. With at least as many heads as threads, the
// heads are spread over the intra-op threads and every GEMM runs on its caller's thread; with
// fewer (batch 1 with few heads), heads run one after another and OpenBLAS keeps its threads.
template <class T, class F>
void for_each_head(int64_t bh, int64_t n, const F& f) {
  const auto work = static_cast<size_t>(detail::head_workspace(n));
  if (bh < at::get_num_threads()) {
    std::vector<T> ws(work);
    for (int64_t h = 0; h < bh; ++h) f(h, ws.data());
    return;
  }
  detail::BlasOnOneThread one_blas_thread;
  at::parallel_for(0, bh, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> ws(work);
    for (int64_t h = begin; h < end; ++h) f(h, ws.data());
  });
}

// Tensors of one call, folded: qs (q * scale), k, v, out (BH, N, D) contiguous; lse (BH, N);
// key_bias (B, N) contiguous or undefined.
struct Folded {
  Tensor qs, k, v, key_bias, out, lse;
  int64_t heads;
};

// Whether this call runs the per-head CPU kernels (else the device-generic tiled ops).
bool& tiled_on_cpu() {
  static bool forced = false;
  return forced;
}
bool per_head_kernels(const Tensor& t) { return t.is_cpu() && !tiled_on_cpu(); }

void run_forward(const Folded& f) {
  if (!per_head_kernels(f.qs)) {
    detail::tiled_forward(f.out, f.lse, f.qs, f.k, f.v, bias_per_head(f.key_bias, f.heads));
    return;
  }
  const int64_t n = f.qs.size(1), d = f.qs.size(2);
  AT_DISPATCH_FLOATING_TYPES(f.qs.scalar_type(), "fused_attention_forward", [&] {
    for_each_head<scalar_t>(f.qs.size(0), n, [&](int64_t h, scalar_t* ws) {
      detail::head_forward(head_inputs<scalar_t>(f.qs, f.k, f.v, f.key_bias, f.heads, h),
                           f.out.data_ptr<scalar_t>() + h * n * d,
                           f.lse.data_ptr<scalar_t>() + h * n, ws);
    });
  });
}

// Which input gradients backward must compute: q, k, v.
struct Wanted {
  bool q, k, v;
};

// The gradients (BH, N, D) for q, k and v from the upstream dout; undefined where not wanted.
detail::AttentionGrads run_backward(const Folded& f, const Tensor& dout, double scale,
                                    Wanted want) {
  const auto grad_if = [&](bool wanted) {
    return wanted ? torch::empty(f.qs.sizes(), f.qs.options()) : Tensor();
  };
  const detail::AttentionGrads g{grad_if(want.q), grad_if(want.k), grad_if(want.v)};
  const auto &dq = g.dq, &dk = g.dk, &dv = g.dv;
  if (!per_head_kernels(f.qs)) {
    detail::tiled_backward(f.qs, f.k, f.v, bias_per_head(f.key_bias, f.heads), f.out, f.lse, dout,
                           g);
    if (dq.defined()) dq.mul_(scale);
    return g;
  }
  // delta = rowsum(dO * O): the softmax Jacobian's correction term, one pass for all heads.
  const auto delta = (dout * f.out).sum(-1);  // (BH, N)
  const int64_t n = f.qs.size(1), d = f.qs.size(2);
  AT_DISPATCH_FLOATING_TYPES(f.qs.scalar_type(), "fused_attention_backward", [&] {
    const auto at_head = [&](const Tensor& t, int64_t h) {
      return t.defined() ? t.data_ptr<scalar_t>() + h * n * d : nullptr;
    };
    for_each_head<scalar_t>(f.qs.size(0), n, [&](int64_t h, scalar_t* ws) {
      detail::head_backward(head_inputs<scalar_t>(f.qs, f.k, f.v, f.key_bias, f.heads, h),
                            at_head(dout, h), f.lse.data_ptr<scalar_t>() + h * n,
                            delta.data_ptr<scalar_t>() + h * n, static_cast<scalar_t>(scale),
                            at_head(dq, h), at_head(dk, h), at_head(dv, h), ws);
    });
  });
  return g;
}

// The autograd node. Saved: qs (q * scale, folded), k, v (folded), the key bias (B, N), the
// output and the logsumexp: O(B*H*N*D) in all, never O(B*H*N*N).
struct FusedAttentionFn : public torch::autograd::Function<FusedAttentionFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        double scale, const c10::optional<Tensor>& key_bias) {
    torch::NoGradGuard no_grad;
    // q * scale written straight into a contiguous buffer: one pass over q, whatever its strides.
    auto qs = torch::empty(q.sizes(), q.options());
    torch::mul_out(qs, q, torch::scalar_tensor(scale, q.options()));
    qs = qs.view({-1, q.size(2), q.size(3)});
    const auto bias = key_bias ? key_bias->contiguous() : Tensor();  // (B, N)
    auto out = torch::empty(q.sizes(), qs.options());                // (B, H, N, D)
    const Folded f{
        qs,       fold_heads(k),        fold_heads(v),
        bias,     out.view(qs.sizes()), torch::empty({qs.size(0), qs.size(1)}, qs.options()),
        q.size(1)};
    run_forward(f);
    ctx->save_for_backward({f.qs, f.k, f.v, f.key_bias, out, f.lse});  // in the order of Saved
    ctx->saved_data["heads"] = f.heads;
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
    const auto& qs = saved[kQScaled];
    const auto sizes = saved[kOut].sizes();
    const Folded f{qs,
                   saved[kK],
                   saved[kV],
                   saved[kBias],
                   fold_heads(saved[kOut]),
                   saved[kLse],
                   ctx->saved_data["heads"].toInt()};
    const Wanted want{ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2)};
    const auto g =
        run_backward(f, fold_heads(grad_out[0]), ctx->saved_data["scale"].toDouble(), want);
    const auto unfold = [&](const Tensor& t) { return t.defined() ? t.view(sizes) : t; };
    // One entry per forward input: q, k, v, then none for `scale` (a number) and none for the
    // key bias, a constant of this op by design (fused_attention() detaches it).
    return {unfold(g.dq), unfold(g.dk), unfold(g.dv), Tensor(), Tensor()};
  }
};

}  // namespace

void detail::use_tiled_fused_attention_on_cpu(bool on) { tiled_on_cpu() = on; }

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
