// A complete training run as one call: model from a preset/config or an existing file (resume
// takes the checkpoint's config), datasets opened and limited, then train_model. Shared by
// `vitopt train` and the pipeline's train stage.
#pragma once

#include <optional>
#include <string>

#include "model/model_file.h"
#include "train/trainer.h"

namespace vitopt::train {

struct TrainJob {
  io::ViTConfig config;                 // used when neither init_model nor a checkpoint applies
  std::string init_model;                  // optional model file to start from (fine-tuning)
  io::ImportHints hints;                // for init_model without vitopt metadata
  std::string data = "fashion-mnist";      // --data spec
  size_t limit = 0;                        // train subset size (0: all)
  size_t val_limit = 0;                    // validation subset size (0: all)
  bool validate = true;                    // validate on the test split every epoch
  TrainOptions options;
};

TrainResult run_train_job(const TrainJob& job);

// The result as JSON (history, best/final accuracy, paths) for --json and run summaries.
nlohmann::json train_result_json(const TrainResult& r);

}  // namespace vitopt::train
