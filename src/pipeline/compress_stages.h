// The pipeline's compression stages: one quantize / prune / distill entry of a recipe applied to
// its input model (the baseline, another stage's output or a model file), producing one model
// file under the run folder. Deciding whether a stage must run at all is the pipeline's job.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/recipe.h"
#include "pipeline/stage_plan.h"

namespace vitopt::pipeline {

// The recipe's compression stages as graph nodes ("quantize/w8a8", from: ...), in recipe order.
std::vector<StageNode> compress_stage_nodes(const Recipe& recipe);

// The recipe section of stage `id` ("prune/global-50").
const StageEntry& find_stage(const Recipe& recipe, const std::string& id);

// The model file stage `id` writes.
std::filesystem::path stage_model_path(const Recipe& recipe, const std::string& id);

// Runs stage `id` on `input` (for distill: the teacher) and returns its job's result JSON.
// `resume` lets a stage with checkpoints (distill) continue an interrupted run of itself.
nlohmann::json run_compress_stage(const Recipe& recipe, const std::string& id,
                                  const std::filesystem::path& input, bool resume, bool quiet);

}  // namespace vitopt::pipeline
