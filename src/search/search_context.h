// What the search job's parts share (private to src/search): the request, the original model
// (teacher and baseline), the parent candidates inherit from (the original, or a copy trained as
// a supernet), the calibration and held-out data, the budgets resolved against the baseline.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/candidate.h"
#include "search/runtime_measure.h"
#include "search/search_job.h"

namespace vitopt::search {

struct SearchContext {
  explicit SearchContext(const SearchRequest& r) : request(r) {}
  const SearchRequest& request;
  model::ViT original{nullptr};  // the model searched: teacher and baseline
  model::ViT parent{nullptr};    // candidates inherit from this one
  std::vector<std::string> class_names;
  std::vector<train::CalibBatch> calib;
  torch::Tensor calib_images;  // (Ncal, C, H, W)
  HeldOut held_out;
  Inheritance inheritance;
  Metrics baseline;
  std::vector<std::string> objectives;
  std::vector<Budget> budgets;  // resolved
};

// A candidate as the delivery sees it.
struct Ranked {
  std::string key;
  Genome genome;
  nlohmann::json metrics;  // the search's measurements
};

// Delivers the first of `ranked` that meets `budget` once built for good: fine-tuned (distilled
// from the original, never on the held-out images) when the request says so, quantized, saved to
// `path`, re-measured on the runtime (a latency over budget moves on to the next). Returns the
// record: budget, key, model, genome, search_metrics, final_metrics [, finetune] or error.
nlohmann::json deliver(SearchContext& ctx, const std::vector<Ranked>& ranked, const Budget& budget,
                       const std::filesystem::path& path);

}  // namespace vitopt::search
