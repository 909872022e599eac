#include "pipeline/stage_plan.h"

#include <fmt/format.h>

#include <map>

#include "core/error.h"

namespace vitopt::pipeline {

namespace {

bool is_model_file(const std::string& from) {
  const std::string ext = ".safetensors";
  return from.size() > ext.size() && from.compare(from.size() - ext.size(), ext.size(), ext) == 0;
}

std::string ids_of(const std::vector<StageNode>& nodes) {
  std::vector<std::string> ids;
  for (const auto& n : nodes) ids.push_back(n.id);
  return fmt::format("{}", fmt::join(ids, ", "));
}

}  // namespace

Mode parse_mode(const std::string& text) {
  if (text == "train") return Mode::kTrain;
  if (text == "optimize") return Mode::kOptimize;
  if (text == "evaluate") return Mode::kEvaluate;
  if (text == "all") return Mode::kAll;
  core::throw_input("--mode: expected train, optimize, evaluate or all, got '{}'", text);
}

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kTrain: return "train";
    case Mode::kOptimize: return "optimize";
    case Mode::kEvaluate: return "evaluate";
    case Mode::kAll: break;
  }
  return "all";
}

std::vector<StageNode> plan_stages(std::vector<StageNode> compress,
                                   const std::filesystem::path& from_model,
                                   const std::string& source) {
  const bool trains = from_model.empty();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < compress.size(); ++i) index[compress[i].id] = i;
  for (auto& n : compress) {
    const std::string where = fmt::format("{}: {}: from", source, n.id);
    if (n.from.empty() || n.from == "baseline" || n.from == "train") {
      if (n.from == "train" && !trains)
        core::throw_input("{} 'train': this recipe has no training stage (it starts from {}); "
                          "use 'baseline' or leave `from` out", where, from_model.string());
      if (trains)
        n.input_stage = "train";
      else
        n.input_file = from_model;
    } else if (index.count(n.from)) {
      if (n.from == n.id) core::throw_input("{} '{}': a stage cannot start from itself", where, n.from);
      n.input_stage = n.from;
    } else if (is_model_file(n.from)) {
      n.input_file = n.from;
    } else {
      core::throw_input("{} '{}': no such stage (stages: {}{}; or a .safetensors model file)", where,
                        n.from, trains ? "train, " : "baseline, ", ids_of(compress));
    }
  }
  // Depth-first order: a stage after the stage it starts from, otherwise in recipe order.
  std::vector<StageNode> ordered;
  if (trains) ordered.push_back({"train", "train", "", "", {}});
  std::vector<int> state(compress.size(), 0);  // 0 new, 1 on the current path, 2 placed
  std::vector<std::string> path;
  auto visit = [&](auto&& self, size_t i) -> void {
    if (state[i] == 2) return;
    path.push_back(compress[i].id);
    if (state[i] == 1)
      core::throw_input("{}: the stages' `from` form a cycle: {}", source, fmt::join(path, " <- "));
    state[i] = 1;
    const auto& up = compress[i].input_stage;
    if (!up.empty() && up != "train") self(self, index.at(up));
    state[i] = 2;
    path.pop_back();
    ordered.push_back(compress[i]);
  };
  for (size_t i = 0; i < compress.size(); ++i) visit(visit, i);
  ordered.push_back({"eval", "eval", "", "", {}});
  return ordered;
}

std::set<std::string> select_stages(const std::vector<StageNode>& plan, Mode mode,
                                    const std::vector<std::string>& only) {
  std::set<std::string> by_mode;
  for (const auto& n : plan) {
    const bool compress = n.kind != "train" && n.kind != "eval";
    if (mode == Mode::kAll || (mode == Mode::kTrain && n.kind == "train") ||
        (mode == Mode::kOptimize && compress) || (mode == Mode::kEvaluate && n.kind == "eval"))
      by_mode.insert(n.id);
  }
  if (only.empty()) {
    if (by_mode.empty())
      core::throw_input("--mode {}: this recipe has no such stage (stages: {})", mode_name(mode),
                        ids_of(plan));
    return by_mode;
  }
  std::set<std::string> chosen;
  for (const auto& want : only) {
    std::vector<std::string> hits;
    for (const auto& n : plan) {
      const auto slash = n.id.find('/');
      const std::string name = slash == std::string::npos ? n.id : n.id.substr(slash + 1);
      if (want == n.id || want == n.kind || want == name) hits.push_back(n.id);
    }
    if (hits.empty())
      core::throw_input("--only {}: no such stage (stages: {}; a kind such as prune selects all "
                        "of its stages)", want, ids_of(plan));
    const bool ambiguous_name = hits.size() > 1 && want.find('/') == std::string::npos &&
                                want != "quantize" && want != "prune" && want != "distill" &&
                                want != "factorize" && want != "share" && want != "circuits" &&
                                want != "merge" && want != "search";
    if (ambiguous_name)
      core::throw_input("--only {}: more than one stage has this name ({}): write kind/name",
                        want, fmt::join(hits, ", "));
    chosen.insert(hits.begin(), hits.end());
  }
  std::set<std::string> out;
  for (const auto& id : chosen)
    if (by_mode.count(id)) out.insert(id);
  if (out.empty())
    core::throw_input("--only {} selects nothing that --mode {} runs", fmt::join(only, ","),
                      mode_name(mode));
  return out;
}

}  // namespace vitopt::pipeline
