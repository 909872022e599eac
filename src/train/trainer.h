// The training loop: AdamW + warm-up/cosine schedule, label smoothing, gradient clipping,
// augmentation, per-epoch validation, atomic checkpoints (every epoch and every N steps) with
// exact resume, best-model tracking, metrics log, NaN/inf guard, and progress output.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "model/vit.h"

namespace vitopt::train {

namespace dist {
class Communicator;
}

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 128;
  double lr = 1e-3;                // peak learning rate after warm-up
  double min_lr = 1e-5;            // cosine floor
  double weight_decay = 0.05;      // AdamW decoupled decay (not on norms/biases/tokens/pos)
  double warmup_epochs = 1.0;      // may be fractional
  double label_smoothing = 0.1;
  double grad_clip = 1.0;          // max global L2 norm; 0 disables
  int crop_padding = 2;            // random crop after zero padding (pixels); 0 disables
  bool hflip = false;              // random horizontal flip (off for digits/clothes by default)
  uint64_t seed = 0;
  int workers = 2;                 // data loader threads
  int64_t eval_batch_size = 256;
  int64_t checkpoint_every_steps = 0;  // extra mid-epoch checkpoints (0: only at epoch ends)
  int64_t stop_after_steps = 0;    // stop (as if interrupted) after this many steps in this run
  bool resume = false;             // continue from <out_dir>/checkpoint.safetensors
  bool quiet = false;
  std::filesystem::path out_dir;   // checkpoint.safetensors, best.safetensors, model.safetensors,
                                   // metrics.jsonl, train_config.json
  std::string device = "cpu";
  // Optional hook after every epoch (epoch index, record) e.g. for tests or the pipeline.
  std::function<void(int, const nlohmann::json&)> on_epoch;

  // Extension points for compression (distillation, QAT, pruning fine-tuning); empty = plain
  // supervised training. `loss` replaces label-smoothed cross-entropy: given the model, images
  // x (B,C,H,W) and labels y (B), it returns the scalar loss and sets `logits` (B, classes) for
  // the running accuracy. `after_step` runs after every optimizer step (global step count), e.g.
  // to re-apply masks or advance a pruning schedule. `extra_parameters` (name, tensor) are
  // optimized alongside the model's (e.g. distillation projections, LSQ step sizes); they are not
  // part of the checkpoint, so a run using them cannot be resumed mid-way.
  std::function<torch::Tensor(model::ViT& model, const torch::Tensor& x, const torch::Tensor& y,
                              torch::Tensor& logits)>
      loss;
  std::function<void(model::ViT& model, int64_t global_step)> after_step;
  std::vector<std::pair<std::string, torch::Tensor>> extra_parameters;
  // Runs before `loss` with the batch about to be trained on, e.g. so a distillation loss can
  // look up cached teacher outputs by the batch's dataset indices.
  std::function<void(const data::Batch& batch)> on_batch;

  // Data parallelism: the process group to train in; null: the process's own (dist::current(),
  // set up by the command from torchrun's environment or --nproc-per-node), a world of one if
  // none. With W ranks, `batch_size` is the GLOBAL batch: each rank trains on batch_size / W
  // images of every step and the gradients are averaged, so lr, schedule, checkpoints and the
  // result are those of one process training with batch_size (up to float summation order).
  dist::Communicator* communicator = nullptr;
};

struct TrainResult {
  nlohmann::json history = nlohmann::json::array();  // per-epoch records
  double best_top1 = 0;
  int best_epoch = -1;
  double final_top1 = 0;
  bool completed = false;          // false if stopped early by stop_after_steps
  std::filesystem::path best_model, final_model;
};

// Trains `model` in place. `val` may be null (no validation: best = last).
TrainResult train_model(model::ViT& model, std::shared_ptr<const data::Dataset> train_set,
                        std::shared_ptr<const data::Dataset> val_set, const TrainOptions& options);

}  // namespace vitopt::train
