// A complete distillation job as one call (the `vitopt distill` command and the pipeline's
// distill stage): load the teacher, build the student (preset / config / model file), train one
// student per requested mode set with the shared training loop, and compare the results with the
// teacher (accuracy, params, MACs, batch-1 latency; the evaluator's report when it is built in).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/distill/distiller.h"
#include "train/trainer.h"

namespace vitopt::distill {

struct DistillRequest {
  std::filesystem::path teacher;              // teacher model file (runs in eval mode)
  std::string student = "vit-fmnist-student"; // preset name, config .json, or model file
  // One training run per entry, each a comma-separated mode set ("logit,attention"); "none"
  // trains the student alone (the no-teacher baseline, same epochs and seed).
  std::vector<std::string> runs = {"logit,attention"};
  DistillSettings settings;
  std::string data = "fashion-mnist";         // --data spec as for `vitopt train`
  size_t limit = 0;                           // first N training images (0: all)
  size_t val_limit = 0;                       // first N test images for validation (0: all)
  bool validate = true;                       // validate every epoch on the test split
  train::TrainOptions options;                // epochs, lr, seed, device, quiet...; out_dir unused
  // One run: its files (model/best/checkpoint/metrics.jsonl/distill.json) go straight into
  // out_dir. Several: into out_dir/<mode set name>/, plus out_dir/distill.json and compare.md.
  std::filesystem::path out_dir;
  bool report = true;                         // compare with the teacher after training
  size_t eval_limit = 0;                      // test images for the comparison (0: all)
  int latency_runs = 30;                      // timed batch-1 forwards per model
  int threads = 0;                            // for the evaluator (0: all cores)
  bool skip_completed = true;                 // reuse a run whose distill.json says completed
};

// Runs the job; returns (and writes to out_dir/distill.json) a summary: per run its modes,
// accuracy (final and best epoch, top-3 of the final model), params, MACs, latency vs teacher,
// teacher-forward/cache counts, timings and history; the teacher's accuracy and cost.
nlohmann::json run_distill(const DistillRequest& request);

// The student config for a run: `spec` is a preset or config JSON (distillation token added
// when `token` is set) — or a model file, whose config is returned as stored.
io::ViTConfig student_config(const std::string& spec, bool token);

}  // namespace vitopt::distill
