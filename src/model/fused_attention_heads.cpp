// One head of fused attention on the CPU (see fused_attention_heads.h): CBLAS for the products,
// ATen on the workspace for the elementwise steps (its exp and reductions are vectorized per
// CPU at run time; called from inside a parallel region they run on the calling thread).
#include "model/fused_attention_heads.h"

#include <cblas.h>
#include <torch/torch.h>

#include <algorithm>

namespace vitopt::model::detail {
namespace {

// C (m x n, row stride ldc) = alpha op(A) op(B) + beta C, row-major; op = transpose when ta / tb.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// A (rows x cols) row-major tensor over memory owned elsewhere. Read-only inputs are wrapped
// too (const_cast): this file only writes through tensors over the workspace and the outputs.
template <class T>
torch::Tensor wrap(const T* data, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<T*>(data), {rows, cols},
                          torch::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

// Query row blocks of at most kFusedRowBlock rows, balanced (300 -> 150 + 150).
struct Block {
  int64_t begin, rows;
};
std::vector<Block> row_blocks(int64_t n) {
  const int64_t count = std::max<int64_t>(1, (n + kFusedRowBlock - 1) / kFusedRowBlock);
  std::vector<Block> out;
  for (int64_t t = 0; t < count; ++t) {
    const int64_t b = n * t / count, e = n * (t + 1) / count;
    out.push_back({b, e - b});
  }
  return out;
}

// scores (m x n) = qs[rows] k^T + key_bias, written to s.
template <class T>
torch::Tensor block_scores(const HeadInputs<T>& in, Block blk, T* s) {
  gemm(false, true, blk.rows, in.n, in.d, T(1), in.qs + blk.begin * in.d, in.d, in.k, in.d, T(0), s,
       in.n);
  auto scores = wrap(s, blk.rows, in.n);
  if (in.key_bias != nullptr) scores.add_(wrap(in.key_bias, 1, in.n));
  return scores;
}

}  // namespace

int64_t head_workspace(int64_t n) { return 2 * std::min(n, kFusedRowBlock) * n; }

template <class T>
void head_forward(const HeadInputs<T>& in, T* out, T* lse, T* work) {
  for (const Block blk : row_blocks(in.n)) {
    auto p = block_scores(in, blk, work);
    // Exponents against each row's max: nothing overflows; a row of all -inf gives NaN, as
    // softmax does.
    const auto row_max = p.amax(1, /*keepdim=*/true);
    p.sub_(row_max).exp_();
    const auto row_sum = p.sum(1, /*keepdim=*/true);
    T* out_blk = out + blk.begin * in.d;
    gemm(false, false, blk.rows, in.d, in.n, T(1), work, in.n, in.v, in.d, T(0), out_blk, in.d);
    wrap(out_blk, blk.rows, in.d).div_(row_sum);  // normalised after the product: m x d, not m x n
    auto lse_blk = wrap(lse + blk.begin, blk.rows, 1);
    torch::add_out(lse_blk, row_max, row_sum.log());
  }
}

// Per block: P = exp(S - LSE) (the forward's probabilities, rebuilt), dV += P^T dO,
// dP = dO V^T, dS = P (dP - delta), dQ = scale dS K, dK += dS^T Qs. dV and dK sum over blocks
// (beta 1 after the first); dQ's rows belong to one block.
template <class T>
void head_backward(const HeadInputs<T>& in, const T* dout, const T* lse, const T* delta, T scale,
                   T* dq, T* dk, T* dv, T* work) {
  const int64_t n = in.n, d = in.d;
  T* const p_buf = work;
  T* const ds_buf = work + std::min(n, kFusedRowBlock) * n;
  bool first = true;
  for (const Block blk : row_blocks(n)) {
    const int64_t m = blk.rows;
    const T* do_blk = dout + blk.begin * d;
    const T beta = first ? T(0) : T(1);
    first = false;
    auto p = block_scores(in, blk, p_buf);
    p.sub_(wrap(lse + blk.begin, m, 1)).exp_();
    if (dv != nullptr) gemm(true, false, n, d, m, T(1), p_buf, n, do_blk, d, beta, dv, d);
    if (dq == nullptr && dk == nullptr) continue;
    gemm(false, true, m, n, d, T(1), do_blk, d, in.v, d, T(0), ds_buf, n);
    wrap(ds_buf, m, n).sub_(wrap(delta + blk.begin, m, 1)).mul_(p);
    if (dq != nullptr)
      gemm(false, false, m, d, n, scale, ds_buf, n, in.k, d, T(0), dq + blk.begin * d, d);
    if (dk != nullptr)
      gemm(true, false, n, d, m, T(1), ds_buf, n, in.qs + blk.begin * d, d, beta, dk, d);
  }
}

template void head_forward<float>(const HeadInputs<float>&, float*, float*, float*);
template void head_forward<double>(const HeadInputs<double>&, double*, double*, double*);
template void head_backward<float>(const HeadInputs<float>&, const float*, const float*,
                                   const float*, float, float*, float*, float*, float*);
template void head_backward<double>(const HeadInputs<double>&, const double*, const double*,
                                    const double*, double, double*, double*, double*, double*);

BlasOnOneThread::BlasOnOneThread() : saved_threads_(openblas_get_num_threads()) {
  if (saved_threads_ != 1) openblas_set_num_threads(1);
}

BlasOnOneThread::~BlasOnOneThread() {
  if (saved_threads_ != 1) openblas_set_num_threads(saved_threads_);
}

}  // namespace vitopt::model::detail
