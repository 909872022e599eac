// The factorization job (`vitopt factorize` and the recipe's `factorize:` stage): a trained
// model's Linears replaced by factor pairs from their (plain or activation-aware) SVD, ranks by
// retained energy, a ratio or a global parameter budget allocated by measured sensitivity,
// rounded to the runtime's SIMD width, kept only where they save parameters and (by default) run
// faster on the runtime; then optional fine-tuning with the original model as teacher.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compress/prune/finetune.h"
#include "model/vit.h"

namespace vitopt::lowrank {

struct FactorizeRequest {
  std::filesystem::path model;       // input model file (fp32)
  std::filesystem::path out;         // factorized model file
  std::filesystem::path report_dir;  // factorize.json, fine-tune runs (default <out>_factorize/)
  // One rank rule (energy 0.9 when none is set): retained energy in (0, 1] per layer, rank as a
  // fraction (0, 1] of the full rank, or the whole model's parameter budget ("1.2M", "60%").
  std::optional<double> energy, rank_ratio;
  std::string param_budget;
  std::vector<std::string> layers{"qkv", "proj", "fc1", "fc2"};
  std::string method = "svd";   // svd | activation-aware
  bool require_speedup = true;  // keep a layer factorized only where the runtime is faster
  double finetune_epochs = 0;   // fractional allowed; 0: none
  bool distill = false;         // fine-tune with the original model as teacher
  std::string distill_modes = "logit,feature";  // logits and hidden states
  std::string data = "fashion-mnist";
  size_t calib_images = 256;        // training images for statistics and sensitivity
  size_t eval_limit = 0;            // test images for accuracy (0: all)
  bool measure = true;              // accuracy before/after, KL, runtime speed
  prune::FinetuneOptions finetune;  // lr, batch size... (data/seed/quiet/work_dir filled in)
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};

// Checks a request without running it (also done by run_factorize): one rank rule, values in
// range, known layer kinds and method. InputError naming the flag and the expected value.
void validate_request(const FactorizeRequest& request);

// The factorized model before fine-tuning (no files, no measurements); `log` gets the per-layer
// decisions (ranks, energy, parameter counts, speed, sensitivity).
model::ViT factorize_model(model::ViT& dense, const FactorizeRequest& request, nlohmann::json& log);

// Runs the job: writes the model to `out` and <report_dir>/factorize.json and returns that JSON.
nlohmann::json run_factorize(const FactorizeRequest& request);

}  // namespace vitopt::lowrank
