// Reads and completely validates a model file into plain arrays (no packing, no kernels): the
// header through io's one reader (config, quant spec, class names), then every expected tensor
// with its exact shape and dtype, quantized weights unpacked (io/code_packing) to one int per
// element with per-row scales/zero points, input quantization per Linear, and nothing unexpected.
// The engine packs what this returns; the fuzz target runs exactly this step.
// Legend: C embed dim, N tokens, R register tokens, P patch, in/out Linear features.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/model_header.h"
#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "io/vit_config.h"

namespace vitopt::runtime {

// One Linear factor y = x @ W^T (+ bias). Dense Linears have one factor; low-rank ones two
// (weight_v (r, in) first, then weight_u (out, r) which carries the bias).
struct LinearData {
  std::string name;         // Linear name, e.g. "blocks.0.attn.qkv"
  std::string weight_name;  // tensor name, e.g. "blocks.0.attn.qkv.weight" or ".weight_v"
  int in = 0, out = 0;
  std::vector<float> w;     // (out, in) fp32, when not quantized
  std::optional<io::WeightQuant> wq;
  std::vector<int16_t> q;      // (out, in) integer codes in [qmin, qmax], when quantized
  std::vector<float> scale;    // (out) per row (a per-tensor scale is repeated)
  std::vector<int32_t> zero;   // (out) zero points (0 when symmetric)
  std::vector<float> bias;     // (out) or empty
  std::optional<io::InputQuant> iq;  // input quantization ("<linear>" or "<linear>.weight_u")
  std::vector<float> dequantized() const;  // (out, in) fp32: w, or scale * (q - zero)
};

struct Norm {
  std::vector<float> gamma, beta;  // (C)
};

// A shared branch's Linears carry the owner's weights (weight_name is the owner's tensor, read
// again) with this block's bias and input quantization; the engine packs such weights once.
struct BlockData {
  int index = 0;
  Norm norm1, norm2;
  std::vector<LinearData> qkv, proj, fc1, fc2;  // 1 or 2 factors each; empty when skipped
  // A shared Linear's low-rank delta (delta_rank > 0): delta_v (r, in) then delta_u (out, r),
  // fp32, no bias; empty otherwise. y = Linear(x) + (x @ delta_v^T) @ delta_u^T.
  std::vector<LinearData> qkv_delta, proj_delta, fc1_delta, fc2_delta;
};

struct LoadedModel {
  io::ViTConfig config;
  std::vector<std::string> class_names;
  std::optional<io::QuantSpec> quant;
  std::vector<float> cls_token, dist_token;  // (C), each only when the config has that token
  std::vector<float> reg_token;              // (R, C) register tokens, empty without
  std::vector<float> pos_embed;              // (config.pos_embed_tokens(), C)
  LinearData patch;                          // (C, in_ch*P*P)
  std::vector<BlockData> blocks;
  Norm norm;  // the final LayerNorm: "norm" on every token, or "fc_norm" on the pooled features
  LinearData head, head_dist;                // head_dist only with a distillation token
  std::string precision;                     // io::precision_label: "fp32", "int8", "int6", "mixed"
  int64_t params = 0;
};

// `hints` reach io::read_model_header (timm/HF checkpoints without vitopt metadata).
LoadedModel load_model_data(const io::SafeTensorsFile& file, const io::ImportHints& hints = {});

}  // namespace vitopt::runtime
