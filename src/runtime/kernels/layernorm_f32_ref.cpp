// LayerNorm (two-pass mean/variance in fp32, like PyTorch's CPU kernel up to summation order) and
// elementwise GELU, scalar reference.
#include <cmath>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

void layernorm(const float* x, int ldx, float* y, int ldy, int rows, int c, const float* gamma,
               const float* beta, float eps) {
  for (int i = 0; i < rows; ++i) {
    const float* xi = x + static_cast<size_t>(i) * static_cast<size_t>(ldx);
    float* yi = y + static_cast<size_t>(i) * static_cast<size_t>(ldy);
    float sum = 0.0f;
    for (int j = 0; j < c; ++j) sum += xi[j];
    const float mean = sum / static_cast<float>(c);
    float var = 0.0f;
    for (int j = 0; j < c; ++j) var += (xi[j] - mean) * (xi[j] - mean);
    const float rstd = 1.0f / std::sqrt(var / static_cast<float>(c) + eps);
    for (int j = 0; j < c; ++j) yi[j] = (xi[j] - mean) * rstd * gamma[j] + beta[j];
  }
}

void gelu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = gelu_ref(x[i]);
}

}  // namespace

void fill_layernorm_f32_ref(KernelTable& t) {
  t.layernorm = layernorm;
  t.gelu = gelu;
}

}  // namespace vitopt::runtime::kernels
