// Attention-matmul quantization on the LibTorch side (the format: io::AttentionQuant, the
// `extras.attention` entry of docs/model-format.md): the probability quantizers on tensors and
// the hooks that fake-quantize q (scaled by D^-0.5), k, v and the post-softmax probabilities of
// the listed blocks. Arithmetic only; calibration lives in src/compress/quant.
#pragma once

#include <string>

#include "io/quant_spec.h"
#include "model/vit.h"

namespace vitopt::model {

// Probabilities p in [0, 1] -> their quantized values (same shape). uniform: rne(p (2^b-1)) /
// (2^b-1). log2: c = rne(-log2 p); p̂ = 2^-c if c <= 2^b - 2, else 0 (the last code is zero).
torch::Tensor quantize_probs(const torch::Tensor& p, int bits, const std::string& quantizer);

// Installs the hooks on every block listed (straight-through gradients, so QAT trains through
// them); nullptr clears all attention hooks.
void apply_attention_quant(ViT& model, const io::AttentionQuant* aq);

}  // namespace vitopt::model
