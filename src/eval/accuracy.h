// Accuracy of a LibTorch model on a data split: the one helper every command and compression job
// uses for "top-1 / top-3 / top-5 / loss on the test (or train) split" (the full evaluator adds
// latency, memory and calibration on top, through engines).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/vit.h"

namespace vitopt::eval {

struct SplitAccuracy {
  int64_t count = 0;
  double top1 = 0, top3 = 0, top5 = 0;  // fractions in [0, 1]
  double loss = 0;                      // mean cross-entropy
  std::vector<double> per_class_top1;   // (classes) top-1 among each class's images (0 if none)
  nlohmann::json to_json() const;       // {"images", "top1", "top3", "top5", "loss"}
};

struct AccuracyOptions {
  int64_t batch_size = 256;
  int workers = 1;
  torch::Device device = torch::kCPU;
  bool quiet = true;
  std::string label = "eval";  // progress label
};

// Accuracy on `dataset` with the model's eval transform.
SplitAccuracy accuracy(model::ViT& model, std::shared_ptr<const data::Dataset> dataset,
                       const AccuracyOptions& options = {});

// Accuracy on the first `limit` images (0: all) of `data`'s split.
SplitAccuracy split_accuracy(model::ViT& model, const std::string& data, data::Split split,
                             size_t limit, const AccuracyOptions& options = {});

}  // namespace vitopt::eval
