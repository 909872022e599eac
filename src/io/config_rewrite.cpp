// Copying a model file with a new config (see config_rewrite.h).
#include "io/config_rewrite.h"

#include "core/error.h"
#include "io/metadata_keys.h"
#include "io/model_header.h"
#include "io/tensor_layout.h"

namespace vitopt::io {

void write_with_config(const SafeTensorsFile& file, ViTConfig config,
                       const std::map<std::string, std::string>& extra,
                       const std::filesystem::path& out) {
  const ModelHeader header = read_model_header(file);
  if (header.imported)
    core::throw_input("{}: no vitopt metadata (an imported checkpoint): run `vitopt import` first",
                      file.source());
  config.normalize(file.source());
  // Only tensor-free fields may differ: the tensors the config implies must be the file's.
  const auto before = model_tensors(header.config), after = model_tensors(config);
  if (before.size() != after.size())
    core::throw_internal("write_with_config: the new config changes the tensors of {}", file.source());
  for (size_t i = 0; i < before.size(); ++i)
    if (before[i].name != after[i].name || before[i].shape != after[i].shape)
      core::throw_internal("write_with_config: tensor {} changes in {}", before[i].name, file.source());
  SafeTensorsWriter w;
  for (const auto& name : file.names()) {
    const TensorInfo& t = file.info(name);
    w.add(name, t.dtype, t.shape, file.data(name), t.nbytes);
  }
  for (const auto& [k, v] : file.metadata()) w.set_metadata(k, v);
  for (const auto& [k, v] : extra) w.set_metadata(k, v);
  w.set_metadata(kConfigKey, config.to_json().dump());
  w.write(out);
}

}  // namespace vitopt::io
