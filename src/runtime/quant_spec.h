// The "vitopt.quant" metadata of a quantized model file (docs/model-format.md): which Linear
// weights are stored as integers (bits, symmetric, per channel) and how each Linear's input is
// quantized (static per tensor or dynamic per token). Parsing only; tensors are checked by the
// loader against this spec.
#pragma once

#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

namespace vitopt::runtime {

struct WeightQuant {
  int bits = 8;            // 2..16: <= 4 packed U8 nibbles, 5..8 I8, 9..16 I16
  bool symmetric = true;   // symmetric: zero point 0 and q in [-(2^(b-1)-1), 2^(b-1)-1]
  bool per_channel = true; // scale per output row (else one per tensor)
  int qmin() const { return symmetric ? -((1 << (bits - 1)) - 1) : -(1 << (bits - 1)); }
  int qmax() const { return (1 << (bits - 1)) - 1; }
};

struct InputQuant {
  int bits = 8;            // 2..16 (the integer kernels take <= 8; wider inputs are simulated)
  bool symmetric = false;
  bool dynamic = false;    // per token min/max at run time (no scale in the file)
  float scale = 1.0f;      // static only, > 0
  int zero_point = 0;      // static only, in [qmin, qmax]; 0 when symmetric
  int qmin() const { return symmetric ? -((1 << (bits - 1)) - 1) : -(1 << (bits - 1)); }
  int qmax() const { return (1 << (bits - 1)) - 1; }
};

// extras.attention: the inputs of the two attention matmuls (q after the D^-1/2 scaling, k, v:
// static per block) and the softmax probabilities (fixed-range uniform or log2 codes).
struct AttentionQuant {
  int bits = 8;             // q/k/v, 2..16
  bool symmetric = true;
  int prob_bits = 8;        // 2..16
  bool prob_log2 = false;   // "log2" (p = 2^-c) or "uniform" (k / (2^b - 1))
  struct Block {
    InputQuant q, k, v;     // static
  };
  std::map<int, Block> blocks;  // by block index (checked against the config by the loader)
};

struct QuantSpec {
  std::map<std::string, WeightQuant> weights;  // by weight tensor name
  std::map<std::string, InputQuant> inputs;    // by Linear name ("blocks.0.attn.qkv")
  std::optional<AttentionQuant> attention;     // extras.attention
  nlohmann::json to_json() const;
  // Validates field names, types and ranges; `extras` keys other than `attention` are refused.
  static QuantSpec from_json(const nlohmann::json& j, const std::string& source);
};

inline constexpr const char* kQuantKey = "vitopt.quant";

}  // namespace vitopt::runtime
