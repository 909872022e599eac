// The runtime's token merging on the hand-made tokens of tests/model/token_merge_test.cpp: the
// same pairs, output order, size-weighted averages and sizes, with keys split over two heads
// (the metric is their mean) and the distillation token protected.
#include "runtime/token_merge.h"

#include <gtest/gtest.h>

#include <vector>

namespace vitopt::runtime {
namespace {

constexpr int kN = 7, kC = 3, kD = 2, kH = 2;

// Metric rows as in the LibTorch test; head 0 holds m + e and head 1 m - e (mean m).
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

Result merge(int r, bool distill, const std::vector<float>* sizes) {
  std::vector<float> x;
  for (int t = 0; t < kN; ++t)
    for (float v : {1.0f * t, 10.0f * t, -1.0f * t}) x.push_back(v);
  const auto k = keys();
  Result out{std::vector<float>(static_cast<size_t>((kN - r) * kC)), std::vector<float>(static_cast<size_t>(kN - r))};
  std::vector<float> scratch(merge_scratch_floats(kN, kD));
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
  a.distill_token = distill;
  a.sizes = sizes != nullptr ? sizes->data() : nullptr;
  a.out = out.x.data();
  a.out_sizes = out.sizes.data();
  a.scratch = scratch.data();
  a.index_scratch = iscratch.data();
  merge_image(a);
  return out;
}

// Token t's first feature is t: so output token o's first feature tells which tokens it averages.
float first(const Result& r, int o) { return r.x[static_cast<size_t>(o * kC)]; }

TEST(RuntimeTokenMerge, SizeWeightedPairsInToMeOrder) {
  const std::vector<float> sizes = {1, 2, 1, 1, 3, 1, 1};
  const Result r = merge(2, false, &sizes);  // [t0, t2, t1 + t4, t3 + t6, t5]
  EXPECT_FLOAT_EQ(first(r, 0), 0.0f);
  EXPECT_FLOAT_EQ(first(r, 1), 2.0f);
  EXPECT_FLOAT_EQ(first(r, 2), (2 * 1 + 3 * 4) / 5.0f);
  EXPECT_FLOAT_EQ(r.x[2 * kC + 1], (2 * 10 + 3 * 40) / 5.0f);
  EXPECT_FLOAT_EQ(first(r, 3), (3 + 6) / 2.0f);
  EXPECT_FLOAT_EQ(first(r, 4), 5.0f);
  EXPECT_EQ(r.sizes, (std::vector<float>{1, 1, 5, 2, 1}));
}

TEST(RuntimeTokenMerge, ThreeIntoOneAndDistillationTokenProtected) {
  const Result r3 = merge(3, false, nullptr);  // [t0, t1 + t4, t2 + t3 + t6, t5]
  EXPECT_FLOAT_EQ(first(r3, 1), 2.5f);
  EXPECT_FLOAT_EQ(first(r3, 2), (2 + 3 + 6) / 3.0f);
  EXPECT_EQ(r3.sizes, (std::vector<float>{1, 2, 3, 1}));
  const Result d = merge(2, true, nullptr);  // [cls, dist, t4, t2 + t3 + t6, t5]
  EXPECT_FLOAT_EQ(first(d, 0), 0.0f);
  EXPECT_FLOAT_EQ(first(d, 1), 1.0f);
  EXPECT_FLOAT_EQ(first(d, 2), 4.0f);
  EXPECT_FLOAT_EQ(first(d, 3), (2 + 3 + 6) / 3.0f);
  EXPECT_FLOAT_EQ(first(d, 4), 5.0f);
  EXPECT_EQ(d.sizes, (std::vector<float>{1, 1, 1, 3, 1}));
}

}  // namespace
}  // namespace vitopt::runtime
