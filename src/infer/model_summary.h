// `info` without LibTorch: what the runtime makes of a model file (shape, preprocessing, classes,
// parameters, MACs, precision, kernel level) plus the file's tensors. The file is loaded by the
// engine, so `info` also proves that the runtime accepts it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "vitopt/runtime.h"

namespace vitopt::infer {

// {"model", "file_bytes", "name", "image_size", "in_channels", "num_classes", "mean", "std",
//  "crop_pct", "class_names", "precision", "isa", "params", "macs", "tensors": [{name, dtype,
//  shape}]}
nlohmann::json describe_model(const std::filesystem::path& model_file,
                              const runtime::RuntimeOptions& options);
std::string describe_model_text(const nlohmann::json& summary, bool with_tensors);

}  // namespace vitopt::infer
