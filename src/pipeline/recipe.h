// A pipeline recipe: YAML that names the data, the model and the stages with their options.
// Parsing is strict: an unknown key or a value of the wrong type is an InputError naming the file
// and the key path, so a typo never silently falls back to a default.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>
#include <string>

#include "compress/distill/distill_job.h"
#include "compress/prune/prune_job.h"
#include "compress/quant/quantize_job.h"
#include "train/train_job.h"

namespace vitopt::pipeline {

// Compression stages: each entry makes one model from the trained baseline, named by `name`
// (its files go to <run>/<stage>/<name>...). Model paths, data, seed and device are filled in by
// the pipeline; the request holds every other option, parsed from the recipe.
struct QuantizeStage {
  std::string name;
  quant::QuantizeRequest request;
};
struct PruneStage {
  std::string name;
  prune::PruneRequest request;
};
struct DistillStage {
  std::string name;
  distill::DistillRequest request;
};

struct Recipe {
  std::string name = "default";
  std::filesystem::path source;        // where the recipe came from (a file name, for messages)
  std::string text;                    // the YAML as given, copied into the run folder
  std::filesystem::path out = "runs/default";  // run folder
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  train::TrainJob train;               // data, model config, limits, options (out_dir set later)
  int64_t eval_batch_size = 256;
  size_t eval_limit = 0;
  std::string eval_engine = "torch";   // "torch" (LibTorch; quantized = exact simulation) or
                                       // "runtime" (the deployable engine's own kernels and speed)
  bool resume = true;                  // continue an interrupted run found in the run folder
  std::vector<QuantizeStage> quantize;
  std::vector<PruneStage> prune;
  std::vector<DistillStage> distill;
  std::optional<double> latency_budget_ms, size_budget_mb;  // for the report's recommendation
};

Recipe load_recipe(const std::filesystem::path& path);
Recipe parse_recipe(const std::string& yaml_text, const std::string& source);

}  // namespace vitopt::pipeline
