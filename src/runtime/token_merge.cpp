// Token merging for one image (see token_merge.h). The order of operations follows the LibTorch
// version so both pick the same pairs: mean of the keys over heads, L2-normalised, the best B
// token of every A token by dot product (first maximum), a stable sort of the A tokens by that
// similarity (descending), the first r merged, the rest kept in token order.
#include "runtime/token_merge.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime {

namespace {

size_t round16(size_t n) { return (n + 15) / 16 * 16; }  // keeps every part 64-byte aligned

// The scratch layout: unit metric (N, D), best similarity per A token, each output token's size,
// and with a kernel table the B rows gathered (|B|, D), their packed panels and the (|A|, |B|)
// similarities.
struct Scratch {
  float *unit, *best, *slot_size, *b_rows = nullptr, *packed = nullptr, *scores = nullptr;
  size_t total;
  Scratch(float* base, int tokens, int head_dim, const kernels::KernelTable* kt) {
    const size_t n = static_cast<size_t>(tokens), d = static_cast<size_t>(head_dim);
    const size_t na = (n + 1) / 2, nb = n / 2;
    size_t off = 0;
    auto take = [&](size_t count) {
      float* p = base == nullptr ? nullptr : base + off;
      off += round16(count);
      return p;
    };
    unit = take(n * d);
    best = take(n);
    slot_size = take(n);
    if (kt != nullptr) {
      b_rows = take(nb * d);
      packed = take(kt->packed_f32_floats(static_cast<int>(nb), head_dim));
      scores = take(na * nb);
    }
    total = off;
  }
};

}  // namespace

size_t merge_scratch_floats(int tokens, int head_dim, const kernels::KernelTable* kt) {
  return Scratch(nullptr, tokens, head_dim, kt).total;
}

size_t merge_scratch_ints(int tokens) { return 3 * static_cast<size_t>(tokens); }  // best B, order, group

void merge_metric_rows(const float* keys, int ldk, int heads, int head_dim, int t0, int t1,
                       float* metric, const kernels::KernelTable* kt) {
  (kt != nullptr ? *kt : kernels::table(kernels::Isa::kRef))
      .merge_metric(keys, ldk, heads, head_dim, t0, t1, metric);
}

void merge_select(const MergeImageArgs& a) {
  const int N = a.tokens, D = a.head_dim, na = (N + 1) / 2, nb = N / 2;
  const size_t uD = static_cast<size_t>(D);
  const Scratch sc(a.scratch, N, D, a.kt);
  // The metric on this table's loops (the reference's without one).
  const kernels::KernelTable& loops = a.kt != nullptr ? *a.kt : kernels::table(kernels::Isa::kRef);
  if (a.metric == nullptr) loops.merge_metric(a.keys, a.ldk, a.heads, D, 0, N, sc.unit);
  const float* unit = a.metric != nullptr ? a.metric : sc.unit;  // (N, D)
  float* best = sc.best;                                    // (|A|)
  int* best_b = a.index_scratch;                            // (|A|)
  int* order = best_b + N;                                  // (|A|)
  int* group = order + N;                                   // (|A|) B index merged into, or -1
  // A token i is token 2i, B token j is token 2j + 1. The prefix tokens among them are the first
  // pa of A (never merged) and the first pb of B (never merged into).
  const int pre = a.prefix_tokens, pa = (pre + 1) / 2, pb = pre / 2;
  if (a.kt != nullptr && nb > 0) {
    // scores = A B^T on the fp32 GEMM: A's rows are every other unit row (stride 2D), B is
    // gathered and packed like a Linear's weight.
    for (int j = 0; j < nb; ++j)
      std::copy(unit + static_cast<size_t>(2 * j + 1) * uD,
                unit + static_cast<size_t>(2 * j + 2) * uD,
                sc.b_rows + static_cast<size_t>(j) * uD);
    a.kt->pack_f32(sc.b_rows, nb, D, sc.packed);
    kernels::GemmF32Args g;
    g.a = unit;
    g.lda = 2 * D;
    g.w = sc.packed;
    g.m = na;
    g.n = nb;
    g.k = D;
    g.c = sc.scores;
    g.ldc = nb;
    a.kt->gemm_f32(g, 0, (nb + a.kt->f32_nr - 1) / a.kt->f32_nr, 0, na);
  }
  for (int i = 0; i < na; ++i) {
    float m = -INFINITY;
    int arg = 0;
    if (i >= pa && a.kt != nullptr) {  // a protected A token keeps -inf: sorted after the others
      arg = a.kt->row_argmax(sc.scores + static_cast<size_t>(i) * static_cast<size_t>(nb), pb, nb,
                             &m);
    } else if (i >= pa) {  // the scalar similarities (the spec of the GEMM path)
      const float* ua = unit + static_cast<size_t>(2 * i) * uD;
      for (int j = pb; j < nb; ++j) {
        const float* ub = unit + static_cast<size_t>(2 * j + 1) * uD;
        float dot = 0.0f;
        for (int d = 0; d < D; ++d) dot += ua[d] * ub[d];
        if (dot > m) {
          m = dot;
          arg = j;
        }
      }
    }
    best[i] = m;
    best_b[i] = arg;
  }
  std::iota(order, order + na, 0);
  std::stable_sort(order, order + na, [&](int p, int q) { return best[p] > best[q]; });
  std::fill(group, group + na, -1);
  for (int e = 0; e < a.r; ++e) group[order[e]] = best_b[order[e]];

  // Each output slot's size: [prefix tokens in order, unmerged other A in order, other B in
  // order], a B slot's size summed in the order its A tokens were chosen (as merge_columns adds).
  auto size_of = [&](int t) { return a.sizes != nullptr ? a.sizes[t] : 1.0f; };
  const int kept_a = na - pa - a.r;
  float* slot_size = sc.slot_size;  // (N - r)
  for (int t = 0; t < pre; ++t) slot_size[t] = size_of(t);
  for (int i = pa, k = pre; i < na; ++i)
    if (group[i] < 0) slot_size[k++] = size_of(2 * i);
  for (int j = pb; j < nb; ++j) slot_size[pre + kept_a + (j - pb)] = size_of(2 * j + 1);
  for (int e = 0; e < a.r; ++e)
    slot_size[pre + kept_a + (group[order[e]] - pb)] += size_of(2 * order[e]);
}

void merge_columns(const MergeImageArgs& a, int col0, int col1) {
  const int N = a.tokens, na = (N + 1) / 2, nb = N / 2;
  const Scratch sc(a.scratch, N, a.head_dim, a.kt);
  const kernels::KernelTable& loops = a.kt != nullptr ? *a.kt : kernels::table(kernels::Isa::kRef);
  const int* order = a.index_scratch + N;
  const int* group = order + N;
  const float* slot_size = sc.slot_size;
  const int pre = a.prefix_tokens, pa = (pre + 1) / 2, pb = pre / 2;
  auto size_of = [&](int t) { return a.sizes != nullptr ? a.sizes[t] : 1.0f; };
  auto row = [&](int t) { return a.x + static_cast<size_t>(t) * static_cast<size_t>(a.ldx); };
  auto out_row = [&](int o) { return a.out + static_cast<size_t>(o) * static_cast<size_t>(a.ldx); };
  const int kept_a = na - pa - a.r;
  auto slot_b = [&](int j) { return pre + kept_a + (j - pb); };
  const size_t c0 = static_cast<size_t>(col0), cols = static_cast<size_t>(col1 - col0);
  auto rows_op = [&](kernels::MergeRowOp op, const float* x, float s, float* y) {
    loops.merge_row(op, x != nullptr ? x + c0 : nullptr, s, y + c0, cols);
  };
  // x * s / s, as the weighted sum divides.
  for (int t = 0; t < pre; ++t) rows_op(kernels::MergeRowOp::kKeep, row(t), size_of(t), out_row(t));
  for (int i = pa, k = pre; i < na; ++i)
    if (group[i] < 0) rows_op(kernels::MergeRowOp::kKeep, row(2 * i), size_of(2 * i), out_row(k++));
  // B tokens: size-weighted sums, merged A tokens added in the order they were chosen.
  for (int j = pb; j < nb; ++j)
    rows_op(kernels::MergeRowOp::kScale, row(2 * j + 1), size_of(2 * j + 1), out_row(slot_b(j)));
  for (int e = 0; e < a.r; ++e) {
    const int i = order[e];
    rows_op(kernels::MergeRowOp::kAddScaled, row(2 * i), size_of(2 * i), out_row(slot_b(group[i])));
  }
  for (int j = pb; j < nb; ++j)
    rows_op(kernels::MergeRowOp::kDivide, nullptr, slot_size[slot_b(j)], out_row(slot_b(j)));
  if (col0 == 0) std::copy(slot_size, slot_size + (N - a.r), a.out_sizes);
}

void merge_image(const MergeImageArgs& a) {
  merge_select(a);
  merge_columns(a, a.col0, a.col1 < 0 ? a.dim : a.col1);
}

}  // namespace vitopt::runtime
