// Quantized models on the LibTorch side (docs/model-format.md, "Quantized files"): the tensor
// versions of the format's quantizer (per channel / tensor / token, round half to even), the
// conversion of quantized weights to and from io's plain arrays (io/code_packing packs them), the
// fake-quant hooks, and the reader that rebuilds a ViT simulating the integer model exactly
// (dequantized weights; input fake-quant through Linear hooks). The format itself (spec, ranges,
// packing, header) is io/; calibration, observers, QAT and PTQ live in src/compress/quant.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/code_packing.h"
#include "io/model_header.h"
#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "model/vit.h"

namespace vitopt::model {

// Per-row io::choose_qparams: lo/hi (R) float -> scale (R) float, zero_point (R) int64, the same
// float32 arithmetic element by element.
std::pair<torch::Tensor, torch::Tensor> choose_qparams(const torch::Tensor& lo,
                                                       const torch::Tensor& hi, int bits,
                                                       bool symmetric);

// q = clamp(rne(x / scale) + zp, qmin, qmax) as int64, and its inverse scale * (q - zp).
// scale/zero_point broadcast against x (e.g. (out, 1) for per-channel rows of an (out, in) weight).
torch::Tensor quantize_codes(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, io::QRange range);
torch::Tensor dequantize_codes(const torch::Tensor& q, const torch::Tensor& scale,
                               const torch::Tensor& zero_point);

// One quantized weight: codes (out, in) int64 in [qmin, qmax], scale (out) or (1) float32,
// zero_point same shape int64 (all zero when symmetric).
struct QuantizedWeight {
  io::WeightQuant spec;
  torch::Tensor codes, scale, zero_point;
  torch::Tensor dequantize() const;  // (out, in) float32
};

// Quantizes an (out, in) float weight with the given spec and clipping range per row (lo, hi of
// shape (out) for per-channel, (1) per tensor). Undefined lo/hi: the weight's own min/max.
QuantizedWeight quantize_weight(const torch::Tensor& weight, const io::WeightQuant& spec,
                                torch::Tensor lo = {}, torch::Tensor hi = {});

// Tensors <-> io's plain arrays (what io::add_quantized_weight / read_quantized_weight take).
io::QuantizedWeightData to_plain(const QuantizedWeight& w);
QuantizedWeight from_plain(const io::QuantizedWeightData& w);

// Activation fake-quant exactly as the format defines it: x (..., K) -> x̂ (..., K) float32.
// Static: one scale/zp; dynamic: per row of the last dimension.
torch::Tensor fake_quant_input(const torch::Tensor& x, const io::InputQuant& q);
// Patch-embedding input (B, in_ch, H, W) with patch side P: as the Linear on (in_ch*P*P) patch
// rows, so dynamic quantization uses one scale per patch (per token).
torch::Tensor fake_quant_patch_input(const torch::Tensor& x, const io::InputQuant& q, int patch);

// Names of every quantizable unit (one weight and the input it multiplies) in module order, the
// patch embedding first ("patch_embed.proj"): a dense Linear by its name (weight "<name>.weight");
// a low-rank Linear as two units, "<name>" (weight_v, on the Linear's input) and
// "<name>.weight_u" (weight_u, on the (tokens, r) activation between the factors).
std::vector<std::string> quantizable_linears(ViT& model);
// The weight tensor name of a unit: "<name>.weight", "<name>.weight_v" or "<name>.weight_u"; ""
// for a Linear that shares another block's weights (the owner's unit quantizes them, once).
std::string unit_weight_name(ViT& model, const std::string& unit);
// Sets each named unit's input hook (input_transform, mid_transform for "<name>.weight_u", or the
// patch hook) to fake_quant_input; clears the hooks of units not in `inputs`.
void apply_input_quant(ViT& model, const std::map<std::string, io::InputQuant>& inputs);

// The quantized weights stored in a file whose header was read by io::read_model_header, by
// weight name, every tensor checked by io::read_quantized_weight.
std::map<std::string, QuantizedWeight> quantized_weights_from_file(const io::SafeTensorsFile& file,
                                                                   const io::ModelHeader& header);
// A ViT that computes exactly what the file's integer model computes (up to fp32 summation order):
// weights = dequantized codes, inputs and attention fake-quantized by hooks. Called by load_model().
ViT load_quantized_model(const io::SafeTensorsFile& file, const io::ModelHeader& header);

}  // namespace vitopt::model
