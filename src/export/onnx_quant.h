// The quantized pieces of an ONNX export, each an exact equivalent of the vitopt runtime's
// arithmetic (docs/model-format.md): integer weights as initializers behind DequantizeLinear
// (int8 per channel or per tensor; packed INT4 and INT16 at opset 21), Linear inputs through
// QuantizeLinear/DequantizeLinear (INT8) with the file's static scale and zero point, per-token
// dynamic inputs and wider-than-8-bit codes as the same formula in float ops, and the coded
// attention probabilities of extras.attention.
#pragma once

#include <string>

#include "export/onnx_graph.h"
#include "io/quant_spec.h"
#include "runtime/model_loader.h"

namespace vitopt::exporter {

// The weight of one Linear factor as an (in, out) float value ready for MatMul: an fp32
// initializer, or integer codes + DequantizeLinear (scale per output column, axis 1).
// Weights of more than 8 bits at opset 17 (no INT16 DequantizeLinear) become fp32 initializers
// holding exactly scale * (q - zero_point), the values the runtime computes with.
std::string weight_for_matmul(OnnxGraph& g, const runtime::LinearData& l);

// x_hat = s * (clamp(round_half_even(x / s) + zp, qmin, qmax) - zp), per tensor (static) or per
// row of the last axis (dynamic: s and zp from that row's min/max widened to hold 0).
std::string fake_quant_input(OnnxGraph& g, const std::string& x, const io::InputQuant& q,
                             const std::string& hint);

// A static quantizer given by its numbers. qdq = false: the float-op form even for int8 codes
// (the attention matmul inputs: ONNX Runtime 1.30's transpose optimizer rewrites Q/DQ pairs
// around the key transpose at opset 21 into an invalid graph, and no kernel runs integer
// attention anyway).
std::string fake_quant_static(OnnxGraph& g, const std::string& x, float scale, int zero_point,
                              int qmin, int qmax, const std::string& hint, bool qdq = true);

// Softmax probabilities -> their codes: uniform round(p (2^b - 1)) / (2^b - 1), or log2
// c = max(round(-log2 p), 0) -> 2^-c when c <= 2^b - 2, else 0.
std::string prob_code(OnnxGraph& g, const std::string& p, int bits, bool log2,
                      const std::string& hint);

}  // namespace vitopt::exporter
