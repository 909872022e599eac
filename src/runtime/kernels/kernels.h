// The kernel table: every kernel family has a scalar reference (`*_ref.cpp`, the spec) and SIMD
// versions (`*_<isa>.cpp`) with the same signatures. A table per level (dispatch.cpp) picks, per
// family, the best version the level's features allow: fp32 (GEMM, attention, LayerNorm, GELU),
// int8 GEMM and packed-int4 GEMM choose independently (see choose_kernels). Only src/runtime
// includes this. Kernels work on a sub-range (rows, panels) single-threaded; linear_layer.cpp and
// the engine split the work across the thread pool.
// Legend: M rows (tokens), K reduction (input features), N outputs, Kp = K rounded up to kgroup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vitopt::runtime::kernels {

// Kernel levels (VITOPT_ISA names in isa_name): each is a set of CPU features (level_features),
// modelled on a real CPU class so that forcing one on a bigger CPU runs exactly what that class
// runs: avx2 = Zen 3 / Haswell (AVX2+FMA), avx2vnni = Alder Lake class (+ AVX-VNNI, VEX
// vpdpbusd on ymm), avx512 = Skylake-SP (AVX-512 F/BW/DQ/VL, no VNNI), avx512vnni = Ice Lake /
// Sapphire Rapids / Zen 4 (+ AVX-512 VNNI). The order is only for "best": a level is usable when
// the CPU has all its features (cpu_supports), not because a lower one is.
enum class Isa { kRef = 0, kAvx2 = 1, kAvx2Vnni = 2, kAvx512 = 3, kAvx512Vnni = 4 };
inline constexpr Isa kAllIsas[] = {Isa::kRef, Isa::kAvx2, Isa::kAvx2Vnni, Isa::kAvx512, Isa::kAvx512Vnni};
inline constexpr int kIsaCount = 5;

// CPU features the kernels use, each already combined with the OS support it needs (XGETBV: ymm
// state for AVX2/AVX-VNNI, opmask + zmm state for AVX-512).
struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA (+ F16C), ymm state enabled
  bool avx_vnni = false;    // AVX-VNNI (CPUID 7.1 EAX[4]), VEX vpdpbusd on ymm
  bool avx512 = false;      // AVX-512 F + BW + DQ + VL, zmm and opmask state enabled
  bool avx512_vnni = false; // AVX-512 VNNI (CPUID 7.0 ECX[11]) on top of avx512
  bool operator==(const CpuFeatures&) const = default;
};

// The implementation each family runs for a feature set: the rule documented in README/DESIGN.
//   fp32: avx512 if avx512, else avx2 if avx2, else ref (VNNI plays no part).
//   int8: avx512vnni, else avx2vnni (AVX-VNNI), else avx512 (exact s16 vpmaddwd on zmm), else
//         avx2 (exact s16 vpmaddwd on ymm), else ref.
//   int4: the same order as int8 (the non-VNNI versions use vpmaddubsw, exact for 4-bit codes).
struct KernelChoice {
  Isa fp32 = Isa::kRef, int8 = Isa::kRef, int4 = Isa::kRef;
};
KernelChoice choose_kernels(const CpuFeatures& f);
CpuFeatures level_features(Isa isa);  // the features a level allows (and requires)

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
  bool prefetch_weights =
      false;  // w streams from memory: prefetch its panels (panel_prefetch_impl.inc)
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

// Integer GEMM: acc = sum_k u[i,k] * c[o,k] (int32, exact), then
//   y = float(acc - row_a[i]*colsum[o] - row_b[i]*wzp[o]) * (row_scale[i] * wscale[o]) + bias[o]
// which equals sum_k (q_x - zp_x)(q_w - zp_w) * s_x * s_w exactly up to the final fp32 scaling.
// c is the stored weight value: the code q_w plus the family's code_offset (8 for the unsigned
// int4 nibbles), and colsum / wzp are taken over c (sum_k c, zp_w + offset): the offset cancels.
struct GemmIntArgs {
  const void* a = nullptr;  // quantized activations (QuantRowsArgs::out), u8 or s16
  int lda = 0;              // elements
  const void* w = nullptr;  // packed int weights
  int m = 0, n = 0, kp = 0;
  const int32_t* row_a = nullptr;
  const int32_t* row_b = nullptr;
  const float* row_scale = nullptr;
  const int32_t* colsum = nullptr;  // (N) sum_k c[o,k]
  const int32_t* wzp = nullptr;     // (N) weight zero points + code_offset
  const float* wscale = nullptr;    // (N) weight scales (per tensor expanded)
  // Optional, both or neither: with static input quantization every row has the same row_a and
  // row_scale, and with zero weight zero points (wzp all 0) the row_b term vanishes, so the caller
  // may precompute col_offset[o] = row_a * colsum[o] and col_scale[o] = row_scale * wscale[o]. The
  // SIMD epilogues then subtract one vector and multiply by one (no per-row integer multiplies):
  // the same integers and the same fp32 products, so the same bits. The references ignore them.
  const int32_t* col_offset = nullptr;  // (N)
  const float* col_scale = nullptr;     // (N)
  float* c = nullptr;
  int ldc = 0;
  Epilogue ep;
  bool prefetch_weights =
      false;  // w streams from memory: prefetch its panels (panel_prefetch_impl.inc)
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
  // Token merging's proportional attention: key_bias[b * bias_ld + t] (log of token t's size) is
  // added to every score of key t. bias_ld >= np, padding readable (any finite value). Null: none.
  const float* key_bias = nullptr;
  int bias_ld = 0;
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
  const float* key_bias = nullptr;  // as AttentionArgs (added to the scores before the softmax)
  int bias_ld = 0;
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

// The steps of a size-weighted token average (token merging), per output row: kKeep y = x * s / s
// (an unmerged token, rounded as the weighted sum divides), kScale y = x * s, kAddScaled
// y += x * s, kDivide y /= s (x unused: null).
enum class MergeRowOp { kKeep, kScale, kAddScaled, kDivide };

// One integer GEMM family (int8 weights or nibble-packed int4 weights) at one implementation.
// Weights are packed once at load; activations are quantized per call by quantize_rows into the
// family's element type (act_bytes: 1 = u8 codes for vpdpbusd / vpmaddubsw, 2 = s16 for vpmaddwd).
struct GemmIntKernels {
  Isa isa = Isa::kRef;   // implementation level
  int mr = 4, nr = 16, kgroup = 4, act_bytes = 1;
  int max_bits = 8;      // widest weight codes it takes: 8 (s8) or 4 (nibbles, codes in [-8, 7])
  int code_offset = 0;   // stored value = code + code_offset (see GemmIntArgs)
  size_t (*packed_bytes)(int n, int kp) = nullptr;
  void (*pack)(const int8_t* w, int n, int k, int kp, void* out) = nullptr;  // w (N, K) codes
  void (*gemm)(const GemmIntArgs& g, int panel0, int panel1, int row0, int row1) = nullptr;
  void (*quantize_rows)(const QuantRowsArgs& a, int row0, int row1) = nullptr;
};

struct KernelTable {
  Isa isa = Isa::kRef;   // the level this table was built for
  const char* name = "ref";
  Isa fp32_isa = Isa::kRef;  // implementation of the fp32 family (GEMM, attention, LayerNorm, GELU)
  // fp32 GEMM: packed weights are panels of `f32_nr` outputs; rows in tiles of `f32_mr`.
  int f32_mr = 4, f32_nr = 16;
  size_t (*packed_f32_floats)(int n, int k) = nullptr;
  void (*pack_f32)(const float* w, int n, int k, float* out) = nullptr;  // w (N, K)
  void (*gemm_f32)(const GemmF32Args& g, int panel0, int panel1, int row0, int row1) = nullptr;
  GemmIntKernels q8;  // int8 weights (codes of 2..8 bits)
  GemmIntKernels q4;  // nibble-packed weights (codes of 2..4 bits)
  // LayerNorm over the last dim: y[i] = (x[i] - mean) / sqrt(var + eps) * gamma + beta.
  void (*layernorm)(const float* x, int ldx, float* y, int ldy, int rows, int c,
                    const float* gamma, const float* beta, float eps) = nullptr;
  // Attention of query rows [i0, i0 + rows) of image b, head h; 1 <= rows <= kAttnRows.
  void (*attention)(const AttentionArgs& a, int b, int h, int i0, int rows) = nullptr;
  // Quantized-input attention for task = b * heads + h.
  void (*attention_q)(const AttentionQuantArgs& a, int task) = nullptr;
  // Elementwise GELU in place (used where no GEMM epilogue can take it).
  void (*gelu)(float* x, size_t n) = nullptr;
  // One head's keys of n tokens (rows of stride ld) into (D, np) columns, dst[d * np + t] =
  // k_t[d]: the transposed keys of the fp32 attention (AttentionArgs::kt). A copy.
  void (*transpose_keys)(const float* k, size_t ld, int n, int head_dim, float* dst,
                         size_t np) = nullptr;
  // Token merging's inner loops (merge_impl.inc; token_merge.h says what they compute). Every
  // level returns the reference's bits, so the merged tokens never depend on the level.
  void (*merge_metric)(const float* keys, int ldk, int heads, int head_dim, int t0, int t1,
                       float* metric) = nullptr;
  int (*row_argmax)(const float* x, int j0, int j1, float* best) = nullptr;
  void (*merge_row)(MergeRowOp op, const float* x, float s, float* y, size_t n) = nullptr;
};

// The table for a level (throws InternalError if this CPU cannot run it).
const KernelTable& table(Isa isa);
// The level to run: $VITOPT_ISA when set (a level this CPU lacks is capped, with a warning on
// stderr, to the best supported level whose features it includes), else the best this CPU has.
Isa default_isa();
Isa parse_isa(const char* name);  // InputError on an unknown name
bool cpu_supports(Isa isa);
const char* isa_name(Isa isa);
const char* isa_names();          // "ref, avx2, avx2vnni, avx512, avx512vnni" (for messages)
// Capping rule of default_isa as a pure function: the best level whose features are both in
// `requested` and in `cpu`.
Isa cap_level(Isa requested, const CpuFeatures& cpu);

// What this CPU reports (CPUID + XGETBV, cached): the kernels' features, the raw flag names for
// reports, the model name and the L3 size the int4 rule compares weights with.
const CpuFeatures& cpu_features();
std::vector<std::string> cpu_flag_names();  // e.g. {"avx2", "fma", "avx512f", ..., "avx512_vnni"}
std::string cpu_model_name();               // CPUID brand string ("" if none)
// Bytes of one L3 instance (the cache the running cores share): sysfs cache/index*/ level 3, else
// CPUID leaf 4 (Intel) / 0x8000001D (AMD); 0 when neither says. CPUID 0x80000006 is not used: in
// VMs it reports the host's total (508 MB on a 2-vCPU EPYC guest), not what a core can use.
size_t l3_cache_bytes();

// Fillers: each kernel file sets its family's entries for its implementation (the ref fillers
// first, then the chosen SIMD ones overwrite what they implement).
#define VITOPT_F32_FILLERS(isa)                  \
  void fill_gemm_f32_##isa(KernelTable& t);      \
  void fill_attention_f32_##isa(KernelTable& t); \
  void fill_layernorm_f32_##isa(KernelTable& t); \
  void fill_merge_f32_##isa(KernelTable& t);
VITOPT_F32_FILLERS(ref)
VITOPT_F32_FILLERS(avx2)
VITOPT_F32_FILLERS(avx512)
#undef VITOPT_F32_FILLERS
// The key transpose: the reference, and the AVX2 one that the avx2 and avx512 fp32 levels share.
void fill_transpose_f32_ref(KernelTable& t);
void fill_transpose_f32_avx2(KernelTable& t);
void transpose_keys_ref(const float* k, size_t ld, int n, int head_dim, float* dst, size_t np);
#define VITOPT_INT_FILLERS(isa)                                          \
  void fill_gemm_q8_##isa(GemmIntKernels& k);                            \
  void fill_gemm_q4_##isa(GemmIntKernels& k);
VITOPT_INT_FILLERS(ref)
VITOPT_INT_FILLERS(avx2)
VITOPT_INT_FILLERS(avx2vnni)
VITOPT_INT_FILLERS(avx512)
VITOPT_INT_FILLERS(avx512vnni)
#undef VITOPT_INT_FILLERS
// Activation quantizers shared by the integer families of a vector width (quantize_rows_*.cpp).
void quantize_rows_u8_ref(const QuantRowsArgs& a, int row0, int row1);
void quantize_rows_u8_avx2(const QuantRowsArgs& a, int row0, int row1);
void quantize_rows_s16_avx2(const QuantRowsArgs& a, int row0, int row1);
void quantize_rows_u8_avx512(const QuantRowsArgs& a, int row0, int row1);
void quantize_rows_s16_avx512(const QuantRowsArgs& a, int row0, int row1);

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
