#include "pipeline/compress_stages.h"

#include <fmt/format.h>

#include "core/error.h"

namespace vitopt::pipeline {

namespace {

template <typename Entry>
const Entry* find_in(const std::vector<Entry>& entries, const std::string& name) {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

std::pair<std::string, std::string> split_id(const std::string& id) {
  const auto slash = id.find('/');
  if (slash == std::string::npos) core::throw_internal("not a compression stage id: '{}'", id);
  return {id.substr(0, slash), id.substr(slash + 1)};
}

// The request of a stage that edits a model's weights (prune, factorize, share, circuits): the
// recipe's options plus what the run decides (files, data, seed, threads, device), without the
// job's own measurements (the run's report evaluates every model the same way).
template <typename Stage>
auto editing_request(const Recipe& r, const std::vector<Stage>& entries, const std::string& kind,
                     const std::string& name, const std::filesystem::path& input, bool quiet) {
  auto req = find_in(entries, name)->request;
  req.model = input;
  req.out = r.out / kind / (name + ".safetensors");
  req.report_dir = r.out / kind / name;
  req.data = r.train.data;
  req.seed = r.seed;
  req.threads = r.threads;
  req.device = r.device;
  req.quiet = quiet;
  req.eval_limit = r.eval_limit;
  req.finetune.workers = r.train.options.workers;
  req.measure = false;
  std::filesystem::create_directories(req.report_dir);
  return req;
}

}  // namespace

std::vector<StageNode> compress_stage_nodes(const Recipe& r) {
  std::vector<StageNode> nodes;
  for (const auto& e : r.quantize) nodes.push_back({"quantize/" + e.name, "quantize", e.from, "", {}});
  for (const auto& e : r.prune) nodes.push_back({"prune/" + e.name, "prune", e.from, "", {}});
  for (const auto& e : r.distill) nodes.push_back({"distill/" + e.name, "distill", e.from, "", {}});
  for (const auto& e : r.factorize)
    nodes.push_back({"factorize/" + e.name, "factorize", e.from, "", {}});
  for (const auto& e : r.share) nodes.push_back({"share/" + e.name, "share", e.from, "", {}});
  for (const auto& e : r.circuits)
    nodes.push_back({"circuits/" + e.name, "circuits", e.from, "", {}});
  for (const auto& e : r.merge) nodes.push_back({"merge/" + e.name, "merge", e.from, "", {}});
  for (const auto& e : r.search) nodes.push_back({"search/" + e.name, "search", e.from, "", {}});
  return nodes;
}

const StageEntry& find_stage(const Recipe& r, const std::string& id) {
  const auto [kind, name] = split_id(id);
  const StageEntry* e = nullptr;
  if (kind == "quantize") e = find_in(r.quantize, name);
  if (kind == "prune") e = find_in(r.prune, name);
  if (kind == "distill") e = find_in(r.distill, name);
  if (kind == "factorize") e = find_in(r.factorize, name);
  if (kind == "share") e = find_in(r.share, name);
  if (kind == "circuits") e = find_in(r.circuits, name);
  if (kind == "merge") e = find_in(r.merge, name);
  if (kind == "search") e = find_in(r.search, name);
  if (e == nullptr) core::throw_internal("stage '{}' is not in the recipe", id);
  return *e;
}

std::filesystem::path stage_model_path(const Recipe& r, const std::string& id) {
  const auto [kind, name] = split_id(id);
  if (kind == "distill") return r.out / "distill" / name / "model.safetensors";
  return r.out / kind / (name + ".safetensors");
}

nlohmann::json run_compress_stage(const Recipe& r, const std::string& id,
                                  const std::filesystem::path& input, bool resume, bool quiet) {
  const auto [kind, name] = split_id(id);
  const auto out = stage_model_path(r, id);
  std::filesystem::create_directories(out.parent_path());
  if (kind == "quantize") {
    auto req = find_in(r.quantize, name)->request;
    req.model = input;
    req.out = out;
    req.data = r.train.data;
    req.seed = r.seed;
    req.device = r.device;
    req.quiet = quiet;
    req.workers = r.train.options.workers;
    req.eval_limit = r.eval_limit;
    req.evaluate = false;  // the run's report evaluates every model the same way
    return quant::run_quantize(req);
  }
  if (kind == "prune")
    return prune::run_prune(editing_request(r, r.prune, kind, name, input, quiet));
  if (kind == "factorize")
    return lowrank::run_factorize(editing_request(r, r.factorize, kind, name, input, quiet));
  if (kind == "share")
    return lowrank::run_share(editing_request(r, r.share, kind, name, input, quiet));
  if (kind == "circuits")
    return circuits::run_circuits(editing_request(r, r.circuits, kind, name, input, quiet));
  if (kind == "merge")
    return merge::run_merge(editing_request(r, r.merge, kind, name, input, quiet));
  if (kind == "search") {
    auto req = find_in(r.search, name)->request;
    req.model = input;
    req.out_dir = r.out / "search" / (name + "_search");
    req.deliver = out;
    req.data = r.train.data;
    req.seed = r.seed;
    req.evolution.seed = r.seed;
    req.threads = r.threads;
    req.device = r.device;
    req.quiet = quiet;
    req.finetune.workers = r.train.options.workers;
    req.evaluate = false;  // the run's report evaluates every model the same way
    return search::run_search(req);
  }
  auto req = find_in(r.distill, name)->request;
  req.teacher = input;
  req.data = r.train.data;
  req.out_dir = out.parent_path();
  req.threads = r.threads;
  req.eval_limit = r.eval_limit;
  req.options.seed = r.seed;
  req.options.device = r.device;
  req.options.quiet = quiet;
  req.options.workers = r.train.options.workers;
  // Feature distillation trains projections that checkpoints do not hold: such a run restarts.
  bool feature = false;
  for (const auto& modes : req.runs) feature |= modes.find("feature") != std::string::npos;
  req.options.resume =
      resume && !feature && std::filesystem::exists(req.out_dir / "checkpoint.safetensors");
  req.skip_completed = false;  // the pipeline's fingerprints decide what is reused
  req.report = false;          // the run's report compares the student with the teacher
  return distill::run_distill(req);
}

}  // namespace vitopt::pipeline
