// The one reader of a model file's header, for both halves: config (stored, or from a timm/HF
// checkpoint's one conversion, io/checkpoint_convert.h), quantization spec, class names,
// preprocessing, format version and precision label, every rule of docs/model-format.md that needs
// no tensor data checked here. The LibTorch loader (src/model) and the runtime loader (src/runtime)
// call it and then read tensors.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint_import.h"
#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "io/vit_config.h"

namespace vitopt::io {

struct ModelHeader {
  ViTConfig config;                      // normalized; preprocessing in config.preprocess
  std::optional<QuantSpec> quant;        // quantized files only; names checked against config
  std::vector<std::string> class_names;  // optional "vitopt.class_names" (empty if none)
  int format_version = 0;                // kFormatVersion, or 0 for an imported checkpoint
  bool imported = false;                 // no vitopt metadata: a timm/HF checkpoint
  std::string precision;                 // precision_label(quant)
  const Preprocess& preprocess() const { return config.preprocess; }
};

// Reads and validates the header. InputError naming the file, metadata key and field when:
// "vitopt.config" is present without "vitopt.format_version" = kFormatVersion, or any vitopt key
// is present without "vitopt.config"; a JSON value is malformed or has unknown fields; the quant
// spec names a weight or Linear the config does not have, or lists attention for a block without
// its own attention; class names are not a JSON array of strings. Hints mean/std override the
// stored preprocessing (any file); heads only apply to imported checkpoints.
ModelHeader read_model_header(const SafeTensorsFile& file, const ImportHints& hints = {});
// Same for a file on disk (loads and validates the whole safetensors container first).
ModelHeader read_model_header(const std::filesystem::path& path, const ImportHints& hints = {});

// "fp32" without quantized weights; "int<b>" when every quantized weight has b bits (an fp32 patch
// embedding or head does not change the label); "mixed" otherwise.
std::string precision_label(const std::optional<QuantSpec>& quant);

// Every weights key must be a weight tensor of a Linear of `c` (dense ".weight" or low-rank
// ".weight_u"/".weight_v"), every inputs key a Linear of `c` (or "<linear>.weight_u" of a
// low-rank one: the input of its second factor), every extras.attention block index
// a block with its own attention. `source` names the file in errors.
void validate_quant_names(const QuantSpec& spec, const ViTConfig& c, const std::string& source);

}  // namespace vitopt::io
