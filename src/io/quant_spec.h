// The "vitopt.quant" metadata of a quantized model file (docs/model-format.md, "Quantized files"),
// the one definition both halves use: which Linear weights are stored as integers (bits,
// symmetric, per channel), how each Linear's input is quantized (static per tensor or dynamic per
// token), the attention-matmul quantizers (extras.attention), and the scalar arithmetic the format
// implies (code ranges, choose_qparams). JSON is parsed and validated here once; names are checked
// against a config by the header reader. Tensor math on LibTorch tensors lives in src/model.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace vitopt::io {

inline constexpr int kQuantVersion = 1;  // "version" inside vitopt.quant
inline constexpr int kMinQuantBits = 2, kMaxQuantBits = 16;
inline constexpr const char* kAttentionExtrasKey = "attention";  // the one extras key defined

// Integer code range of a b-bit quantizer: symmetric [-(2^(b-1)-1), 2^(b-1)-1] (the most negative
// code is unused), asymmetric [-2^(b-1), 2^(b-1)-1].
struct QRange {
  int qmin = 0, qmax = 0;
};
// Throws InputError naming `what` if bits is outside [2, 16].
QRange quant_range(int bits, bool symmetric, const std::string& what = "bits");

// Scale and zero point that map [lo, hi] (widened to contain 0, so 0 is exact) onto the code
// range: asymmetric scale = (hi - lo) / (qmax - qmin), zp = clamp(qmin - rne(lo / scale));
// symmetric scale = max(|lo|, |hi|) / qmax, zp = 0. A zero or non-finite scale becomes 1 (zp by
// the same formula). Computed in float32: the rule for dynamic (per-token) inputs and for the
// writers' weight ranges (docs/model-format.md, "Decisions the spec left open").
struct QParams {
  float scale = 1.0f;
  int zero_point = 0;
};
QParams choose_qparams(float lo, float hi, QRange range, bool symmetric);
QParams choose_qparams(float lo, float hi, int bits, bool symmetric);

// A Linear's weight quantization ("weights" entry).
struct WeightQuant {
  int bits = 8;             // 2..16: <= 4 packed U8 nibbles, 5..8 I8, 9..16 I16
  bool symmetric = true;    // asymmetric adds a <name>.zero_point tensor
  bool per_channel = true;  // scale per output row (else one per tensor)
  QRange range() const { return quant_range(bits, symmetric); }
  bool operator==(const WeightQuant&) const = default;
};

// A quantized activation: a Linear's input ("inputs" entry) or an attention-matmul operand.
struct InputQuant {
  int bits = 8;
  bool symmetric = false;
  bool dynamic = false;    // true: per token (row) from its own min/max at run time
  float scale = 1.0f;      // static only, finite and > 0
  int zero_point = 0;      // static only, in [qmin, qmax]; 0 when symmetric
  QRange range() const { return quant_range(bits, symmetric); }
  bool operator==(const InputQuant&) const = default;
};

// extras.attention: the inputs of the two attention matmuls. q (after the D^-1/2 scaling), k and
// v: one static quantizer per block and tensor; the softmax probabilities: a fixed-range quantizer,
// "uniform" (k / (2^b - 1)) or "log2" (2^-c, c in [0, 2^b - 2], the last code meaning 0).
struct AttentionQuant {
  int bits = 8;                         // q/k/v code width, 2..16
  bool symmetric = true;                // q/k/v scheme
  int prob_bits = 8;                    // probability code width, 2..16
  std::string prob_quantizer = "log2";  // "uniform" or "log2"
  struct Block {
    InputQuant q, k, v;  // static, bits/symmetric as above
    bool operator==(const Block&) const = default;
  };
  std::map<int, Block> blocks;  // by block index; blocks not listed keep fp32 attention
  bool prob_log2() const { return prob_quantizer == "log2"; }
  bool operator==(const AttentionQuant&) const = default;

  nlohmann::json to_json() const;
  // Validates every field (unknown fields refused); block keys must be decimal indices (their
  // range is checked against the config by validate_quant_names).
  static AttentionQuant from_json(const nlohmann::json& j, const std::string& source);
};

// The whole "vitopt.quant" JSON.
struct QuantSpec {
  std::map<std::string, WeightQuant> weights;  // by weight tensor name ("blocks.0.attn.qkv.weight")
  std::map<std::string, InputQuant> inputs;    // by Linear name ("blocks.0.attn.qkv")
  std::optional<AttentionQuant> attention;     // extras.attention
  bool operator==(const QuantSpec&) const = default;

  nlohmann::json to_json() const;
  // Validates field names, types and ranges (unknown fields and unknown extras keys refused,
  // naming `source` and the entry). Names are checked against a model by validate_quant_names.
  static QuantSpec from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace vitopt::io
