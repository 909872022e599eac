// Model files: a .safetensors file with timm tensor names and our config in __metadata__
// ("vitopt.config": ViTConfig JSON incl. preprocess; "vitopt.format_version": "1";
// "format": "pt" for timm/HF loaders). Loading a file without our metadata = importing a timm
// checkpoint: the config is inferred from tensor shapes (heads from the hint or C/64).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "io/safetensors.h"
#include "model/vit.h"

namespace vitopt::model {

inline constexpr const char* kConfigKey = "vitopt.config";
inline constexpr const char* kFormatVersionKey = "vitopt.format_version";
inline constexpr int kFormatVersion = 1;

struct ImportHints {
  std::optional<int> num_heads;            // timm files do not record heads
  std::optional<std::vector<float>> mean;  // --mean override
  std::optional<std::vector<float>> std;   // --std override
};

// Config stored in (or inferred from) a loaded file.
ViTConfig config_from_file(const io::SafeTensorsFile& file, const ImportHints& hints = {});

// Loads a model (ours or timm-named). Every expected tensor must be present with the right shape
// and dtype; extra tensors are an error unless known timm extras. Errors name file and tensor.
ViT load_model(const std::filesystem::path& path, const ImportHints& hints = {});
ViT load_model(const io::SafeTensorsFile& file, const ImportHints& hints = {});

// Writes fp32 weights with timm names + metadata, atomically. `extra_metadata` is merged in.
void save_model(ViT& model, const std::filesystem::path& path,
                const std::map<std::string, std::string>& extra_metadata = {});
// Adds the model's tensors (optionally under a name prefix) to a writer (used by checkpoints).
void add_model_tensors(ViT& model, io::SafeTensorsWriter& writer, const std::string& prefix = "");
// Copies tensors named <prefix><timm name> from the file into the model (shapes checked).
void load_model_tensors(ViT& model, const io::SafeTensorsFile& file, const std::string& prefix = "");
// One file tensor as a float32 CPU tensor (F32/F16/BF16/F64 converted), e.g. an input batch.
torch::Tensor read_tensor(const io::SafeTensorsFile& file, const std::string& name);

}  // namespace vitopt::model

namespace vitopt::model {

inline constexpr const char* kClassNamesKey = "vitopt.class_names";  // JSON array of strings

// Class names stored in a model file's metadata (empty if none or the file has none).
std::vector<std::string> class_names_from_file(const std::filesystem::path& path);

}  // namespace vitopt::model
