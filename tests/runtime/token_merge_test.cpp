// The runtime's token merging on the hand-made tokens of tests/model/token_merge_test.cpp: the
// same pairs, output order, size-weighted averages and sizes, with keys split over two heads
// (the metric is their mean) and the prefix tokens protected (class; class + distillation; none;
// class + two registers), on the scalar similarities and on every level's GEMM.
#include "runtime/token_merge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "runtime/aligned_buffer.h"
#include "runtime/kernels/kernels.h"
#include "runtime_test_util.h"

namespace vitopt::runtime {
namespace {

constexpr int kN = 7, kC = 3, kD = 2, kH = 2;

// Metric rows as in the LibTorch test; head 0 holds m + e and head 1 m - e (mean m). Normalised,
// the similarities of A (even tokens) to B (odd tokens) are
//   t0: t1 1, t3 0, t5 -1      t2: t1 .6, t3 .8, t5 -.6
//   t4: t1 .995, t3 .0995, t5 -.995      t6: t1 .196, t3 .981, t5 -.196
std::vector<float> keys() {
  const float m[kN][kD] = {{1, 0}, {1, 0}, {0.6f, 0.8f}, {0, 1}, {1, 0.1f}, {-1, 0}, {0.2f, 1}};
  std::vector<float> k;
  for (int t = 0; t < kN; ++t) {
    const float e[kD] = {0.25f * static_cast<float>(t % 3), -0.5f};
    for (int h = 0; h < kH; ++h)
      for (int d = 0; d < kD; ++d) k.push_back(m[t][d] + (h == 0 ? e[d] : -e[d]));
  }
  return k;
}

struct Result {
  std::vector<float> x, sizes;
};

// How the engine may call merge_image: the metric rows computed beforehand (merge_metric_rows,
// as next to the qkv GEMM) and the output columns split into `parts` calls (as at batch 1).
struct Split {
  bool metric_first = false;
  int parts = 1;
  // Instead: merge_select once, then merge_columns one column at a time, last column first (as
  // the proj GEMM's tasks finish in any order).
  bool select_then_columns = false;
};

// Null kt: the scalar similarities; otherwise that table's GEMM.
Result merge(int r, int prefix, const std::vector<float>* sizes,
             const kernels::KernelTable* kt = nullptr, Split split = {}) {
  std::vector<float> x;
  for (int t = 0; t < kN; ++t)
    for (float v : {1.0f * t, 10.0f * t, -1.0f * t}) x.push_back(v);
  const auto k = keys();
  std::vector<float> metric(static_cast<size_t>(kN * kD));
  if (split.metric_first) {  // in two calls, as two threads would
    merge_metric_rows(k.data(), kH * kD, kH, kD, 0, 3, metric.data());
    merge_metric_rows(k.data(), kH * kD, kH, kD, 3, kN, metric.data());
  }
  Result out{std::vector<float>(static_cast<size_t>((kN - r) * kC), -99.0f),
             std::vector<float>(static_cast<size_t>(kN - r), -99.0f)};
  for (int part = 0; part < split.parts; ++part) {
    AlignedBuffer<float> scratch(merge_scratch_floats(kN, kD, kt));  // the GEMM wants 64-byte lines
    std::vector<int> iscratch(merge_scratch_ints(kN));
    MergeImageArgs a;
    a.x = x.data();
    a.keys = k.data();
    a.ldx = kC;
    a.ldk = kH * kD;
    a.tokens = kN;
    a.dim = kC;
    a.heads = kH;
    a.head_dim = kD;
    a.r = r;
    a.prefix_tokens = prefix;
    a.sizes = sizes != nullptr ? sizes->data() : nullptr;
    a.out = out.x.data();
    a.out_sizes = out.sizes.data();
    a.scratch = scratch.data();
    a.index_scratch = iscratch.data();
    a.kt = kt;
    if (split.metric_first) a.metric = metric.data();
    a.col0 = kC * part / split.parts;
    a.col1 = split.parts == 1 ? -1 : kC * (part + 1) / split.parts;
    if (split.select_then_columns) {
      merge_select(a);
      for (int col = kC - 1; col >= 0; --col) merge_columns(a, col, col + 1);
    } else {
      merge_image(a);
    }
  }
  return out;
}

// Token t's first feature is t: so output token o's first feature tells which tokens it averages.
float first(const Result& r, int o) { return r.x[static_cast<size_t>(o * kC)]; }

void expect_firsts(const Result& r, const std::vector<float>& want) {
  ASSERT_EQ(r.sizes.size(), want.size());
  for (size_t o = 0; o < want.size(); ++o)
    EXPECT_FLOAT_EQ(first(r, static_cast<int>(o)), want[o]) << "token " << o;
}

TEST(RuntimeTokenMerge, SizeWeightedPairsInToMeOrder) {
  const std::vector<float> sizes = {1, 2, 1, 1, 3, 1, 1};
  const Result r = merge(2, 1, &sizes);  // [t0, t2, t1 + t4, t3 + t6, t5]
  EXPECT_FLOAT_EQ(first(r, 0), 0.0f);
  EXPECT_FLOAT_EQ(first(r, 1), 2.0f);
  EXPECT_FLOAT_EQ(first(r, 2), (2 * 1 + 3 * 4) / 5.0f);
  EXPECT_FLOAT_EQ(r.x[2 * kC + 1], (2 * 10 + 3 * 40) / 5.0f);
  EXPECT_FLOAT_EQ(first(r, 3), (3 + 6) / 2.0f);
  EXPECT_FLOAT_EQ(first(r, 4), 5.0f);
  EXPECT_EQ(r.sizes, (std::vector<float>{1, 1, 5, 2, 1}));
}

TEST(RuntimeTokenMerge, ThreeIntoOneAndDistillationTokenProtected) {
  const Result r3 = merge(3, 1, nullptr);  // [t0, t1 + t4, t2 + t3 + t6, t5]
  EXPECT_FLOAT_EQ(first(r3, 1), 2.5f);
  EXPECT_FLOAT_EQ(first(r3, 2), (2 + 3 + 6) / 3.0f);
  EXPECT_EQ(r3.sizes, (std::vector<float>{1, 2, 3, 1}));
  const Result d = merge(2, 2, nullptr);  // [cls, dist, t4, t2 + t3 + t6, t5]
  EXPECT_FLOAT_EQ(first(d, 0), 0.0f);
  EXPECT_FLOAT_EQ(first(d, 1), 1.0f);
  EXPECT_FLOAT_EQ(first(d, 2), 4.0f);
  EXPECT_FLOAT_EQ(first(d, 3), (2 + 3 + 6) / 3.0f);
  EXPECT_FLOAT_EQ(first(d, 4), 5.0f);
  EXPECT_EQ(d.sizes, (std::vector<float>{1, 1, 1, 3, 1}));
}

// No class token (timm's class_token=False): token 0 is an ordinary A token, and the most
// similar pair (t0, t1: 1.0) merges first.
TEST(RuntimeTokenMerge, WithoutPrefixTokensTheFirstTokenMerges) {
  const Result r1 = merge(1, 0, nullptr);  // [t2, t4, t6, t0 + t1, t3, t5]
  EXPECT_EQ(r1.sizes, (std::vector<float>{1, 1, 1, 2, 1, 1}));
  expect_firsts(r1, {2, 4, 6, 0.5f, 3, 5});
  const std::vector<float> sizes = {1, 2, 1, 1, 3, 1, 1};
  const Result r2 = merge(2, 0, &sizes);  // [t2, t6, t0 + t1 + t4, t3, t5]
  expect_firsts(r2, {2, 6, (0 * 1 + 1 * 2 + 4 * 3) / 6.0f, 3, 5});
  EXPECT_FLOAT_EQ(r2.x[2 * kC + 2], -(0 * 1 + 1 * 2 + 4 * 3) / 6.0f);
  EXPECT_EQ(r2.sizes, (std::vector<float>{1, 1, 6, 1, 1}));
}

// Class token + two registers (prefix 3): t0, t2 (A) never merge and t1 (B) takes nothing, so
// t4, whose best match would be t1 (.995), goes to t3 instead; the prefix tokens lead the output
// in their order even though t1 is a B token.
TEST(RuntimeTokenMerge, ClassAndRegisterTokensProtected) {
  const Result r1 = merge(1, 3, nullptr);  // [t0, t1, t2, t4, t3 + t6, t5]
  EXPECT_EQ(r1.sizes, (std::vector<float>{1, 1, 1, 1, 2, 1}));
  expect_firsts(r1, {0, 1, 2, 4, 4.5f, 5});
  const std::vector<float> sizes = {1, 1, 1, 2, 3, 1, 1};
  const Result r2 = merge(2, 3, &sizes);  // [t0, t1, t2, t3 + t4 + t6, t5]: the cap (7 - 3) / 2
  expect_firsts(r2, {0, 1, 2, (3 * 2 + 4 * 3 + 6 * 1) / 6.0f, 5});
  EXPECT_FLOAT_EQ(r2.x[1 * kC + 1], 10.0f);  // prefix rows copied whole
  EXPECT_EQ(r2.sizes, (std::vector<float>{1, 1, 1, 6, 1}));
}

// The engine's path: similarities on each level's fp32 GEMM pick the same pairs.
TEST(RuntimeTokenMerge, GemmSimilaritiesAgreeWithScalar) {
  std::vector<kernels::Isa> isas{kernels::Isa::kRef};
  for (auto isa : testing::simd_levels()) isas.push_back(isa);
  const std::vector<float> sizes = {1, 2, 1, 1, 3, 1, 1};
  for (const auto isa : isas) {
    const kernels::KernelTable* kt = &kernels::table(isa);
    for (int prefix = 0; prefix <= 3; ++prefix) {
      for (int r = 1; r <= (kN - prefix) / 2; ++r) {
        const Result want = merge(r, prefix, &sizes), got = merge(r, prefix, &sizes, kt);
        EXPECT_EQ(got.x, want.x) << kernels::isa_name(isa) << " prefix " << prefix << " r " << r;
        EXPECT_EQ(got.sizes, want.sizes)
            << kernels::isa_name(isa) << " prefix " << prefix << " r " << r;
      }
    }
  }
}

// The engine's split of the work gives the same bytes: metric rows made beforehand in two
// ranges, and one image's output columns written by 1, 2 or 3 calls (every column covered once,
// the sizes by the first part only), or by one selection and a call per column.
TEST(RuntimeTokenMerge, PrecomputedMetricAndColumnPartsAgree) {
  const kernels::KernelTable* kt = &kernels::table(kernels::Isa::kRef);
  const std::vector<float> sizes = {1, 2, 1, 1, 3, 1, 1};
  for (int prefix = 0; prefix <= 3; ++prefix) {
    for (int r = 1; r <= (kN - prefix) / 2; ++r) {
      const Result want = merge(r, prefix, &sizes, kt);
      for (const Split split :
           {Split{true, 1}, Split{false, 2}, Split{true, 3}, Split{true, 1, true}}) {
        const Result got = merge(r, prefix, &sizes, kt, split);
        EXPECT_EQ(got.x, want.x) << "prefix " << prefix << " r " << r << " parts " << split.parts;
        EXPECT_EQ(got.sizes, want.sizes) << "prefix " << prefix << " r " << r;
      }
    }
  }
}

// The inner loops each level compiles (merge_impl.inc) against naive loops written here, bit for
// bit, on ViT sizes with vector tails: the metric (head_dim 32 and 37, 1 and 3 heads), the first
// maximum of rows full of ties, -inf and NaN at every length 0-40 and start 0-2, and the four
// row steps of a weighted average.
TEST(RuntimeTokenMerge, EveryLevelsLoopsMatchNaiveLoops) {
  std::vector<kernels::Isa> isas{kernels::Isa::kRef};
  for (auto isa : testing::simd_levels()) isas.push_back(isa);
  const float inf = std::numeric_limits<float>::infinity(),
              nan = std::numeric_limits<float>::quiet_NaN();
  for (const auto isa : isas) {
    const kernels::KernelTable& kt = kernels::table(isa);
    const char* name = kernels::isa_name(isa);
    for (const int heads : {1, 3}) {
      for (const int dim : {32, 37}) {
        const int n = 197, ldk = heads * dim + 5;
        const auto keys = testing::randn(static_cast<size_t>(n * ldk), 7);
        std::vector<float> got(static_cast<size_t>(n * dim)), want(got.size());
        kt.merge_metric(keys.data(), ldk, heads, dim, 0, n, got.data());
        for (int t = 0; t < n; ++t) {  // the order merge_impl.inc documents
          float* u = want.data() + t * dim;
          for (int d = 0; d < dim; ++d) {
            float sum = keys[static_cast<size_t>(t * ldk + d)];
            for (int h = 1; h < heads; ++h) sum += keys[static_cast<size_t>(t * ldk + h * dim + d)];
            u[d] = sum / static_cast<float>(heads);
          }
          float part[8] = {};
          for (int d = 0; d < dim; ++d) part[d < dim - dim % 8 ? d % 8 : 0] += u[d] * u[d];
          const float norm = std::sqrt(((part[0] + part[1]) + (part[2] + part[3])) +
                                       ((part[4] + part[5]) + (part[6] + part[7])));
          for (int d = 0; d < dim; ++d) u[d] /= norm;
        }
        EXPECT_EQ(got, want) << name << " heads " << heads << " dim " << dim;
      }
    }
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> level(0, 5);  // few distinct values: many ties
    for (int len = 0; len <= 40; ++len) {
      for (int j0 = 0; j0 <= 2; ++j0) {
        for (int trial = 0; trial < 4; ++trial) {
          std::vector<float> x(static_cast<size_t>(j0 + len));
          for (auto& v : x) {
            const int l = level(rng);
            v = l == 0 ? nan : l == 1 ? -inf : static_cast<float>(l);
          }
          if (trial >= 2 && len % 4 == trial - 2)
            std::fill(x.begin(), x.end(), trial == 2 ? nan : -inf);
          float want_best = -inf;
          int want_arg = j0;
          for (int j = j0; j < j0 + len; ++j) {
            if (x[static_cast<size_t>(j)] > want_best) {
              want_best = x[static_cast<size_t>(j)];
              want_arg = j;
            }
          }
          float best = 0.0f;
          const int arg = kt.row_argmax(x.data(), j0, j0 + len, &best);
          EXPECT_EQ(arg, want_arg) << name << " len " << len << " j0 " << j0 << " trial " << trial;
          EXPECT_EQ(best, want_best) << name << " len " << len << " j0 " << j0;
        }
      }
    }
    const size_t cols = 53;
    const auto x = testing::randn(cols, 11), y0 = testing::randn(cols, 12);
    for (const float s : {2.7f, 1.0f}) {  // 1: the unmerged tokens' shortcut
      std::vector<float> keep(cols), scale(cols), add = y0, div = y0;
      kt.merge_row(kernels::MergeRowOp::kKeep, x.data(), s, keep.data(), cols);
      kt.merge_row(kernels::MergeRowOp::kScale, x.data(), s, scale.data(), cols);
      kt.merge_row(kernels::MergeRowOp::kAddScaled, x.data(), s, add.data(), cols);
      kt.merge_row(kernels::MergeRowOp::kDivide, nullptr, s, div.data(), cols);
      for (size_t c = 0; c < cols; ++c) {
        EXPECT_EQ(keep[c], x[c] * s / s) << name << " s " << s << " column " << c;
        EXPECT_EQ(scale[c], x[c] * s) << name << " s " << s << " column " << c;
        EXPECT_EQ(add[c], y0[c] + x[c] * s) << name << " s " << s << " column " << c;
        EXPECT_EQ(div[c], y0[c] / s) << name << " s " << s << " column " << c;
      }
    }
  }
}

}  // namespace
}  // namespace vitopt::runtime
