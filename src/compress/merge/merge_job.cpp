// The token-merging job (see merge_job.h).
#include "compress/merge/merge_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "compress/lowrank/recover.h"
#include "compress/prune/measure.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/timer.h"
#include "eval/latency.h"
#include "export/model_writer.h"
#include "io/config_rewrite.h"
#include "io/merge_schedule.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "model/model_file.h"
#include "train/distributed/world.h"
#include "train/torch_env.h"

namespace vitopt::merge {
namespace {

constexpr const char* kMergingKey = "vitopt.merging";  // informational record in the file

nlohmann::json schedule_json(const io::ViTConfig& c) {
  std::vector<int> effective;
  const auto tokens = c.token_counts();
  for (int b = 0; b < c.depth; ++b) effective.push_back(tokens[static_cast<size_t>(b)] - tokens[static_cast<size_t>(b) + 1]);
  return {{"merge_r", io::merge_schedule(c)},
          {"merged_per_block", effective},
          {"tokens", tokens},
          {"macs", io::count_macs(c)},
          {"params", io::count_params(c)}};
}

}  // namespace

void validate_request(const MergeRequest& r) {
  if (r.out.empty()) core::throw_input("--out: a path for the merged model is required");
  if (!(r.finetune_epochs >= 0) || !std::isfinite(r.finetune_epochs))
    core::throw_input("--finetune-epochs: expected >= 0, got {}", r.finetune_epochs);
  if (r.r.empty()) core::throw_input("--r: expected a merge schedule such as 8, 8,8,4,... or decreasing");
}

nlohmann::json run_merge(const MergeRequest& request) {
  validate_request(request);
  MergeRequest r = request;
  if (r.report_dir.empty()) r.report_dir = r.out.parent_path() / (r.out.stem().string() + "_merge");
  const bool root = train::dist::is_root();  // every rank fine-tunes; rank 0 measures and writes
  if (!root) r.measure = false;
  if (root) std::filesystem::create_directories(r.report_dir);
  train::configure_threads(r.threads);
  torch::manual_seed(r.seed);
  core::Stopwatch clock;

  const auto file = io::SafeTensorsFile::load(r.model);
  const io::ModelHeader header = io::read_model_header(file);
  io::ViTConfig merged_config = header.config;
  io::set_merge_schedule(merged_config, io::parse_merge_schedule(r.r, merged_config.depth, "--r"));
  merged_config.normalize(r.model.string());
  if (r.finetune_epochs > 0 && header.quant)
    core::throw_input("--finetune-epochs: {} is quantized; merge and fine-tune the fp32 model, "
                      "then quantize (or merge this file without fine-tuning)",
                      r.model.string());

  nlohmann::json j = {{"model", r.model.string()}, {"out", r.out.string()},   {"r", r.r},
                      {"finetune_epochs", r.finetune_epochs}, {"data", r.data},
                      {"original", schedule_json(header.config)},
                      {"merged", schedule_json(merged_config)}};
  const nlohmann::json record = {{"r", r.r},
                                 {"merge_r", io::merge_schedule(merged_config)},
                                 {"finetune_epochs", r.finetune_epochs}};
  prune::Accuracy base;
  if (r.measure) {
    auto original = model::load_model(file);
    original->eval();
    base = prune::test_accuracy(original, r.data, r.eval_limit, r.quiet, "  original");
    j["original"]["accuracy"] = base.to_json();
  }
  if (r.finetune_epochs == 0) {
    if (root) io::write_with_config(file, merged_config, {{kMergingKey, record.dump()}}, r.out);
  } else {
    auto [teacher, class_names] = model::load_edit_input(r.model, "merged", "merge");
    auto student = model::load_model(file);
    student->set_merge(io::merge_schedule(merged_config));
    if (r.measure) {
      student->eval();
      j["before_finetune"] =
          prune::test_accuracy(student, r.data, r.eval_limit, r.quiet, "  merged").to_json();
    }
    const auto options =
        prune::job_finetune_options(r.finetune, r.data, r.seed, r.device, r.quiet, r.report_dir);
    j["finetune"] = lowrank::recover(student, teacher, r.distill_modes, options, r.finetune_epochs);
    student->eval();
    if (root) exporter::save_edited_model(student, r.out, kMergingKey, record.dump(), class_names);
  }
  if (!root) return j;
  if (r.measure) {
    auto merged = model::load_model(r.out);
    merged->eval();
    const auto acc = prune::test_accuracy(merged, r.data, r.eval_limit, r.quiet, "  final");
    j["merged"]["accuracy"] = acc.to_json();
    j["delta_top1"] = acc.top1 - base.top1;
    const auto claim = eval::compare_files_speed(r.model, r.out, "runtime", 1, 15, 20, r.threads);
    j["speed"] = claim.to_json("original", "merged");
    j["speed"]["summary"] = claim.summary();
  }
  j["macs_reduction"] =
      1.0 - j["merged"]["macs"].get<double>() / j["original"]["macs"].get<double>();
  j["seconds"] = clock.seconds();
  core::write_file_atomic(r.report_dir / "merge.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::merge
