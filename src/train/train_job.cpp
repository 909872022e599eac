#include "train/train_job.h"

#include <fmt/format.h>

#include "core/error.h"
#include "data/dataset.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "io/safetensors.h"
#include "report/figures.h"
#include "train/data_bridge.h"
#include "train/distributed/communicator.h"

namespace vitopt::train {

TrainResult run_train_job(const TrainJob& job) {
  const auto ckpt = job.options.out_dir / "checkpoint.safetensors";
  std::optional<model::ViT> vit;
  if (job.options.resume) {
    // The checkpoint knows its own config; weights are restored by the trainer. In a
    // data-parallel run only rank 0 reads it (other machines need no copy) and sends the config.
    std::optional<io::ViTConfig> saved;
    if (dist::is_root()) {
      if (!std::filesystem::exists(ckpt))
        core::throw_input("--resume: no checkpoint at {} (run without --resume to start fresh)",
                          ckpt.string());
      saved = io::read_model_header(ckpt).config;
    }
    if (auto* comm = dist::current()) {
      std::string config_text = saved ? saved->to_json().dump() : std::string();
      comm->broadcast_string(config_text);
      if (!saved)
        saved = io::ViTConfig::from_json(nlohmann::json::parse(config_text),
                                         "rank 0's " + ckpt.string());
    }
    vit.emplace(*saved);
  } else if (!job.init_model.empty()) {
    vit.emplace(model::load_model(job.init_model, job.hints));
  } else {
    vit.emplace(job.config);
    (*vit)->init_weights(job.options.seed);
  }
  const auto& config = (*vit)->config();
  auto train_set = open_dataset_for(job.data, config, data::Split::Train, job.limit, job.options.seed);
  std::shared_ptr<data::Dataset> val_set;
  if (job.validate)
    val_set = open_dataset_for(job.data, config, data::Split::Test, job.val_limit, job.options.seed);
  if (!job.options.quiet)
    fmt::print(stderr, "training {} ({} params) on {}{}\n", config.name, io::count_params(config),
               train_set->description(), val_set ? ", validating on " + val_set->description() : "");
  auto result = train_model(*vit, train_set, val_set, job.options);
  // The curves of what was logged (also after an early stop); a figure, so gnuplot missing or
  // failing costs a note, never the trained model.
  if (std::filesystem::exists(job.options.out_dir / "metrics.jsonl")) {
    try {
      const auto png = report::render_training_curves(job.options.out_dir);
      if (!job.options.quiet) fmt::print(stderr, "training curves: {}\n", png.string());
    } catch (const core::Error& e) {
      fmt::print(stderr, "note: no training-curve figure: {}\n", e.what());
    }
  }
  return result;
}

nlohmann::json train_result_json(const TrainResult& r) {
  return {{"completed", r.completed},        {"best_top1", r.best_top1},
          {"best_epoch", r.best_epoch},      {"final_top1", r.final_top1},
          {"best_model", r.best_model.string()}, {"final_model", r.final_model.string()},
          {"history", r.history}};
}

}  // namespace vitopt::train
