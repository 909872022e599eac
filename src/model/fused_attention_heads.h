// Fused attention on the CPU, one head at a time: the math behind model::fused_attention for
// CPU tensors. A head's queries are taken in row blocks of at most kFusedRowBlock rows; each
// block's scores against all keys live in a per-thread (block x N) workspace (197 tokens: one
// block, 152 KiB in float32, so the softmax and the GEMMs that read it stay in L2), and nothing
// (N x N)-sized outlives the call. Each block sees every key, so its softmax is exact: no online
// rescaling. GEMMs are single-threaded CBLAS calls; the caller spreads heads over threads.
// Legend: N tokens, D head dim; all matrices row-major with row stride D (or N for scores).
#pragma once

#include <cstdint>

namespace vitopt::model::detail {

// Query rows per block: bounds the per-thread workspace at 2 x kFusedRowBlock x N elements.
inline constexpr int64_t kFusedRowBlock = 256;

// One head's inputs: pointers to (N, D) matrices at this head's offset, and the (N) key bias
// (token merging's log(size)) or nullptr.
template <class T>
struct HeadInputs {
  int64_t n = 0, d = 0;
  const T* qs = nullptr;  // q * scale
  const T* k = nullptr;
  const T* v = nullptr;
  const T* key_bias = nullptr;
};

// Elements of T a thread's workspace needs for heads of n tokens (forward and backward).
int64_t head_workspace(int64_t n);

// out (N, D) = softmax(qs k^T + key_bias) v and lse (N) = each row's logsumexp of the scores.
template <class T>
void head_forward(const HeadInputs<T>& in, T* out, T* lse, T* work);

// Gradients of one head from the upstream dout (N, D), the forward's lse and
// delta (N) = rowsum(dout * out). dq (scaled by `scale`, the factor folded into qs), dk, dv:
// (N, D) outputs, each nullptr when not wanted.
template <class T>
void head_backward(const HeadInputs<T>& in, const T* dout, const T* lse, const T* delta, T scale,
                   T* dq, T* dk, T* dv, T* work);

extern template void head_forward<float>(const HeadInputs<float>&, float*, float*, float*);
extern template void head_forward<double>(const HeadInputs<double>&, double*, double*, double*);
extern template void head_backward<float>(const HeadInputs<float>&, const float*, const float*,
                                          const float*, float, float*, float*, float*, float*);
extern template void head_backward<double>(const HeadInputs<double>&, const double*, const double*,
                                           const double*, double, double*, double*, double*,
                                           double*);

// While alive, OpenBLAS runs on one thread (its previous count restored after): inside an op
// whose heads are already spread over the intra-op threads, OpenBLAS's own pool would compete
// with them for the same cores (perf of the batched-GEMM version in fused_attention_bench:
// ~35% of the samples in the two pools' spin-waits and yields).
// The setting is process-wide: meant for ops called from one thread at a time, as training does.
class BlasOnOneThread {
 public:
  BlasOnOneThread();
  ~BlasOnOneThread();
  BlasOnOneThread(const BlasOnOneThread&) = delete;
  BlasOnOneThread& operator=(const BlasOnOneThread&) = delete;

 private:
  int saved_threads_;
};

}  // namespace vitopt::model::detail
