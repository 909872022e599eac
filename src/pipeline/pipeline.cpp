#include "pipeline/pipeline.h"

#include <fmt/format.h>

#include "core/file_util.h"
#include "core/timer.h"
#include "data/loader.h"
#include "model/model_file.h"
#include "train/data_bridge.h"
#include "train/evaluate.h"
#include "train/torch_env.h"

namespace vitopt::pipeline {

namespace {

nlohmann::json evaluate_file(const std::filesystem::path& path, const Recipe& r, bool quiet) {
  auto vit = model::load_model(path);
  const auto device = train::parse_device(r.device);
  vit->to(device);
  const auto& config = vit->config();
  auto ds = train::open_dataset_for(r.train.data, config, data::Split::Test, r.eval_limit, r.seed);
  data::LoaderOptions lopts;
  lopts.batch_size = r.eval_batch_size;
  lopts.workers = r.train.options.workers;
  lopts.transform = train::eval_transform(config);
  data::DataLoader loader(ds, lopts);
  train::EvalOptions eopts;
  eopts.device = device;
  eopts.quiet = quiet;
  eopts.label = "evaluate " + path.filename().string();
  const auto e = train::evaluate(vit, loader, eopts);
  return {{"model", path.string()}, {"data", ds->description()}, {"images", e.count},
          {"top1", e.top1},         {"top5", e.top5},            {"loss", e.loss},
          {"params", model::count_params(config)}, {"macs", model::count_macs(config)},
          {"file_bytes", std::filesystem::file_size(path)}};
}

std::string summary_markdown(const Recipe& r, const nlohmann::json& s) {
  std::string md = fmt::format("# vitopt run: {}\n\nRecipe: `{}`  \nRun folder: `{}`  \n", r.name,
                               r.source.empty() ? "(built-in default)" : r.source.string(),
                               r.out.string());
  md += fmt::format("Total time: {:.1f} min\n\n## Training\n\n| epoch | train loss | train top-1 | val top-1 | val top-5 | img/s |\n|---|---|---|---|---|---|\n",
                    s["seconds"].get<double>() / 60);
  for (const auto& h : s["train"]["history"])
    md += fmt::format("| {} | {:.4f} | {:.2f}% | {:.2f}% | {:.2f}% | {:.0f} |\n", h["epoch"].get<int>(),
                      h["train_loss"].get<double>(), 100 * h["train_top1"].get<double>(),
                      100 * h.value("val_top1", 0.0), 100 * h.value("val_top5", 0.0),
                      h["train_images_per_s"].get<double>());
  md += "\n## Models\n\n| model | top-1 | top-5 | params | MMACs | size (MB) |\n|---|---|---|---|---|---|\n";
  for (const auto& m : s["models"])
    md += fmt::format("| {} | {:.2f}% | {:.2f}% | {} | {:.1f} | {:.2f} |\n",
                      std::filesystem::path(m["model"].get<std::string>()).filename().string(),
                      100 * m["top1"].get<double>(), 100 * m["top5"].get<double>(),
                      m["params"].get<int64_t>(), m["macs"].get<int64_t>() / 1e6,
                      m["file_bytes"].get<double>() / 1e6);
  return md;
}

}  // namespace

nlohmann::json run_pipeline(const Recipe& recipe, const PipelineOptions& options) {
  core::Stopwatch clock;
  const int threads = train::configure_threads(recipe.threads);
  std::filesystem::create_directories(recipe.out);
  core::write_file_atomic(recipe.out / "recipe.yaml", recipe.text);

  train::TrainJob job = recipe.train;
  job.options.out_dir = recipe.out / "train";
  job.options.seed = recipe.seed;
  job.options.device = recipe.device;
  job.options.quiet = options.quiet;
  job.options.resume = recipe.resume && std::filesystem::exists(job.options.out_dir / "checkpoint.safetensors");
  if (!options.quiet)
    fmt::print(stderr, "[pipeline {}] stage train -> {}{}\n", recipe.name, job.options.out_dir.string(),
               job.options.resume ? " (resuming)" : "");
  const auto trained = train::run_train_job(job);

  nlohmann::json models = nlohmann::json::array();
  for (const auto& path : {trained.final_model, trained.best_model}) {
    if (!options.quiet) fmt::print(stderr, "[pipeline {}] stage eval {}\n", recipe.name, path.string());
    models.push_back(evaluate_file(path, recipe, options.quiet));
  }
  nlohmann::json summary = {{"name", recipe.name},
                            {"recipe", recipe.source.string()},
                            {"out", recipe.out.string()},
                            {"threads", threads},
                            {"seed", recipe.seed},
                            {"train", train::train_result_json(trained)},
                            {"models", models},
                            {"seconds", clock.seconds()}};
  core::write_file_atomic(recipe.out / "summary.json", summary.dump(2) + "\n");
  core::write_file_atomic(recipe.out / "summary.md", summary_markdown(recipe, summary));
  return summary;
}

}  // namespace vitopt::pipeline
