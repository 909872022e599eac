// The kernel table: every kernel family has a scalar reference (`*_ref.cpp`, the spec) and SIMD
// versions (`*_avx2.cpp`, `*_avx512.cpp`) with the same signatures. One table is chosen once at
// load by CPU detection (or VITOPT_ISA / RuntimeOptions::isa); only src/runtime includes this.
// Kernels here work on a sub-range (rows, panels) single-threaded; gemm.cpp and the engine split
// the work across the thread pool.
// Legend: M rows (tokens), K reduction (input features), N outputs, Kp = K rounded up to kgroup.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vitopt::runtime::kernels {

enum class Isa { kRef = 0, kAvx2 = 1, kAvx512 = 2 };

// y = (accumulate ? y : 0) + act(x @ w^T + bias): the fused epilogue of every GEMM.
struct Epilogue {
  const float* bias = nullptr;  // (N) or null
  bool gelu = false;            // exact (erf) GELU after the bias
  bool accumulate = false;      // residual add into the output (y += ...)
};

// fp32 GEMM: c (M, N) row stride ldc = a (M, K) row stride lda @ w^T, w pre-packed by pack_f32.
struct GemmF32Args {
  const float* a = nullptr;
  int lda = 0;
  const float* w = nullptr;  // packed panels (layout private to the table that packed it)
  int m = 0, n = 0, k = 0;
  float* c = nullptr;
  int ldc = 0;
  Epilogue ep;
};

// How a Linear input is quantized (docs/model-format.md): q = clamp(rne(x / s) + zp, qmin, qmax).
struct ActQuant {
  int qmin = -128, qmax = 127;  // bits <= 8 for the integer kernels
  bool symmetric = false;
  bool dynamic = false;         // per row (token) scale from that row's min/max
  float scale = 1.0f;           // static only
  int zero_point = 0;           // static only
};

// Quantized activations as stored for the integer GEMM: u = q + 128 (0..255) in `act_bytes`-wide
// elements (1: u8, 2: s16), rows of Kp elements (padding 0); per row the terms the epilogue needs:
// row_a = 128 + zp, row_b = sum_k q - K * zp, row_scale = s.
struct QuantRowsArgs {
  const float* x = nullptr;
  int ldx = 0;
  int m = 0, k = 0, kp = 0;
  ActQuant q;
  void* out = nullptr;
  int ldo = 0;  // elements
  int32_t* row_a = nullptr;
  int32_t* row_b = nullptr;
  float* row_scale = nullptr;
};

// Integer GEMM: acc = sum_k u[i,k] * qw[o,k] (int32, exact), then
//   y = float(acc - row_a[i]*colsum[o] - row_b[i]*wzp[o]) * (row_scale[i] * wscale[o]) + bias[o]
// which equals sum_k (q_x - zp_x)(q_w - zp_w) * s_x * s_w exactly up to the final fp32 scaling.
struct GemmQ8Args {
  const void* a = nullptr;  // quantized activations (QuantRowsArgs::out)
  int lda = 0;              // elements
  const void* w = nullptr;  // packed int weights
  int m = 0, n = 0, kp = 0;
  const int32_t* row_a = nullptr;
  const int32_t* row_b = nullptr;
  const float* row_scale = nullptr;
  const int32_t* colsum = nullptr;  // (N) sum_k q_w[o,k]
  const int32_t* wzp = nullptr;     // (N) weight zero points (0 when symmetric)
  const float* wscale = nullptr;    // (N) weight scales (per tensor expanded)
  float* c = nullptr;
  int ldc = 0;
  Epilogue ep;
};

// Fused attention for one (image, head, block of up to kAttnRows query rows): softmax(q k^T * scale) v with an
// online softmax over key tiles, so no (N, N) matrix is stored.
struct AttentionArgs {
  const float* qkv = nullptr;  // (B, N, 3, H, D) = the qkv Linear output, row stride ldqkv
  int ldqkv = 0;
  const float* kt = nullptr;   // (B, H, D, Np) keys transposed, Np = N rounded up to 16, pad 0
  int np = 0;
  bool kt_one_head = false;    // kt holds only the called (b, h)'s keys: (D, Np)
  int batch = 0, tokens = 0, heads = 0, head_dim = 0;
  float scale = 1.0f;          // 1/sqrt(D)
  float* ctx = nullptr;        // (B, N, H*D), row stride ldctx
  int ldctx = 0;
};
inline constexpr int kAttnRows = 8;  // most query rows per call

// The attention tasks of a whole batch: task = (b * heads + h) * blocks + qblock with blocks =
// ceil(N / kAttnRows) blocks of kAttnRows query rows (the last one shorter).
inline int attention_tasks(const AttentionArgs& a) {
  return a.batch * a.heads * ((a.tokens + kAttnRows - 1) / kAttnRows);
}
template <typename AttentionFn>
inline void run_attention_task(AttentionFn fn, const AttentionArgs& a, int task) {
  const int blocks = (a.tokens + kAttnRows - 1) / kAttnRows;
  const int i0 = task % blocks * kAttnRows, bh = task / blocks;
  fn(a, bh / a.heads, bh % a.heads, i0, a.tokens - i0 < kAttnRows ? a.tokens - i0 : kAttnRows);
}

// Attention with fake-quantized matmul inputs (extras.attention, docs/model-format.md) for one
// (image, head): q * scale, q, k and v each through its static quantizer (x_hat = s (q - zp)),
// softmax in fp32, the normalised probabilities coded (quantize_prob), then p_hat @ v_hat. The
// probabilities must be complete before they are coded, so each query row sees all keys at once.
struct AttentionQuantArgs {
  const float* qkv = nullptr;  // (B, N, 3, H, D), row stride ldqkv
  int ldqkv = 0;
  int batch = 0, tokens = 0, heads = 0, head_dim = 0;
  float scale = 1.0f;          // float(D^-1/2), applied to q before its quantizer
  ActQuant q, k, v;            // static quantizers (scale, zero_point, qmin, qmax)
  int prob_bits = 8;
  bool prob_log2 = false;
  float* ctx = nullptr;        // (B, N, H*D), row stride ldctx
  int ldctx = 0;
};

// Rows per block for the GEMMs' row blocking (the A block stays in L2 while every weight panel
// passes over it): about `block` rows, a multiple of mr. A remainder under a quarter block joins
// the others instead of making every panel pass again for a few rows (197 tokens with blocks of
// 192: one block of 197, not 192 + 5; at batch 1 that second pass re-read all the weights).
inline int row_block_rows(int rows, int block, int mr) {
  int n = rows / block;
  if (n == 0 || rows % block > block / 4) ++n;
  const int per = (rows + n - 1) / n;
  return (per + mr - 1) / mr * mr;
}

struct KernelTable {
  Isa isa = Isa::kRef;
  const char* name = "ref";
  // fp32 GEMM: packed weights are panels of `f32_nr` outputs; rows in tiles of `f32_mr`.
  int f32_mr = 4, f32_nr = 16;
  size_t (*packed_f32_floats)(int n, int k) = nullptr;
  void (*pack_f32)(const float* w, int n, int k, float* out) = nullptr;  // w (N, K)
  void (*gemm_f32)(const GemmF32Args& g, int panel0, int panel1, int row0, int row1) = nullptr;
  // Integer GEMM (u8/s16 activations x s8 weights).
  int q8_mr = 4, q8_nr = 16, q8_kgroup = 4, q8_act_bytes = 1;
  size_t (*packed_q8_bytes)(int n, int kp) = nullptr;
  void (*pack_q8)(const int8_t* w, int n, int k, int kp, void* out) = nullptr;  // w (N, K)
  void (*gemm_q8)(const GemmQ8Args& g, int panel0, int panel1, int row0, int row1) = nullptr;
  void (*quantize_rows)(const QuantRowsArgs& a, int row0, int row1) = nullptr;
  // LayerNorm over the last dim: y[i] = (x[i] - mean) / sqrt(var + eps) * gamma + beta.
  void (*layernorm)(const float* x, int ldx, float* y, int ldy, int rows, int c,
                    const float* gamma, const float* beta, float eps) = nullptr;
  // Attention of query rows [i0, i0 + rows) of image b, head h; 1 <= rows <= kAttnRows.
  void (*attention)(const AttentionArgs& a, int b, int h, int i0, int rows) = nullptr;
  // Quantized-input attention for task = b * heads + h.
  void (*attention_q)(const AttentionQuantArgs& a, int task) = nullptr;
  // Elementwise GELU in place (used where no GEMM epilogue can take it).
  void (*gelu)(float* x, size_t n) = nullptr;
};

// The table for a level (throws InternalError if this CPU cannot run it).
const KernelTable& table(Isa isa);
// Best level this CPU supports, overridden by $VITOPT_ISA (ref|avx2|avx512) when set.
Isa default_isa();
Isa parse_isa(const char* name);  // InputError on an unknown name
bool cpu_supports(Isa isa);
const char* isa_name(Isa isa);

// Fillers: each kernel file sets its family's entries for its level (ref first, then SIMD
// levels overwrite what they implement).
#define VITOPT_KERNEL_FILLERS(isa)                                       \
  void fill_gemm_f32_##isa(KernelTable& t);                              \
  void fill_gemm_q8_##isa(KernelTable& t);                               \
  void fill_attention_f32_##isa(KernelTable& t);                         \
  void fill_layernorm_f32_##isa(KernelTable& t);
VITOPT_KERNEL_FILLERS(ref)
VITOPT_KERNEL_FILLERS(avx2)
VITOPT_KERNEL_FILLERS(avx512)
#undef VITOPT_KERNEL_FILLERS

// Shared scalar helpers (also the reference semantics of the SIMD versions).
float gelu_ref(float x);
// Row min/max -> dynamic scale and zero point (docs/model-format.md, "Dynamic input ranges").
void dynamic_params(float mn, float mx, const ActQuant& q, float* scale, int* zero_point);
// q for one value: clamp(rne(x / scale) + zp, qmin, qmax); NaN maps to qmin.
int quantize_value(float x, float scale, int zero_point, int qmin, int qmax);
// A softmax probability's code: uniform rne(p (2^b-1)) / (2^b-1); log2 c = max(rne(-log2 p), 0),
// 2^-c when c <= 2^b - 2, else 0 (p = 0 included).
float quantize_prob(float p, int bits, bool log2);

}  // namespace vitopt::runtime::kernels
