#include "pipeline/compress_stages.h"

#include <fmt/format.h>

#include "core/file_util.h"
#include "core/json_util.h"

namespace vitopt::pipeline {

namespace {

// An earlier run's result, when its model and JSON record both exist and resuming is allowed.
bool reuse(const Recipe& r, const std::filesystem::path& model, const std::filesystem::path& record,
           StageOutput& out) {
  if (!r.resume || !std::filesystem::exists(model) || !std::filesystem::exists(record)) return false;
  out.model = model;
  out.result = core::json_parse(core::read_file_text(record), record.string());
  out.reused = true;
  return true;
}

void announce(const Recipe& r, bool quiet, const StageOutput& o) {
  if (!quiet)
    fmt::print(stderr, "[pipeline {}] stage {} {} -> {}{}\n", r.name, o.stage, o.name,
               o.model.string(), o.reused ? " (done in an earlier run: reused)" : "");
}

}  // namespace

std::vector<StageOutput> run_compress_stages(const Recipe& r, const std::filesystem::path& baseline,
                                             bool quiet) {
  std::vector<StageOutput> outputs;
  for (const auto& stage : r.quantize) {
    StageOutput o{"quantize", stage.name, r.out / "quantize" / (stage.name + ".safetensors"), {}};
    const auto record = r.out / "quantize" / (stage.name + ".quant.json");  // run_quantize's record
    if (!reuse(r, o.model, record, o)) {
      announce(r, quiet, o);
      auto req = stage.request;
      req.model = baseline;
      req.out = o.model;
      req.data = r.train.data;
      req.seed = r.seed;
      req.device = r.device;
      req.quiet = quiet;
      req.workers = r.train.options.workers;
      req.eval_limit = r.eval_limit;
      req.evaluate = false;  // the run's report evaluates every model the same way
      std::filesystem::create_directories(o.model.parent_path());
      o.result = quant::run_quantize(req);
    } else {
      announce(r, quiet, o);
    }
    outputs.push_back(std::move(o));
  }
  for (const auto& stage : r.prune) {
    StageOutput o{"prune", stage.name, r.out / "prune" / (stage.name + ".safetensors"), {}};
    const auto report_dir = r.out / "prune" / stage.name;
    if (!reuse(r, o.model, report_dir / "prune.json", o)) {
      announce(r, quiet, o);
      auto req = stage.request;
      req.model = baseline;
      req.out = o.model;
      req.report_dir = report_dir;
      req.data = r.train.data;
      req.seed = r.seed;
      req.threads = r.threads;
      req.device = r.device;
      req.quiet = quiet;
      req.eval_limit = r.eval_limit;
      req.finetune.workers = r.train.options.workers;
      req.measure = false;  // the run's report evaluates every model the same way
      std::filesystem::create_directories(report_dir);
      o.result = prune::run_prune(req);
    } else {
      announce(r, quiet, o);
    }
    outputs.push_back(std::move(o));
  }
  for (const auto& stage : r.distill) {
    const auto dir = r.out / "distill" / stage.name;
    StageOutput o{"distill", stage.name, dir / "model.safetensors", {}};
    if (!reuse(r, o.model, dir / "distill.json", o)) {
      announce(r, quiet, o);
      auto req = stage.request;
      req.teacher = baseline;
      req.data = r.train.data;
      req.out_dir = dir;
      req.threads = r.threads;
      req.eval_limit = r.eval_limit;
      req.options.seed = r.seed;
      req.options.device = r.device;
      req.options.quiet = quiet;
      req.options.workers = r.train.options.workers;
      req.options.resume = r.resume && std::filesystem::exists(dir / "checkpoint.safetensors");
      req.report = false;  // the run's report compares the student with the teacher
      o.result = distill::run_distill(req);
    } else {
      announce(r, quiet, o);
    }
    outputs.push_back(std::move(o));
  }
  return outputs;
}

}  // namespace vitopt::pipeline
