// Writers of model files, the only bridge from a LibTorch model to a file (docs/model-format.md):
// fp32 with timm tensor names (pruning masks applied), and quantized with integer codes packed by
// io/code_packing. Both write the config, format version and "format": "pt" metadata atomically.
// Readers are io::read_model_header (both halves) and model::load_model / runtime's loader.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "model/quantized_model.h"
#include "model/vit.h"

namespace vitopt::exporter {

// Writes fp32 weights with timm names + metadata, atomically. `extra_metadata` is merged in (the
// vitopt keys of the format always win).
void save_model(model::ViT& model, const std::filesystem::path& path,
                const std::map<std::string, std::string>& extra_metadata = {});
// Saves a model a compression method edited: its record (JSON text) under `record_key`
// (e.g. "vitopt.pruning") and the class names of the model it came from.
void save_edited_model(model::ViT& model, const std::filesystem::path& path,
                       const std::string& record_key, const std::string& record_json,
                       const std::vector<std::string>& class_names);
// Adds the model's tensors (optionally under a name prefix) to a writer (used by checkpoints).
void add_model_tensors(model::ViT& model, io::SafeTensorsWriter& writer,
                       const std::string& prefix = "");

// Writes a quantized model file atomically: every tensor of `model` as F32 except the weights in
// `weights` (keyed by weight name), stored packed with their .scale/.zero_point siblings; the
// spec's weights entries are taken from `weights`. `spec.inputs`/`attention` are written as given.
void save_quantized_model(model::ViT& model,
                          const std::map<std::string, model::QuantizedWeight>& weights,
                          const io::QuantSpec& spec, const std::filesystem::path& path,
                          const std::map<std::string, std::string>& extra_metadata = {});

}  // namespace vitopt::exporter
