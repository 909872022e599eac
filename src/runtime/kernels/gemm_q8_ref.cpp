// Integer GEMM (int8 weights) and activation quantization, scalar reference: u8 activations
// (q + 128) times s8 weights in their (N, Kp) layout, int32 sums, then the exact correction and
// fp32 scaling of kernels.h. Also the shared quantization helpers (dynamic ranges, round half to
// even) and the u8 quantizer every reference integer family uses.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/quant_spec.h"
#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

constexpr int kNr = 16;

size_t packed_bytes(int n, int kp) { return static_cast<size_t>(n) * static_cast<size_t>(kp); }

void pack(const int8_t* w, int n, int k, int kp, void* out) {
  auto* o = static_cast<int8_t*>(out);
  for (int r = 0; r < n; ++r) {
    std::memcpy(o + static_cast<size_t>(r) * static_cast<size_t>(kp),
                w + static_cast<size_t>(r) * static_cast<size_t>(k), static_cast<size_t>(k));
    std::memset(o + static_cast<size_t>(r) * static_cast<size_t>(kp) + k, 0,
                static_cast<size_t>(kp - k));
  }
}

void gemm(const GemmIntArgs& g, int p0, int p1, int r0, int r1) {
  const int n1 = std::min(g.n, p1 * kNr);
  const auto* act = static_cast<const uint8_t*>(g.a);
  const auto* wq = static_cast<const int8_t*>(g.w);
  for (int i = r0; i < r1; ++i) {
    const uint8_t* a = act + static_cast<size_t>(i) * static_cast<size_t>(g.lda);
    float* c = g.c + static_cast<size_t>(i) * static_cast<size_t>(g.ldc);
    for (int o = p0 * kNr; o < n1; ++o) {
      const int8_t* w = wq + static_cast<size_t>(o) * static_cast<size_t>(g.kp);
      int32_t acc = 0;
      for (int kk = 0; kk < g.kp; ++kk) acc += static_cast<int32_t>(a[kk]) * w[kk];
      acc = acc - g.row_a[i] * g.colsum[o] - g.row_b[i] * g.wzp[o];
      float y = static_cast<float>(acc) * (g.row_scale[i] * g.wscale[o]);
      if (g.ep.bias != nullptr) y = y + g.ep.bias[o];
      if (g.ep.gelu) y = gelu_ref(y);
      c[o] = g.ep.accumulate ? c[o] + y : y;
    }
  }
}

}  // namespace

void quantize_rows_u8_ref(const QuantRowsArgs& a, int r0, int r1) {
  auto* out = static_cast<uint8_t*>(a.out);
  for (int i = r0; i < r1; ++i) {
    const float* x = a.x + static_cast<size_t>(i) * static_cast<size_t>(a.ldx);
    float scale = a.q.scale;
    int zp = a.q.zero_point;
    if (a.q.dynamic) {
      float mn = x[0], mx = x[0];
      for (int k = 1; k < a.k; ++k) {
        mn = std::min(mn, x[k]);
        mx = std::max(mx, x[k]);
      }
      dynamic_params(mn, mx, a.q, &scale, &zp);
    }
    uint8_t* o = out + static_cast<size_t>(i) * static_cast<size_t>(a.ldo);
    int32_t sum = 0;
    for (int k = 0; k < a.k; ++k) {
      const int q = quantize_value(x[k], scale, zp, a.q.qmin, a.q.qmax);
      sum += q;
      o[k] = static_cast<uint8_t>(q + 128);
    }
    for (int k = a.k; k < a.kp; ++k) o[k] = 0;
    a.row_a[i] = 128 + zp;
    a.row_b[i] = sum - a.k * zp;
    a.row_scale[i] = scale;
  }
}

void dynamic_params(float mn, float mx, const ActQuant& q, float* scale, int* zero_point) {
  // The format's one rule (docs/model-format.md, "Dynamic input ranges").
  const io::QParams p = io::choose_qparams(mn, mx, io::QRange{q.qmin, q.qmax}, q.symmetric);
  *scale = p.scale;
  *zero_point = p.zero_point;
}

int quantize_value(float x, float scale, int zero_point, int qmin, int qmax) {
  float v = x / scale;
  // Clamp before converting so huge values saturate instead of overflowing the int; NaN -> low.
  if (!(v >= -1073741824.0f)) v = -1073741824.0f;
  if (v > 1073741824.0f) v = 1073741824.0f;
  const int q = static_cast<int>(std::nearbyint(v)) + zero_point;  // current mode: half to even
  return std::clamp(q, qmin, qmax);
}

void fill_gemm_q8_ref(GemmIntKernels& k) {
  k.isa = Isa::kRef;
  k.mr = 4;
  k.nr = kNr;
  k.kgroup = 4;
  k.act_bytes = 1;
  k.max_bits = 8;
  k.code_offset = 0;
  k.packed_bytes = packed_bytes;
  k.pack = pack;
  k.gemm = gemm;
  k.quantize_rows = quantize_rows_u8_ref;
}

}  // namespace vitopt::runtime::kernels
