// Quantization-aware training from a PTQ state: every quantized Linear gets fake-quantized weights
// (clipped STE, scales frozen at the PTQ calibration, or learned with LSQ) and fake-quantized
// inputs; the patch embedding keeps its PTQ integer weights (frozen) with quantized input. Trained
// with train::train_model through its loss/after_step/extra_parameters hooks; the exported state
// reproduces the QAT forward exactly (same scales, same rounding).
#pragma once

#include <filesystem>
#include <string>

#include "compress/quant/ptq.h"

namespace vitopt::quant {

struct QatOptions {
  int epochs = 1;
  bool lsq = false;  // learnable step sizes (weights and static inputs)
  double lr = 1e-4;  // peak LR, cosine to lr/100, no warm-up (we start from PTQ)
  int64_t batch_size = 128;
  size_t images = 0;  // train subset (0: all)
  std::string data = "fashion-mnist";
  int workers = 2;
  std::string device = "cpu";
  uint64_t seed = 0;
  bool quiet = false;
  std::filesystem::path work_dir;  // trainer output (checkpoints); removed by the caller
};

// Returns the fine-tuned state; `history` receives the trainer's per-epoch records.
QuantizedState run_qat(const QuantizedState& ptq, const QatOptions& o, nlohmann::json* history);

}  // namespace vitopt::quant
