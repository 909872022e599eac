// Attention-matmul quantization: the probability quantizers and the hooks on AttentionImpl.
#include "model/attention_quant.h"

#include <cmath>

#include "core/error.h"
#include "model/quantized_model.h"

namespace vitopt::model {

namespace {

// Forward value q(x), gradient of the identity (straight-through estimator).
torch::Tensor ste(const torch::Tensor& x, const torch::Tensor& q) { return x + (q - x).detach(); }

}  // namespace

torch::Tensor quantize_probs(const torch::Tensor& p, int bits, const std::string& quantizer) {
  io::quant_range(bits, true, "probability bits");
  const double levels = std::ldexp(1.0, bits) - 1;  // 2^b - 1
  if (quantizer == "uniform") return torch::round(p * levels) / levels;
  if (quantizer != "log2")
    core::throw_input("probability quantizer: expected 'uniform' or 'log2', got '{}'", quantizer);
  // c = rne(-log2 p) in [0, 2^b - 2]; larger c (and p = 0, where -log2 p = inf) -> 0.
  const auto c = torch::round(-torch::log2(p)).clamp_min(0);  // (.., N) float
  return torch::where(c <= levels - 1, torch::exp2(-c), torch::zeros_like(p));
}

void apply_attention_quant(ViT& model, const io::AttentionQuant* aq) {
  for (int i = 0; i < model->config().depth; ++i) {
    auto& blk = model->block(i);
    if (!blk.attn) continue;
    auto& at = *blk.attn;
    const io::AttentionQuant::Block* found = nullptr;
    if (aq != nullptr) {
      if (auto it = aq->blocks.find(i); it != aq->blocks.end()) found = &it->second;
    }
    if (found == nullptr) {
      at.q_transform = at.k_transform = at.v_transform = at.probs_transform = nullptr;
      continue;
    }
    const auto b = *found;
    at.q_transform = [q = b.q](const torch::Tensor& x) { return ste(x, fake_quant_input(x, q)); };
    at.k_transform = [k = b.k](const torch::Tensor& x) { return ste(x, fake_quant_input(x, k)); };
    at.v_transform = [v = b.v](const torch::Tensor& x) { return ste(x, fake_quant_input(x, v)); };
    at.probs_transform = [bits = aq->prob_bits, kind = aq->prob_quantizer](const torch::Tensor& p) {
      return ste(p, quantize_probs(p, bits, kind));
    };
  }
}

}  // namespace vitopt::model
