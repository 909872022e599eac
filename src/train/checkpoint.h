// Training checkpoints: one safetensors file holding the model ("model.<timm name>"), the AdamW
// state ("optim.m.<name>", "optim.v.<name>") and the trainer's position/history as JSON metadata
// ("vitopt.trainer_state"), written atomically so a crash never leaves a broken checkpoint.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/vit.h"
#include "train/adamw.h"

namespace vitopt::train {

struct TrainerState {
  int epoch = 0;             // epoch to run next (0-based)
  int64_t batch = 0;         // batch within that epoch to run next
  int64_t global_step = 0;   // optimizer steps taken
  // Running sums of the epoch in progress (mid-epoch checkpoints), so a resumed epoch reports
  // the same train loss/accuracy as an uninterrupted one.
  double epoch_loss_sum = 0;
  int64_t epoch_correct = 0, epoch_seen = 0;
  double best_top1 = -1;     // best validation top-1 so far (fraction)
  int best_epoch = -1;
  nlohmann::json history = nlohmann::json::array();  // one object per finished epoch
  nlohmann::json fingerprint;  // options that must match on resume (seed, batch size, epochs...)
};

// The position/history part as JSON (checkpoint metadata; also what rank 0 sends the other
// ranks on a data-parallel resume) and back; `source` names the origin in errors.
nlohmann::json trainer_state_json(const TrainerState& state);
TrainerState trainer_state_from_json(const nlohmann::json& j, const std::string& source);

void save_checkpoint(const std::filesystem::path& path, model::ViT& model, const AdamW& optimizer,
                     const TrainerState& state);

// Restores model weights, optimizer state and trainer state. Throws InputError naming the file if
// it is corrupt, belongs to another model shape, or was made with a different fingerprint.
TrainerState load_checkpoint(const std::filesystem::path& path, model::ViT& model,
                             AdamW& optimizer, const nlohmann::json& expected_fingerprint);

}  // namespace vitopt::train
