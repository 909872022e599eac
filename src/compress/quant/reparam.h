// LayerNorm scale folding (as in RepQ-ViT): post-LayerNorm activations differ strongly in range
// from channel to channel, which a per-tensor activation quantizer handles badly. Each channel c of
// a LayerNorm output y is replaced by y'_c = (y_c - o_c) / r_c (folded into the LayerNorm's
// weight/bias), and the Linear(s) reading it get W' = W diag(r), b' = b + W o, so the fp32 model
// computes the same function while y' has similar, centred ranges across channels. The file stays
// within the format: only fp32 norms and the (then quantized) weights change.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "compress/quant/observer.h"
#include "model/vit.h"

namespace vitopt::quant {

struct ReparamOptions {
  // r_c = (h_c / mean(h))^alpha with h_c the channel's half range: 1 equalizes the ranges fully,
  // 0.5 splits the difficulty between activations and weights (as SmoothQuant's migration).
  double alpha = 0.5;
  bool center = true;  // o_c = channel centre (only where every reader has a bias)
};

// Folds per-channel scales into norm1 -> attn.qkv, norm2 -> mlp.fc1 and norm -> head(/head_dist)
// using the per-channel min/max seen by `observers` (from observe_linear_inputs on this model).
// Returns a JSON summary per LayerNorm (range spread before/after).
nlohmann::json fold_layernorm_scales(model::ViT& model,
                                     const std::map<std::string, ActivationObserver>& observers,
                                     const ReparamOptions& options);

}  // namespace vitopt::quant
