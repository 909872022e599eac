// The weight-sharing job (`vitopt share` and the recipe's `share:` stage): groups of consecutive
// blocks run one set of attention and/or MLP weight matrices (given, or chosen from how alike the
// blocks' weights and outputs are), initialized from the group's most central member, its mean
// or its first block, each member keeping its LayerNorms, biases and an optional low-rank delta,
// then
// recovered by weight distillation from the unshared model (logits, attention maps, hidden
// states). The file stores a shared tensor once and the runtime packs it once.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/prune/finetune.h"
#include "model/vit.h"

namespace vitopt::lowrank {

struct ShareRequest {
  std::filesystem::path model;       // input model file (fp32, no sharing yet)
  std::filesystem::path out;         // shared model file
  std::filesystem::path report_dir;  // share.json, fine-tune runs (default <out>_share/)
  std::string groups = "auto";       // "0-1,2-3,4-5" (ranges of consecutive blocks) or "auto"
  int num_groups = 0;                // auto: groups to form (0: depth / 2)
  std::string init = "central";      // central | mean | first
  std::vector<std::string> what{"attn", "mlp"};  // the branches shared
  int delta_rank = 0;          // members' low-rank delta on each shared Linear (0: none)
  double finetune_epochs = 0;  // fractional allowed; 0: none
  std::string distill_modes =
      "logit,attention,feature";  // teacher terms; "none": plain fine-tuning
  std::string data = "fashion-mnist";
  size_t calib_images = 256;  // training images for the auto grouping
  size_t eval_limit = 0;
  bool measure = true;  // accuracy, file size, runtime memory and speed
  prune::FinetuneOptions finetune;
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};

// "0-1,2-3,4-5" -> {{0,1},{2,3},{4,5}} for a model of `depth` blocks: ranges of consecutive
// blocks, disjoint, in range; a block in no group keeps its own weights. InputError otherwise.
std::vector<std::vector<int>> parse_groups(const std::string& text, int depth);

// Contiguous groups minimizing the summed distance of every member to its group's centre, for a
// symmetric distance matrix (depth x depth, zero diagonal); returns the groups and their centres.
struct Grouping {
  std::vector<std::vector<int>> groups;
  std::vector<int> centres;  // per group: the member with the least summed distance to the others
};
Grouping best_grouping(const std::vector<std::vector<double>>& distance, int num_groups);
// The centre of one group under `distance`.
int group_centre(const std::vector<std::vector<double>>& distance, const std::vector<int>& group);

void validate_request(const ShareRequest& request);

// Distances between blocks (0 alike .. 2 opposite): 1 - (weight cosine + output cosine) / 2, the
// output cosine comparing each block's residual update with the other block's on the same input.
std::vector<std::vector<double>> block_distances(model::ViT& model,
                                                 const std::vector<torch::Tensor>& images);

// The shared model before fine-tuning; `log` gets the groups, centres and distances.
model::ViT share_model(model::ViT& model, const ShareRequest& request, nlohmann::json& log);

nlohmann::json run_share(const ShareRequest& request);

}  // namespace vitopt::lowrank
