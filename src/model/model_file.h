// Model files -> ViT modules (LibTorch side): the header comes from io::read_model_header (config
// stored or inferred from a timm checkpoint, quant spec, class names), then every tensor is copied
// into the module with its shape and dtype checked. Quantized files become a ViT that simulates
// the integer model (model/quantized_model.h). Writers: src/export.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/checkpoint_import.h"
#include "io/model_header.h"
#include "io/safetensors.h"
#include "model/vit.h"

namespace vitopt::model {

// Loads a model (ours, fp32 or quantized, or timm-named). Every expected tensor must be present
// with the right shape and dtype; extra tensors are an error. Errors name file and tensor.
ViT load_model(const std::filesystem::path& path, const io::ImportHints& hints = {});
ViT load_model(const io::SafeTensorsFile& file, const io::ImportHints& hints = {});

// Throws InputError when `path` is a quantized model file: methods that edit fp32 weights
// (`verb` e.g. "pruned", "factorized") would silently turn its integer weights into fp32. The
// message gives the order that works (`command` first, then quantize).
void refuse_quantized_input(const std::filesystem::path& path, const std::string& verb,
                            const std::string& command);

// The model a weight-editing method (prune, factorize, share) starts from: refused when quantized
// (as above), loaded in eval mode, with the class names its file records (empty if none).
struct EditInput {
  ViT model{nullptr};
  std::vector<std::string> class_names;
};
EditInput load_edit_input(const std::filesystem::path& path, const std::string& verb,
                          const std::string& command);

// Copies tensors named <prefix><timm name> from the file into the model (shapes checked).
void load_model_tensors(ViT& model, const io::SafeTensorsFile& file, const std::string& prefix = "");
// One parameter from the file tensor `name` (float dtype, the parameter's shape; `model_name`
// names the model in errors).
void load_model_tensor(torch::Tensor& param, const io::SafeTensorsFile& file,
                       const std::string& name, const std::string& model_name);
// One file tensor as a float32 CPU tensor (F32/F16/BF16/F64 converted), e.g. an input batch.
torch::Tensor read_tensor(const io::SafeTensorsFile& file, const std::string& name);

}  // namespace vitopt::model
