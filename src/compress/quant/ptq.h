// Post-training quantization of a ViT: optional LayerNorm scale folding, weight quantization of
// every dense Linear (and the patch embedding) with an observer-chosen clipping range, and static
// (calibrated) or dynamic (per-token) quantization of their inputs. The result is held as the
// folded fp32 model plus integer weights and input parameters: QAT continues from it, the writer
// stores it, and simulate() gives the ViT that a saved file loads as.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "compress/quant/observer.h"
#include "compress/quant/reparam.h"
#include "model/attention_quant.h"
#include "model/quantized_model.h"

namespace vitopt::quant {

struct PtqOptions {
  int wbits = 8;                 // default weight bits, 2..16
  std::optional<int> abits = 8;  // activation bits (nullopt: fp32 activations)
  bool w_symmetric = true;       // --scheme
  bool w_per_channel = true;     // --granularity channel|tensor
  bool a_symmetric = false;      // --act-scheme (asymmetric suits post-GELU inputs)
  bool a_dynamic = false;        // --act-granularity token: per-token scales at run time
  ObserverOptions w_observer, a_observer;
  bool reparam = true;  // fold per-channel LayerNorm ranges (reparam.h)
  ReparamOptions reparam_options;
  std::map<std::string, int> layer_wbits;  // per Linear name overrides (mixed precision)
  // Attention matmuls (--attn-bits): q/k/v static per-tensor codes per block, calibrated after
  // the Linear inputs; softmax probabilities with a fixed-range quantizer (log2 keeps the many
  // tiny probabilities apart from the few large ones; uniform wastes codes on that skew).
  std::optional<int> attn_bits;            // nullopt: attention matmuls stay fp32
  int prob_bits = 8;
  std::string prob_quantizer = "auto";     // "log2" | "uniform" | "auto": log2 at <= 4 bits
  int64_t batch_size = 64;                 // calibration batch
  uint64_t seed = 0;
};

struct QuantizedState {
  model::ViT fp32{nullptr};                               // folded fp32 model (latent weights)
  std::map<std::string, model::QuantizedWeight> weights;  // by weight tensor name
  std::map<std::string, io::InputQuant> inputs;           // by unit (quantizable_linears)
  std::optional<io::AttentionQuant> attention;            // attention matmuls, if quantized
  nlohmann::json report = nlohmann::json::object();       // reparam, per-layer SQNR
};

// Validates the options (bits ranges, observer settings); InputError names the flag.
void validate(const PtqOptions& o);

// Quantizes a copy of `model` (left unchanged) calibrated on `calib` (Ncal, C, H, W).
QuantizedState run_ptq(model::ViT& model, const torch::Tensor& calib, const PtqOptions& o);

// Input quantizers calibrated on `weights_model` (weights already as they will be quantized):
// one per quantizable Linear; adds per-site activation SQNR to `report` if given.
std::map<std::string, io::InputQuant> calibrate_inputs(model::ViT& weights_model,
                                                          const torch::Tensor& calib,
                                                          const PtqOptions& o,
                                                          nlohmann::json* report = nullptr);

// Attention-matmul quantizers calibrated on `inputs_model` (weights and Linear inputs already
// quantized); adds per-block q/k/v SQNR and ranges to `report` if given.
io::AttentionQuant calibrate_attention(model::ViT& inputs_model, const torch::Tensor& calib,
                                          const PtqOptions& o, nlohmann::json* report = nullptr);

// The ViT a saved file of this state loads as: dequantized weights, input fake-quant hooks.
model::ViT simulate(const QuantizedState& s);

// Writes the state as a quantized model file (atomically).
void save_quantized(const QuantizedState& s, const std::filesystem::path& path,
                    const std::map<std::string, std::string>& extra_metadata = {});

}  // namespace vitopt::quant
