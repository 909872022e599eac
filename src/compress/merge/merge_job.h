// The token-merging job (`vitopt merge` and the recipe's `merge:` stage): sets a ToMe schedule
// (tokens merged per block, io/merge_schedule.h) on a trained model. Without fine-tuning only the
// config changes, so the file is rewritten with every tensor's bytes as they were (fp32 or
// quantized alike); with --finetune-epochs the fp32 model trains with merging on, the unmerged
// model as teacher (logit distillation: the token maps of the two differ in length). Measures
// top-1, MACs and runtime speed before and after.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "compress/prune/finetune.h"

namespace vitopt::merge {

struct MergeRequest {
  std::filesystem::path model;       // input model file (any precision)
  std::filesystem::path out;         // merged model file
  std::filesystem::path report_dir;  // merge.json, fine-tune run (default <out>_merge/)
  std::string r = "8";               // schedule spec: "8", "8,8,4,...", "decreasing[:R]", "off"
  double finetune_epochs = 0;        // fractional allowed; 0: none (exact header rewrite)
  std::string distill_modes = "logit";  // teacher terms while fine-tuning; "none": plain
  std::string data = "fashion-mnist";
  size_t eval_limit = 0;
  bool measure = true;  // accuracy (test split), runtime speed at batch 1
  prune::FinetuneOptions finetune;
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};

void validate_request(const MergeRequest& request);

nlohmann::json run_merge(const MergeRequest& request);

}  // namespace vitopt::merge
