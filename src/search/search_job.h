// The architecture-search job (`vitopt search` and the recipe's `search:` stage): given a trained
// ViT and budgets, NSGA-II over a space that mixes structured pruning, factorization, weight
// sharing, token merging, quantization, input resolution and distilled student presets
// (search/space.h), every candidate inherited from the
// trained model without retraining (search/candidate.h) and measured on the runtime
// (search/runtime_measure.h); then the best candidate under each budget fine-tuned with
// distillation from the original model, saved, and evaluated against the baseline on the test
// split. Seeded and resumable (the state is saved after every generation).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/prune/finetune.h"
#include "search/evolution.h"
#include "search/runtime_measure.h"

namespace vitopt::search {

struct SearchRequest {
  std::filesystem::path model;    // trained fp32 model file (plain: not pruned, shared...)
  std::filesystem::path out_dir;  // search_state.json, CSVs, plots, best_<i>.safetensors, report/
  std::filesystem::path space;    // YAML space file (empty: the built-in default, which
                                  // configs/search-space.yaml spells out)
  // Budget sets ("params=25%,latency-ms=0.3"); a returned model meets the set it is returned for.
  // None: unconstrained (the best-top-1 candidate is returned).
  std::vector<std::string> budgets;
  std::string objectives = "top1,latency-ms";
  EvolutionOptions evolution{24, 10, 0.9, 0.1, 0};
  std::string criterion = "taylor";  // importance order of heads / neurons
  std::string data = "fashion-mnist";
  size_t calib_images = 256;      // first training images: importance, means, PTQ calibration
  size_t holdout_images = 2000;   // last training images: accuracy estimates of candidates
  MeasureOptions measure;         // latency batch / threads / runs
  bool single_techniques = true;  // also evaluate each technique alone (fronts to compare with)
  // Deliver each technique's best single-technique candidate under the first budget too, with
  // the same fine-tuning (single_<technique>.safetensors, in the report): the fair comparison.
  bool deliver_singles = true;
  // Distillation from the model of each student preset of the space (its `model.students`),
  // before the search; the students are saved in out_dir and reused when resuming.
  double student_epochs = 1;
  double supernet_epochs = 0;  // supernet fine-tuning of the inherited weights before the search
  int supernet_random = 2;     // random structures per supernet step (besides largest, smallest)
  double finetune_epochs = 0;  // fine-tuning of each returned model (fractional allowed)
  std::string distill_modes = "logit";  // teacher terms while fine-tuning; "none": plain
  prune::FinetuneOptions finetune;
  bool evaluate = true;   // test-split report of baseline + returned models
  size_t eval_limit = 0;  // test images for that report (0: all)
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
  // Also write the model returned for the first budget here (the recipe stage's output file);
  // an InputError when no candidate meets that budget.
  std::filesystem::path deliver;
};

// Checks a request before any work (ranges, budgets, objectives, space file); InputError names
// the flag and the expected value.
void validate_request(const SearchRequest& request);

// Runs (or resumes) the search; writes <out_dir>/search.json and returns it.
nlohmann::json run_search(const SearchRequest& request);

}  // namespace vitopt::search
