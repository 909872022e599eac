// What the search job's parts share (private to src/search): the request, the space, the original
// model (teacher and baseline), the parent candidates inherit from (the original, or a copy trained
// as a supernet) and the distilled students, the calibration and held-out data at each input
// resolution, the budgets resolved against the baseline.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/candidate.h"
#include "search/runtime_measure.h"
#include "search/search_job.h"

namespace vitopt::search {

struct SearchContext {
  SearchContext(const SearchRequest& r, const Space& s) : request(r), space(s) {}
  const SearchRequest& request;
  const Space& space;
  model::ViT original{nullptr};  // the model searched: teacher and baseline
  model::ViT parent{nullptr};    // base 0: candidates of the model inherit from this one
  std::vector<std::string> class_names;
  std::vector<train::CalibBatch> calib;
  torch::Tensor calib_images;                    // (Ncal, C, H, W) at the model's resolution
  HeldOut held_out;                              // at the model's resolution
  Inheritance inheritance;                       // of `parent`
  std::vector<model::ViT> students;              // base k >= 1 at [k - 1]
  std::vector<Inheritance> student_inheritance;  // likewise
  Metrics baseline;
  std::vector<std::string> objectives;
  std::vector<Budget> budgets;  // resolved

  // The genome's base model and its inheritance.
  model::ViT& base_of(const Genome& g);
  const Inheritance& inheritance_of(const Genome& g) const;
  // The calibration images and held-out batches at the genome's input side (the same images,
  // resized by the eval transform; computed once per side).
  const torch::Tensor& calib_for(const Genome& g);
  const HeldOut& held_out_for(const Genome& g);

 private:
  int side_of(const Genome& g) const;
  std::map<int, torch::Tensor> calib_at_;
  std::map<int, HeldOut> held_out_at_;
};

// The fine-tuning options of any training inside the search (supernet, students, delivered
// models): the job's, with the training split cut before the held-out tail so that the held-out
// estimates stay clean.
prune::FinetuneOptions finetune_options(const SearchContext& ctx,
                                        const std::filesystem::path& work_dir);

// The teacher terms of a training inside the search (request.distill_modes, "" for none):
// token-wise ones (hidden states, attention maps) need the teacher's patch grid, so a model at
// another input side (same_grid false) keeps the others.
std::string teacher_modes(const std::string& modes, bool same_grid);

// Trains (or, when resuming, reloads from out_dir) every student preset of the space by
// distillation from the original model, and computes their inheritance. Returns a log per
// student (file, params, epochs, held-out top-1, seconds).
nlohmann::json prepare_students(SearchContext& ctx);

// A candidate as the delivery sees it.
struct Ranked {
  std::string key;
  Genome genome;
  nlohmann::json metrics;  // the search's measurements
};

// One model to deliver: the candidates to try in order, the budget it must meet, where it goes
// and how the report names it. Ranks other than 0 of a data-parallel run hold the candidates'
// keys and genomes only (an empty budget: rank 0 decides which candidate is kept).
struct DeliveryJob {
  std::vector<Ranked> ranked;
  Budget budget;
  std::filesystem::path path;
  std::string label;        // in the report: "search/budget1", "<technique> alone"
  std::string technique;    // single-technique deliveries: the technique ("" for the budgets)
  std::string over_budget;  // a technique's stand-in for lack of one under budget: the budget
};

// Rank 0's delivery plan as text for the other ranks (paths, labels, keys and genomes), and back.
std::string delivery_jobs_text(const std::vector<DeliveryJob>& jobs);
std::vector<DeliveryJob> delivery_jobs_from_text(const std::string& text);

// Data parallel: rank 0's head and neuron orders on every rank (the ranks compute them from the
// same images, but float rounding may swap near-ties; the structures they build must match).
void agree_on_orders(Inheritance& inheritance);

// Delivers the first of `ranked` that meets `budget` once built for good: fine-tuned (distilled
// from the original, never on the held-out images) when the request says so, quantized, saved to
// `path`, re-measured on the runtime (a latency over budget moves on to the next). Returns the
// record: budget, key, model, genome, search_metrics, final_metrics [, finetune] or error. Data
// parallel: every rank builds and fine-tunes; rank 0 quantizes, saves, measures and decides.
nlohmann::json deliver(SearchContext& ctx, const std::vector<Ranked>& ranked, const Budget& budget,
                       const std::filesystem::path& path);

}  // namespace vitopt::search
