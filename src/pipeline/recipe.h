// A pipeline recipe: YAML that names the data, the model and the stages with their options.
// Parsing is strict: an unknown key or a value of the wrong type is an InputError naming the file
// and the key path, so a typo never silently falls back to a default.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "compress/circuits/circuits_job.h"
#include "compress/distill/distill_job.h"
#include "compress/lowrank/factorize_job.h"
#include "compress/lowrank/share_job.h"
#include "compress/merge/merge_job.h"
#include "compress/prune/prune_job.h"
#include "compress/quant/quantize_job.h"
#include "pipeline/overrides.h"
#include "search/search_job.h"
#include "train/train_job.h"

namespace vitopt::pipeline {

// What every compression stage entry has: its name (files go to <run>/<kind>/<name>...), where its
// input model comes from, and its recipe section in canonical text (after --set) for fingerprints.
struct StageEntry {
  std::string name;
  // "" or "baseline": the trained model (or the recipe's `from:` file); "<kind>/<name>": that
  // stage's output; "*.safetensors": a model file. For distill this is the teacher.
  std::string from;
  std::string canonical;
};

// Compression stages. Model paths, data, seed and device are filled in by the pipeline; the
// request holds every other option, parsed from the recipe.
struct QuantizeStage : StageEntry {
  quant::QuantizeRequest request;
};
struct PruneStage : StageEntry {
  prune::PruneRequest request;
};
struct DistillStage : StageEntry {
  distill::DistillRequest request;
};
struct FactorizeStage : StageEntry {
  lowrank::FactorizeRequest request;
};
struct ShareStage : StageEntry {
  lowrank::ShareRequest request;
};
// Token merging: the schedule `r` and optional fine-tuning with merging on.
struct MergeStage : StageEntry {
  merge::MergeRequest request;
};
// One circuit per stage: one `threshold` (acdc) or one `keep_ratio` (eap, eap-ig).
struct CircuitsStage : StageEntry {
  circuits::CircuitsRequest request;
};
// Architecture search: the stage's model is the one returned for its (first) budget.
struct SearchStage : StageEntry {
  search::SearchRequest request;
};

struct Recipe {
  std::string name = "default";
  std::filesystem::path source;        // where the recipe came from (a file name, for messages)
  std::string text;                    // the YAML as given, copied into the run folder
  std::vector<std::string> overrides;  // the --set texts applied on top of it
  std::filesystem::path out = "runs/default";  // run folder
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  std::filesystem::path from_model;    // start from this model file: no training stage
  train::TrainJob train;               // data, model config, limits, options (out_dir set later)
  int64_t eval_batch_size = 256;
  size_t eval_limit = 0;
  std::string eval_engine = "torch";   // "torch" (LibTorch; quantized = exact simulation) or
                                       // "runtime" (the deployable engine's own kernels and speed)
  bool resume = true;                  // continue an interrupted run found in the run folder
  std::vector<QuantizeStage> quantize;
  std::vector<PruneStage> prune;
  std::vector<DistillStage> distill;
  std::vector<FactorizeStage> factorize;
  std::vector<ShareStage> share;
  std::vector<CircuitsStage> circuits;
  std::vector<MergeStage> merge;
  std::vector<SearchStage> search;
  std::optional<double> latency_budget_ms, size_budget_mb;  // for the report's recommendation
  // Canonical text (sorted keys, after --set) of what each non-compression stage depends on, for
  // the fingerprints that decide what a resumed run must redo.
  std::string context_canonical;       // data, seed, device: shared by every stage
  std::string train_canonical;         // model + train sections
  std::string eval_canonical;          // eval section
};

// Parses a recipe after applying `overrides` (--set) to its YAML. Strict: unknown keys and wrong
// types throw InputError naming the file (or the --set that introduced them) and the key path.
Recipe load_recipe(const std::filesystem::path& path, const std::vector<Override>& overrides = {});
Recipe parse_recipe(const std::string& yaml_text, const std::string& source,
                    const std::vector<Override>& overrides = {});

}  // namespace vitopt::pipeline
