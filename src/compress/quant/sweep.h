// The bit sweep (`vitopt quantize --sweep 4,6,8,...`): PTQ at each width into <out>/, then per
// width accuracy, size, per-class accuracy changes and per-layer SQNR, activation histograms per
// layer, plots of accuracy and size against bits, and (when the evaluator library is built) the
// evaluator's full report (latency, confusion matrices, calibration) over all widths.
#pragma once

#include <nlohmann/json.hpp>

#include "compress/quant/quantize_job.h"

namespace vitopt::quant {

// `fp` is the loaded fp32 model, `calib` the calibration images. Writes <out>/sweep.json,
// sweep.md, histograms.json, *.dat + *.gp (and .png with gnuplot), w<b>a<b>.safetensors.
nlohmann::json run_sweep(const QuantizeRequest& req, model::ViT& fp, const torch::Tensor& calib);

}  // namespace vitopt::quant
