// LibTorch test helpers (header-only, so LibTorch-free tests never see them): small ViTs with
// random weights and random input images, seeded.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <string>

#include "io/presets.h"
#include "io/vit_config.h"
#include "model/vit.h"

namespace vitopt::testing {

// vit-tiny-test (28x28x1, patch 7, dim 32, MLP 64) with `depth` blocks and `heads` heads.
inline io::ViTConfig tiny_config(int depth = 2, int heads = 2) {
  auto c = io::preset("vit-tiny-test");
  c.depth = depth;
  c.num_heads = heads;
  c.head_dim = 0;
  c.blocks.clear();
  c.normalize("tiny test config");
  return c;
}

// A preset with timm's initialization from `seed` (eval mode).
inline model::ViT initialized_vit(const std::string& preset, uint64_t seed) {
  model::ViT m(io::preset(preset));
  m->init_weights(seed);
  m->eval();
  return m;
}

// Every parameter ~ N(0, stddev^2), from its own generator (eval mode).
inline model::ViT random_vit(const io::ViTConfig& c, uint64_t seed, double stddev = 0.2) {
  model::ViT m(c);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * stddev);
  m->eval();
  return m;
}

// Weights large enough that attention is far from uniform and logits are O(1), LayerNorm gains
// near 1: what parity tests between two engines need (eval mode).
inline model::ViT parity_vit(const io::ViTConfig& c, uint64_t seed) {
  model::ViT vit(c);
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : vit->named_parameters()) {
    const bool norm = p.key().find("norm") != std::string::npos;
    if (norm && p.key().find("weight") != std::string::npos) {
      p.value().normal_(1.0, 0.1);
    } else {
      p.value().normal_(0.0, norm ? 0.05 : 0.15);
    }
  }
  vit->eval();
  return vit;
}

// (batch, C, H, W) standard-normal images for config `c`.
inline torch::Tensor random_images(const io::ViTConfig& c, int64_t batch, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randn({batch, c.in_channels, c.image_size, c.image_size}, gen);
}

}  // namespace vitopt::testing
