// Differentiable quantizers for QAT and the error measures used in analysis: fake quantization with
// a straight-through estimator (STE), LSQ (learned step size), and SQNR. The integer arithmetic
// itself (ranges, qparams, rounding, packing) is the file format's and lives in
// model/quantized_model.h; these functions compute exactly the same forward values.
#pragma once

#include <torch/torch.h>

#include <string>

#include "model/quantized_model.h"

namespace vitopt::quant {

using io::QRange;

// Forward: s * (clamp(rne(x / s) + z, qmin, qmax) - z), identical to the format's fake quant.
// Backward (clipped STE): d/dx = 1 inside the representable range [s(qmin-z), s(qmax-z)], 0
// outside; no gradient to s or z. s, z broadcast against x (e.g. (out, 1) rows or scalars).
torch::Tensor fake_quant_ste(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, QRange range);

// LSQ (Esser et al. 2020): same forward as fake_quant_ste with a learnable scale `scale` (> 0)
// and a fixed zero point; the scale's gradient is multiplied by grad_scale (1/sqrt(n * qmax)
// in the paper, n = elements per scale) to keep its updates comparable to the weights'.
torch::Tensor fake_quant_lsq(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, QRange range, double grad_scale);

// The LSQ gradient scale for a quantizer with `elements_per_scale` values and range `range`.
double lsq_grad_scale(int64_t elements_per_scale, QRange range);

// Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - x̂)^2); +inf when exact.
double sqnr_db(const torch::Tensor& x, const torch::Tensor& x_hat);

// Parsing the textual options of `vitopt quantize` (errors name the flag and the choices).
enum class ObserverKind { MinMax, Percentile, Mse };
ObserverKind parse_observer(const std::string& name, const std::string& flag = "--observer");
std::string observer_name(ObserverKind kind);
bool parse_scheme(const std::string& name, const std::string& flag = "--scheme");  // true: sym
bool parse_channel_granularity(const std::string& name,
                               const std::string& flag = "--granularity");  // true: per channel

}  // namespace vitopt::quant
