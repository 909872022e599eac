// `eval` on the runtime: top-1/top-5 accuracy of one model file over a labelled dataset (an image
// folder, IDX files, CIFAR, ... anything data::open_dataset reads), streamed in batches through
// the engine with the model's own eval preprocessing. The LibTorch evaluator (src/eval) does much
// more (calibration, efficiency, reports); this is the part a deployment machine needs.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "vitopt/runtime.h"

namespace vitopt::infer {

struct AccuracyOptions {
  int64_t batch_size = 64;
  int workers = 2;   // decode threads of the data loader
  size_t limit = 0;  // first N images only (0: all)
};

struct AccuracyResult {
  std::string dataset;  // the dataset's description
  int64_t images = 0;
  int64_t top1_correct = 0, top5_correct = 0;
  double top1 = 0, top5 = 0;                                 // fractions in [0, 1]
  std::vector<int64_t> per_class_images, per_class_correct;  // (K) top-1 hits per true class
  double seconds = 0;  // wall time of the whole pass (decode + engine)
  nlohmann::json to_json() const;
};

// Throws InputError when the dataset's classes exceed the model's or the shapes cannot match.
AccuracyResult runtime_accuracy(runtime::Engine& engine, std::shared_ptr<data::Dataset> dataset,
                                const AccuracyOptions& options);

}  // namespace vitopt::infer
