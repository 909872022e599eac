// Quantized model files (docs/model-format.md, "Quantized files"): the integer formats, the
// affine quantizer arithmetic they imply (round half to even, clamping, per-channel/tensor/token),
// packing of 2..16-bit codes into I16/I8/U8, and a reader that rebuilds a ViT simulating the
// integer arithmetic exactly (dequantized weights; input fake-quant through Linear hooks).
// Calibration, observers, QAT and the PTQ job live in src/compress/quant; this is only the format.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"
#include "model/model_file.h"

namespace vitopt::model {

inline constexpr const char* kQuantKey = "vitopt.quant";  // metadata key of the quant JSON
inline constexpr int kQuantVersion = 1;
inline constexpr int kMinQuantBits = 2, kMaxQuantBits = 16;

// Integer code range of a b-bit quantizer: symmetric [-(2^(b-1)-1), 2^(b-1)-1] (the most negative
// code is unused), asymmetric [-2^(b-1), 2^(b-1)-1]. Throws InputError naming `what` if b is
// outside [2, 16].
struct QRange {
  int64_t qmin = 0, qmax = 0;
};
QRange quant_range(int bits, bool symmetric, const std::string& what = "bits");

// Scale and zero point that map [lo, hi] (widened to contain 0, so 0 is exact) onto the code
// range: asymmetric scale = (hi - lo) / (qmax - qmin), zp = clamp(qmin - rne(lo / scale));
// symmetric scale = max(|lo|, |hi|) / qmax, zp = 0. A zero or non-finite scale becomes 1 (zp by
// the same formula). Computed in float32 exactly as the runtime does for dynamic (per-token)
// activations (docs/model-format.md, "Decisions the spec left open").
struct QParams {
  float scale = 1.0f;
  int64_t zero_point = 0;
};
QParams choose_qparams(float lo, float hi, int bits, bool symmetric);

// Per-row versions for tensors: lo/hi (R) float -> scale (R) float, zero_point (R) int64.
std::pair<torch::Tensor, torch::Tensor> choose_qparams(const torch::Tensor& lo,
                                                       const torch::Tensor& hi, int bits,
                                                       bool symmetric);

// q = clamp(rne(x / scale) + zp, qmin, qmax) as int64, and its inverse scale * (q - zp).
// scale/zero_point broadcast against x (e.g. (out, 1) for per-channel rows of an (out, in) weight).
torch::Tensor quantize_codes(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, QRange range);
torch::Tensor dequantize_codes(const torch::Tensor& q, const torch::Tensor& scale,
                               const torch::Tensor& zero_point);

// A Linear's weight quantization (metadata "weights" entry).
struct WeightQuant {
  int bits = 8;             // 2..16
  bool symmetric = true;    // asymmetric adds a zero_point tensor
  bool per_channel = true;  // scale per output row (else one per tensor)
};

// A Linear's input quantization (metadata "inputs" entry).
struct InputQuant {
  int bits = 8;
  bool symmetric = false;
  bool dynamic = false;    // true: per token (row) from its own min/max at run time
  float scale = 1.0f;      // static only
  int64_t zero_point = 0;  // static only
};

// Reads a static quantizer's "scale" (finite, > 0) and "zero_point" (in range; 0 when symmetric)
// into `in`, whose bits/symmetric are already set; InputError names `src` and the field.
void read_static_input(const nlohmann::json& e, InputQuant& in, const std::string& src);

// The whole "vitopt.quant" JSON.
struct QuantSpec {
  std::map<std::string, WeightQuant>
      weights;                               // by weight tensor name, e.g. blocks.0.attn.qkv.weight
  std::map<std::string, InputQuant> inputs;  // by Linear name, e.g. blocks.0.attn.qkv
  nlohmann::json extras = nlohmann::json::object();
  nlohmann::json to_json() const;
  // Validates every field (bits range, types, scale > 0, zero point in range, known extras).
  static QuantSpec from_json(const nlohmann::json& j, const std::string& source);
};

// One quantized weight: codes (out, in) int64 in [qmin, qmax], scale (out) or (1) float32,
// zero_point same shape int64 (all zero when symmetric).
struct QuantizedWeight {
  WeightQuant spec;
  torch::Tensor codes, scale, zero_point;
  torch::Tensor dequantize() const;  // (out, in) float32
};

// Quantizes an (out, in) float weight with the given spec and clipping range per row (lo, hi of
// shape (out) for per-channel, (1) per tensor). Undefined lo/hi: the weight's own min/max.
QuantizedWeight quantize_weight(const torch::Tensor& weight, const WeightQuant& spec,
                                torch::Tensor lo = {}, torch::Tensor hi = {});

// Activation fake-quant exactly as the format defines it: x (..., K) -> x̂ (..., K) float32.
// Static: one scale/zp; dynamic: per row of the last dimension.
torch::Tensor fake_quant_input(const torch::Tensor& x, const InputQuant& q);
// Patch-embedding input (B, in_ch, H, W) with patch side P: as the Linear on (in_ch*P*P) patch
// rows, so dynamic quantization uses one scale per patch (per token).
torch::Tensor fake_quant_patch_input(const torch::Tensor& x, const InputQuant& q, int patch);

// Storage of codes: <= 4 bits U8 nibble-packed (out, ceil(in/2)) holding q - qmin, 5..8 bits I8,
// 9..16 bits I16, both (out, in). Bit-exact inverse pair.
struct PackedCodes {
  io::DType dtype = io::DType::I8;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
PackedCodes pack_codes(const torch::Tensor& codes, int bits, bool symmetric);
// `source` names the tensor in errors (wrong dtype/shape, code outside the range).
torch::Tensor unpack_codes(const uint8_t* data, io::DType dtype, const std::vector<int64_t>& shape,
                           int64_t in_features, int bits, bool symmetric,
                           const std::string& source);

// Names of every quantizable Linear (timm names without ".weight") in module order, the patch
// embedding first ("patch_embed.proj"); low-rank Linears are left out (no single weight).
std::vector<std::string> quantizable_linears(ViT& model);
// Sets each named Linear's input_transform (or the patch hook) to fake_quant_input; clears the
// hooks of Linears not in `inputs`.
void apply_input_quant(ViT& model, const std::map<std::string, InputQuant>& inputs);

// Writes a quantized model file atomically: every tensor of `model` as F32 except the weights in
// `weights` (keyed by weight name), stored packed with their .scale/.zero_point siblings; the
// spec's weights entries are taken from `weights`. `spec.inputs`/`extras` are written as given.
void save_quantized_model(ViT& model, const std::map<std::string, QuantizedWeight>& weights,
                          const QuantSpec& spec, const std::filesystem::path& path,
                          const std::map<std::string, std::string>& extra_metadata = {});

bool is_quantized_file(const io::SafeTensorsFile& file);
QuantSpec quant_spec_from_file(const io::SafeTensorsFile& file);
// The quantized weights stored in a file (validated: dtype, shape, code range, scale > 0).
std::map<std::string, QuantizedWeight> quantized_weights_from_file(const io::SafeTensorsFile& file,
                                                                   const QuantSpec& spec);
// A ViT that computes exactly what the file's integer model computes (up to fp32 summation order):
// weights = dequantized codes, inputs fake-quantized by hooks. Called by load_model().
ViT load_quantized_model(const io::SafeTensorsFile& file, const ImportHints& hints = {});

}  // namespace vitopt::model
