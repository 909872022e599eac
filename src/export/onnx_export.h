// ONNX export of a vitopt model file, LibTorch-free: the plain model data (every kind the project
// makes: fp32, slimmed per-block heads/widths, skipped sub-blocks, low-rank factors, shared
// blocks, distillation token, average pooling, and quantized files as QDQ) becomes one ONNX graph
// that computes what the vitopt runtime computes, built with Debian's ONNX library and validated
// by its checker. Preprocessing, class names and the vitopt config go into metadata_props.
// Input "pixel_values" (batch, C, H, W) normalized like the runtime's input; output "logits".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/model_loader.h"

namespace vitopt::exporter {

struct OnnxExportOptions {
  int opset = 17;  // 17 (ONNX Runtime >= 1.13 and most tools) or 21 (packed INT4/INT16 codes)
};

struct OnnxExportSummary {
  int opset = 0;
  int64_t ir_version = 0;
  std::string precision;  // the file's: "fp32", "int8", "int4", "mixed"
  int64_t nodes = 0, initializers = 0;
  size_t bytes = 0;                // serialized size
  std::vector<std::string> notes;  // how quantized parts were expressed (for the user)
};

// The serialized, checked ONNX model. InputError for an opset other than 17/21 or a model
// feature ONNX export does not cover (named).
std::string export_onnx_bytes(const runtime::LoadedModel& model, const OnnxExportOptions& options,
                              OnnxExportSummary* summary = nullptr);

// Reads `model_file` (a vitopt model file), exports it and writes `out` atomically.
OnnxExportSummary export_onnx(const std::filesystem::path& model_file,
                              const OnnxExportOptions& options, const std::filesystem::path& out);

// Metadata keys written into the ONNX model's metadata_props.
inline constexpr const char* kOnnxPreprocessKey = "vitopt.preprocess";   // JSON object
inline constexpr const char* kOnnxClassNamesKey = "vitopt.class_names";  // JSON array
inline constexpr const char* kOnnxConfigKey = "vitopt.config";           // ViTConfig JSON

}  // namespace vitopt::exporter
