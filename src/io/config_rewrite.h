// A model file with only its config changed: every tensor's bytes copied as they are (fp32 or
// quantized codes alike), the other metadata kept, the config replaced. For settings that change
// no tensor, such as token merging (`vitopt merge` without fine-tuning): the result is exact.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "io/safetensors.h"
#include "io/vit_config.h"

namespace vitopt::io {

// Writes `out` atomically. `config` must describe the same tensors as the file's (the caller
// changes only tensor-free fields); it is normalized and written under vitopt.config, `extra`
// metadata is added. InputError for a file without vitopt metadata (an imported checkpoint:
// `vitopt import` it first, its tensor names may not be vitopt's).
void write_with_config(const SafeTensorsFile& file, ViTConfig config,
                       const std::map<std::string, std::string>& extra,
                       const std::filesystem::path& out);

}  // namespace vitopt::io
