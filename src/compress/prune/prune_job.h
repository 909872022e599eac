// The pruning job: one call that loads a model, prunes it (unstructured magnitude / global /
// sensitivity, N:M, or structured heads / neurons / blocks, one-shot or in K cubic-schedule steps
// with fine-tuning), measures it against the dense model and saves it. `vitopt prune` and the
// pipeline's pruning stage are thin wrappers over run_prune.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/prune/finetune.h"
#include "model/vit.h"

namespace vitopt::prune {

struct PruneRequest {
  std::filesystem::path model;      // input model file
  // One unstructured method (magnitude = per-layer |w|, global = one |w| threshold, sensitivity =
  // |w * dL/dw|, nm = N:M) or structured ones, combinable: heads, neurons, blocks.
  std::vector<std::string> methods{"heads", "neurons"};
  std::string criterion = "l2";     // structured: l2 | taylor | loss; nm: l2 (|w|) | taylor
  double amount = 0.5;              // sparsity (unstructured) or ratio removed (structured), [0, 1)
  std::string nm = "2:4";           // N:M pattern for method nm
  int steps = 1;                    // K pruning steps on a cubic schedule (fine-tuning between)
  double finetune_epochs = 0;       // total fine-tuning epochs (fractional allowed; 0: none)
  bool per_layer = false;           // rank within each layer instead of one global budget
  std::string data = "fashion-mnist";
  std::filesystem::path out;        // pruned model file
  std::filesystem::path report_dir; // prune.json, fine-tune runs, sweep (default <out>_prune/)
  std::vector<double> sweep;        // also prune at each of these amounts and report them all
  size_t calib_images = 512;        // training images for data-driven importance
  size_t eval_limit = 0;            // test images for accuracy (0: all)
  int64_t speed_batch = 64;         // batch for the dense-vs-pruned timing
  int speed_runs = 60;              // timed runs per model, over 15 interleaved rounds
  bool measure = true;              // evaluate dense/pruned accuracy and speed
  FinetuneOptions finetune;         // lr, batch size... (data/seed/quiet/work_dir filled in)
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};

// Runs the job, writes the model to `out` and the result JSON to <report_dir>/prune.json, and
// returns that JSON. Bad requests (unknown method, amount out of range, mixing unstructured and
// structured methods, N:M not dividing the layers) throw InputError before any work.
nlohmann::json run_prune(const PruneRequest& request);

// Checks a request without running it (also done by run_prune).
void validate_request(const PruneRequest& request);

// The pruned model alone (no files, no measurements): what run_prune saves. Exposed for tests
// and the sweep. `log` receives per-step details.
model::ViT prune_model(model::ViT& dense, const PruneRequest& request, double amount,
                       nlohmann::json& log);

}  // namespace vitopt::prune
