// The report's figures, each one gnuplot script with its data inline, rendered to PNG in the
// plots folder (the script is kept next to it as <name>.gp so a figure can be re-rendered or
// restyled by hand). Reads only the MetricsReport; computes nothing new.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "report/metrics_schema.h"

namespace vitopt::report {

// Renders every figure that applies into `plots_dir` and returns name -> file name (e.g.
// "accuracy" -> "accuracy.png"). Always: accuracy, latency, throughput, params_macs,
// accuracy_macs, pareto_latency, pareto_size, reliability, confidence_<n> and confusion_<n> per
// model; with a baseline and another model: class_delta. The series a model belongs to in the
// accuracy-vs-MACs figure: its label without a trailing
// "-<number>" ("circuits/acdc-0.05" -> "circuits/acdc", "prune/taylor-30" -> "prune/taylor").
std::string method_series(const std::string& label);

std::map<std::string, std::string> render_plots(const MetricsReport& r,
                                                const std::filesystem::path& plots_dir);

}  // namespace vitopt::report
