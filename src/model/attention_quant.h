// Attention-matmul quantization, the `extras.attention` entry of a quantized file
// (docs/model-format.md): the inputs of the two attention matmuls, q·kᵀ and probs·v, are
// fake-quantized: q (scaled by D^-0.5), k and v with one static scale per block and tensor, and
// the post-softmax probabilities with a fixed-range quantizer, uniform or log2 (probabilities are
// far from uniform: most are tiny, a few near 1, which log2 codes keep apart). This is format and
// arithmetic only; calibration lives in src/compress/quant.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "model/quantized_model.h"

namespace vitopt::model {

inline constexpr const char* kAttentionExtrasKey = "attention";

struct AttentionQuant {
  int bits = 8;                          // q/k/v code width, 2..16
  bool symmetric = true;                 // q/k/v scheme (zero_point 0)
  int prob_bits = 8;                     // probability code width, 2..16
  std::string prob_quantizer = "log2";   // "uniform": k/(2^b-1); "log2": 2^-c, c in [0, 2^b-2]
  struct Block {
    InputQuant q, k, v;                  // static per-tensor (bits/symmetric as above)
  };
  std::map<int, Block> blocks;           // by block index (blocks sharing another's modules: none)

  nlohmann::json to_json() const;
  // Validates everything (bits, quantizer name, scales, zero points, block indices < depth).
  static AttentionQuant from_json(const nlohmann::json& j, int depth, const std::string& source);
};

// Probabilities p in [0, 1] -> their quantized values (same shape). uniform: rne(p (2^b-1)) /
// (2^b-1). log2: c = rne(-log2 p); p̂ = 2^-c if c <= 2^b - 2, else 0 (the last code is zero).
torch::Tensor quantize_probs(const torch::Tensor& p, int bits, const std::string& quantizer);

// Installs the hooks on every block listed (straight-through gradients, so QAT trains through
// them); nullptr clears all attention hooks.
void apply_attention_quant(ViT& model, const AttentionQuant* aq);

}  // namespace vitopt::model
