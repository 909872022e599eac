// The stages of a recipe as a graph: which stage's output each one starts from (`from:`), the
// order they run in (dependencies first, otherwise recipe order), and which of them a command
// line selects (--mode, --only). Plain data, no LibTorch: the pipeline fills it from the recipe.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace vitopt::pipeline {

// Stage ids: "train", "<kind>/<name>" for compression stages (kind quantize|prune|distill), "eval".
struct StageNode {
  std::string id;
  std::string kind;  // "train", "quantize", "prune", "distill", "eval"
  std::string from;  // as written in the recipe ("" for train and eval)
  // Resolved by plan_stages: the stage whose output is the input, or a model file.
  std::string input_stage;
  std::filesystem::path input_file;
};

enum class Mode { kTrain, kOptimize, kEvaluate, kAll };
Mode parse_mode(const std::string& text);  // train|optimize|evaluate|all, else InputError
const char* mode_name(Mode mode);

// Resolves every `from` and orders the stages. `compress` are the compression stages in recipe
// order; `from_model` is the recipe's starting model (empty: a train stage exists). Throws
// InputError naming `source` for an unknown stage, a missing training stage or a cycle.
std::vector<StageNode> plan_stages(std::vector<StageNode> compress,
                                   const std::filesystem::path& from_model,
                                   const std::string& source);

// The ids the command line selects: the mode's stages, narrowed by --only (ids, a kind such as
// "prune", or a stage name unique in the recipe). Throws InputError for an unknown --only entry
// or a selection that leaves nothing to do.
std::set<std::string> select_stages(const std::vector<StageNode>& plan, Mode mode,
                                    const std::vector<std::string>& only);

}  // namespace vitopt::pipeline
