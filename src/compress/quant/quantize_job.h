// `vitopt quantize` as one call (also the pipeline's quantization stage): load a model, calibrate,
// PTQ, optional mixed-precision bit allocation under a size budget, optional QAT, write the
// quantized model file and a JSON record; or, with `sweep`, do it at several bit widths and
// report accuracy / size / per-layer error / histograms per width.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compress/quant/ptq.h"

namespace vitopt::quant {

struct QuantizeRequest {
  std::filesystem::path model;         // fp32 model file
  std::filesystem::path out;           // quantized model file (a folder with `sweep`)
  std::string data = "fashion-mnist";  // calibration (train split) and evaluation (test split)
  PtqOptions ptq;
  size_t calib_images = 512;  // first N train images
  // QAT (0 epochs: PTQ only). Fine-tunes from the PTQ calibration with fake quant + STE.
  int qat_epochs = 0;
  bool lsq = false;       // learn step sizes (weights and static inputs)
  double qat_lr = 1e-4;   // peak LR (cosine to qat_lr/100, no warm-up)
  size_t qat_images = 0;  // train subset for QAT (0: all)
  int64_t qat_batch_size = 128;
  // Mixed precision: choose per-layer weight bits from `mp_bits` so the file fits the budget.
  std::optional<double> size_budget_mb;
  std::vector<int> mp_bits = {2, 3, 4, 5, 6, 8};
  // Bit sweep: W b / A b (A fp32 with abits none) for each b; `out` is then a folder.
  std::vector<int> sweep;
  bool evaluate = true;   // accuracy of fp32 and quantized on the test split
  size_t eval_limit = 0;  // first N test images (0: all)
  int64_t eval_batch_size = 256;
  int workers = 2;
  std::string device = "cpu";  // QAT device
  uint64_t seed = 0;
  bool quiet = false;
};

// Runs the request; writes the model file(s) and <out>.json (or <out>/sweep.json) atomically and
// returns the same JSON. Bad input throws core::InputError naming the flag / file.
nlohmann::json run_quantize(const QuantizeRequest& request);

// Test-split accuracy of a model (top-1 fraction; per-class accuracy into `per_class` if given).
double test_accuracy(model::ViT& model, const std::string& data, size_t limit, int64_t batch_size,
                     int workers, bool quiet, std::vector<double>* per_class = nullptr,
                     const std::string& label = "eval");

}  // namespace vitopt::quant
