// Synthesizes complete model files without LibTorch: random weights for any io::ViTConfig, written
// as fp32 or quantized per docs/model-format.md (I8/I16, packed U8 nibbles, per channel/tensor
// scales, asymmetric zero points, static or dynamic inputs). Used by the runtime tests, the fuzz
// seeds and the benchmarks (shapes: io::preset or any normalized config).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::runtime {

struct RandomModelOptions {
  io::ViTConfig config;           // normalized (io::ViTConfig::normalize), e.g. an io::preset()
  uint64_t seed = 1;
  float weight_std = 0.05f;       // Linear weights ~ N(0, std); biases, norms, tokens also random
  int weight_bits = 0;            // 0: fp32 weights; 2..16: every Linear weight quantized
  bool weight_symmetric = true;
  bool per_channel = true;
  int input_bits = 0;             // 0: fp32 Linear inputs; 2..16: every Linear input quantized
  bool input_symmetric = false;
  bool input_dynamic = true;      // false: static scale covering [-input_range, input_range]
  float input_range = 4.0f;
  bool quantize_patch_and_head = true;  // include patch_embed.proj / head(s) in the quantization
  std::vector<std::string> class_names;
};

std::vector<uint8_t> random_model_bytes(const RandomModelOptions& o);
void write_random_model(const RandomModelOptions& o, const std::filesystem::path& path);

}  // namespace vitopt::runtime
