// Fine-tuning between and after pruning steps: train::train_model on the training split (or a
// rotating window of it for fractional epochs), with an after_step hook for masks and schedules.
// Validation is left to the caller (the pruning job evaluates before/after on the test split).
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "model/vit.h"

namespace vitopt::train {
struct TrainOptions;
}

namespace vitopt::prune {

struct FinetuneOptions {
  std::string data = "fashion-mnist";
  size_t limit = 0;              // use the first N training images (0: all)
  int64_t batch_size = 128;
  double lr = 3e-4;              // peak; recovering from pruning needs less than training (1e-3)
  double min_lr = 1e-5;
  double warmup_fraction = 0.05; // of each fine-tuning run
  double weight_decay = 0.05;
  double label_smoothing = 0.1;
  int workers = 1;
  uint64_t seed = 0;
  std::string device = "cpu";
  bool quiet = false;
  std::filesystem::path work_dir;  // train_model's checkpoint/model files go here
  // Adjusts the training options just before the run, e.g. installs a distillation loss
  // (distill::Distiller::install); whatever it captures must outlive the finetune() call.
  std::function<void(train::TrainOptions&)> configure;
};

// `base` completed with a job's own settings: data, seed, device and quietness, and `work_dir`
// unless base already names one. Every editing job (prune, factorize, share) fills it this way.
FinetuneOptions job_finetune_options(FinetuneOptions base, const std::string& data, uint64_t seed,
                                     const std::string& device, bool quiet,
                                     const std::filesystem::path& work_dir);

// Optimizer steps a run of `epochs` (may be fractional) takes, as finetune() will run it.
int64_t finetune_steps(const FinetuneOptions& options, size_t train_size, double epochs);

// Trains `model` in place for `epochs` (> 0; fractional: ceil(epochs) passes over a window of
// epochs/ceil(epochs) of the data, the window rotated by `round`). Returns train_model's history.
nlohmann::json finetune(model::ViT& model, const FinetuneOptions& options, double epochs, int round,
                        std::function<void(model::ViT&, int64_t)> after_step = {});

// Size of the training split the options select (opens the dataset).
size_t finetune_train_size(const FinetuneOptions& options, const io::ViTConfig& config);

}  // namespace vitopt::prune
