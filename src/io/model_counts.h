// Analytic sizes of a model from its config alone, the one implementation every caller uses:
// parameters (per block and the rest), multiply-accumulates per image, and the bytes a model file
// stores for its tensors (fp32 or packed integer codes). No weights needed, so the CLI, search and
// the runtime report the same figures.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "io/quant_spec.h"
#include "io/vit_config.h"

namespace vitopt::io {

// Parameters of each block (0 for a block sharing another's weights; skipped sub-blocks count
// nothing) and of everything else (patch embedding, cls/dist tokens, position embedding, final
// norm, head(s)). count_params = sum(block_params) + other_params.
std::vector<int64_t> block_params(const ViTConfig& c);
int64_t other_params(const ViTConfig& c);
int64_t count_params(const ViTConfig& c);

// Multiply-accumulates for one image: patch conv, every Linear (low-rank: r (in + out) per
// token), both attention matmuls (2 H N² D per block), head(s). Shared blocks compute like their
// owner; skipped sub-blocks compute nothing.
int64_t count_macs(const ViTConfig& c);

// Bytes one quantized (rows, cols) weight occupies in a file: packed codes + F32 scales + I32 zero
// points (asymmetric only), without alignment padding.
int64_t quantized_weight_bytes(int64_t rows, int64_t cols, const WeightQuant& spec);

// Bytes of every tensor a model file of this config (and quant spec, if quantized) stores, without
// the header and alignment padding: the sum of the tensors' `nbytes` as the writers store them
// (fp32 tensors 4 bytes per element). The file is this plus its JSON header and < 64 bytes of
// padding per tensor.
int64_t tensor_bytes(const ViTConfig& c, const std::optional<QuantSpec>& quant = std::nullopt);

}  // namespace vitopt::io
