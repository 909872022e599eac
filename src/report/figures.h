// Figures of what the training and quantization jobs compute, outside the evaluator's report:
// training curves from a run's metrics.jsonl, and the per-layer activation histograms that the
// bit sweep's calibration observed (histograms.json). Each is one gnuplot script, data inline,
// kept next to its PNG. No computation of new numbers here.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vitopt::report {

// Loss, top-1 and learning rate per epoch (train and, where present, validation), three panels.
std::string training_curves_script(const std::vector<nlohmann::json>& epochs,
                                   const std::string& png);

// One panel per layer (log-count histogram over [min, max]); `histograms` maps layer name to
// {"min", "max", "bins", "counts"[, "p0.01", "p99.99"]} as the quantization sweep writes it.
std::string activation_histograms_script(const nlohmann::json& histograms, const std::string& png);

// Reads <run_dir>/metrics.jsonl and renders <run_dir>/plots/training.png (+ .gp). Returns the PNG
// path; throws InputError for a malformed log, InternalError if gnuplot fails.
std::filesystem::path render_training_curves(const std::filesystem::path& run_dir);

}  // namespace vitopt::report
