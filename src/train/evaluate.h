// Basic evaluation of a LibTorch model on a data loader: top-1, top-5, mean cross-entropy, and
// the raw per-sample logits for callers that compute richer metrics (the evaluator issue).
#pragma once

#include <torch/torch.h>

#include "data/loader.h"
#include "model/vit.h"

namespace vitopt::train {

struct EvalResult {
  int64_t count = 0;
  double top1 = 0, top5 = 0;  // fractions in [0, 1]
  double loss = 0;            // mean cross-entropy
  double seconds = 0;
  double images_per_s = 0;
  torch::Tensor logits;       // (count, classes) float32 CPU, only if keep_logits
  torch::Tensor labels;       // (count) int64 CPU, only if keep_logits
};

struct EvalOptions {
  torch::Device device = torch::kCPU;
  bool keep_logits = false;
  bool quiet = false;
  std::string label = "eval";
};

EvalResult evaluate(model::ViT& model, data::DataLoader& loader, const EvalOptions& options);

}  // namespace vitopt::train
