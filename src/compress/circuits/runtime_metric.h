// ACDC's metric on the deployment runtime. Under mean or zero ablation a circuit computes exactly
// what its slimmed model computes (the ablation values folded into biases, slim_circuit), so the
// metric of a circuit is the slimmed model's on the analysis images, run by the vitopt runtime:
// several times faster per image than LibTorch's forward on a CPU (BENCHMARKS.md), which more than
// pays for slimming each trial and for not reusing the clean upstream blocks. Resample ablation
// has no single value to fold, so it stays on LibTorch (supports()).
#pragma once

#include <filesystem>
#include <vector>

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/circuit.h"
#include "train/calibration.h"

namespace vitopt::circuits {

class RuntimeMetric {
 public:
  // `ablated` supplies the model and ablation values; `batches` are its analysis batches. Trial
  // models go through a scratch file in `scratch_dir` (removed after loading). The reference
  // (KL's full-model distribution) is the full model on the runtime, so the full circuit scores 0.
  RuntimeMetric(AblatedModel& ablated, const std::vector<train::CalibBatch>& batches,
                std::filesystem::path scratch_dir, int threads);

  static bool supports(const AblatedModel& ablated);

  // Mean metric over the analysis images: KL(full || circuit) or the circuit's cross-entropy.
  double operator()(const Circuit& circuit);
  int64_t images() const { return images_; }

 private:
  torch::Tensor logits(const Circuit& circuit);  // (images, K) on the runtime

  AblatedModel& ablated_;
  std::filesystem::path scratch_;
  int threads_;
  std::vector<float> pixels_;  // every analysis image, (images, C, H, W), normalized
  torch::Tensor labels_;       // (images)
  torch::Tensor full_log_probs_;
  int64_t images_ = 0;
};

}  // namespace vitopt::circuits
