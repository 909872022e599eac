// Every key vitopt writes into a model file's __metadata__ (docs/model-format.md, "Metadata"), and
// the format version this build reads and writes. Values are strings (safetensors rule); the JSON
// ones are parsed by io's header reader. Keys not listed here are informational and ignored.
#pragma once

namespace vitopt::io {

// The version of the vitopt model format (metadata, tensor layout and quantized storage). A file
// with a different version is refused with a message saying which vitopt wrote it.
inline constexpr int kFormatVersion = 1;

inline constexpr const char* kFormatKey = "format";  // "pt", so timm/HF loaders accept fp32 files
inline constexpr const char* kFormatValue = "pt";
inline constexpr const char* kFormatVersionKey = "vitopt.format_version";  // "1"
inline constexpr const char* kConfigKey = "vitopt.config";          // ViTConfig JSON
inline constexpr const char* kQuantKey = "vitopt.quant";            // QuantSpec JSON (quantized)
inline constexpr const char* kClassNamesKey = "vitopt.class_names";  // JSON array of strings
// Informational keys (written by commands, never needed to rebuild the model):
inline constexpr const char* kQuantSourceKey = "vitopt.quant_source";  // fp32 file quantized from
inline constexpr const char* kPruningKey = "vitopt.pruning";           // pruning record (JSON)
inline constexpr const char* kTrainEpochKey = "vitopt.train_epoch";    // epochs trained
inline constexpr const char* kTrainerStateKey = "vitopt.trainer_state";  // checkpoint files only

}  // namespace vitopt::io
