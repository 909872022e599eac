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
                       float* metric) {
  const size_t uD = static_cast<size_t>(head_dim);
  const float hf = static_cast<float>(heads);
  for (int t = t0; t < t1; ++t) {
    float* __restrict u = metric + static_cast<size_t>(t) * uD;
    const float* __restrict k = keys + static_cast<size_t>(t) * static_cast<size_t>(ldk);
    // Sum over heads, / H (torch's mean), / the L2 norm, in loops without a carried dependence
    // so that they vectorize (one serial chain of divisions and adds cost batch-32 merging 7% of
    // vit-fmnist-56's time). The squares go to 8 partial sums: torch's order for the norm is its
    // own too, and the metric only ranks similarities.
    std::copy(k, k + head_dim, u);
    for (int h = 1; h < heads; ++h) {
      const float* __restrict kh = k + static_cast<size_t>(h) * uD;
      for (int d = 0; d < head_dim; ++d) u[d] += kh[d];
    }
    for (int d = 0; d < head_dim; ++d) u[d] /= hf;
    float part[8] = {};
    int d = 0;
    for (; d + 8 <= head_dim; d += 8)
      for (int j = 0; j < 8; ++j) part[j] += u[d + j] * u[d + j];
    for (; d < head_dim; ++d) part[0] += u[d] * u[d];
    const float norm = std::sqrt(((part[0] + part[1]) + (part[2] + part[3])) +
                                 ((part[4] + part[5]) + (part[6] + part[7])));
    for (int e = 0; e < head_dim; ++e) u[e] /= norm;
  }
}

void merge_image(const MergeImageArgs& a) {
  const int N = a.tokens, D = a.head_dim, na = (N + 1) / 2, nb = N / 2;
  const size_t uD = static_cast<size_t>(D);
  const size_t c0 = static_cast<size_t>(a.col0),
               c1 = static_cast<size_t>(a.col1 < 0 ? a.dim : a.col1);
  const Scratch sc(a.scratch, N, D, a.kt);
  if (a.metric == nullptr) merge_metric_rows(a.keys, a.ldk, a.heads, D, 0, N, sc.unit);
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
    if (i >= pa) {  // a protected A token keeps -inf: the sort puts it after every candidate
      const float* ua = unit + static_cast<size_t>(2 * i) * uD;
      for (int j = pb; j < nb; ++j) {
        float dot = 0.0f;
        if (a.kt != nullptr) {
          dot =
              sc.scores[static_cast<size_t>(i) * static_cast<size_t>(nb) + static_cast<size_t>(j)];
        } else {
          const float* ub = unit + static_cast<size_t>(2 * j + 1) * uD;
          for (int d = 0; d < D; ++d) dot += ua[d] * ub[d];
        }
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

  auto size_of = [&](int t) { return a.sizes != nullptr ? a.sizes[t] : 1.0f; };
  auto row = [&](int t) { return a.x + static_cast<size_t>(t) * static_cast<size_t>(a.ldx); };
  auto out_row = [&](int o) { return a.out + static_cast<size_t>(o) * static_cast<size_t>(a.ldx); };
  // Output slots: [prefix tokens in order, unmerged other A in order, other B in order].
  const int kept_a = na - pa - a.r;
  auto slot_b = [&](int j) { return pre + kept_a + (j - pb); };
  float* slot_size = sc.slot_size;  // (N - r): B sizes plus the merged A sizes in chosen order
  auto keep = [&](int t, int o) {
    const float s = size_of(t), *x = row(t);
    float* y = out_row(o);
    for (size_t c = c0; c < c1; ++c) y[c] = x[c] * s / s;  // as the weighted sum divides
    slot_size[o] = s;
  };
  for (int t = 0; t < pre; ++t) keep(t, t);
  for (int i = pa, k = pre; i < na; ++i)
    if (group[i] < 0) keep(2 * i, k++);
  // B tokens: size-weighted sums, merged A tokens added in the order they were chosen.
  for (int j = pb; j < nb; ++j) {
    const float s = size_of(2 * j + 1), *x = row(2 * j + 1);
    float* o = out_row(slot_b(j));
    for (size_t c = c0; c < c1; ++c) o[c] = x[c] * s;
    slot_size[slot_b(j)] = s;
  }
  for (int e = 0; e < a.r; ++e) {
    const int i = order[e], o_slot = slot_b(group[i]);
    const float s = size_of(2 * i), *x = row(2 * i);
    float* o = out_row(o_slot);
    for (size_t c = c0; c < c1; ++c) o[c] += x[c] * s;
    slot_size[o_slot] += s;
  }
  for (int j = pb; j < nb; ++j) {
    const int o_slot = slot_b(j);
    const float s = slot_size[o_slot];
    float* o = out_row(o_slot);
    for (size_t c = c0; c < c1; ++c) o[c] /= s;
  }
  if (c0 == 0) std::copy(slot_size, slot_size + (N - a.r), a.out_sizes);
}

}  // namespace vitopt::runtime
