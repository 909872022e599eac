// `vitopt import`: converts a timm / Hugging Face ViT checkpoint (.safetensors + the config.json
// next to it) into a complete vitopt model file once, so every other command reads it as is.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/file_util.h"
#include "io/checkpoint_convert.h"
#include "io/metadata_keys.h"
#include "io/safetensors.h"

namespace vitopt::cli {

void register_import(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "import", "Convert a timm / Hugging Face ViT checkpoint into a vitopt model file");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::string model, out;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model,
                  "Checkpoint (.safetensors, timm or Hugging Face ViT names)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", f->out, "vitopt model file to write")->required();
  add_checkpoint_flags(cmd, f->import);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    const auto file = io::SafeTensorsFile::load(f->model);
    if (!io::is_foreign_checkpoint(file))
      core::throw_input("{}: already a vitopt model file (metadata '{}'); nothing to import",
                        f->model, io::kConfigKey);
    const auto bytes = io::convert_checkpoint_bytes(file, import_hints(f->import));
    core::write_file_atomic(f->out, bytes.data(), bytes.size());
    const auto converted = io::SafeTensorsFile::parse(bytes, f->out);
    const auto config = nlohmann::json::parse(*converted.metadata_value(io::kConfigKey));
    if (f->common.json) {
      print_json({{"model", f->model}, {"out", f->out}, {"config", config}});
    } else if (!f->common.quiet) {
      fmt::print("wrote {}: {} ({} blocks, dim {}, {} heads, pool {}, {} classes)\n", f->out,
                 config["name"].get<std::string>(), config["depth"].get<int>(),
                 config["embed_dim"].get<int>(), config["num_heads"].get<int>(),
                 config["pool"].get<std::string>(), config["num_classes"].get<int>());
    }
  });
}

}  // namespace vitopt::cli
