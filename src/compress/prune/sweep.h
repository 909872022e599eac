// `--sweep`: prunes the dense model at a list of amounts (before and after fine-tuning), measures
// each (top-1/top-3, params, MACs, nonzeros, batch latency vs dense), computes per-layer
// sensitivity, and writes sweep.json/.csv/.md with gnuplot plots under <report_dir>/sweep/; when
// the evaluator library is built, every sweep model also goes through eval::evaluate_models.
#pragma once

#include <nlohmann/json.hpp>

#include "compress/prune/measure.h"
#include "compress/prune/prune_job.h"

namespace vitopt::prune {

nlohmann::json run_sweep(model::ViT& dense, const PruneRequest& request, const Accuracy& dense_acc);

}  // namespace vitopt::prune
