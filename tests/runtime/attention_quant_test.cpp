// The runtime's probability codes on hand-computed values (the same cases as the LibTorch side's
// tests/model/attention_quant_test.cpp), including the zero code and p = 0.
#include "runtime/kernels/kernels.h"

#include <gtest/gtest.h>

namespace vitopt::runtime {
namespace {

TEST(AttentionQuant, ProbabilityCodesByHand) {
  // log2, 3 bits: c = rne(-log2 p) kept when c <= 6, else 0.
  const float p[] = {1.0f, 0.7f, 0.3f, 0.015625f, 0.01f, 0.0078125f, 0.0f};
  const float want_log2[] = {1.0f, 0.5f, 0.25f, 0.015625f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(kernels::quantize_prob(p[i], 3, true), want_log2[i]) << i;
  // uniform, 2 bits: rne(p * 3) / 3 with half to even (0.5 * 3 = 1.5 -> 2).
  const float u[] = {0.0f, 0.25f, 0.5f, 0.9f, 1.0f};
  const float want_uniform[] = {0.0f, 1 / 3.0f, 2 / 3.0f, 1.0f, 1.0f};
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(kernels::quantize_prob(u[i], 2, false), want_uniform[i]) << i;
}

}  // namespace
}  // namespace vitopt::runtime
