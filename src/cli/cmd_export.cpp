// `vitopt export`: writes a model file in another format for other runtimes. Today: ONNX
// (`--format onnx`, opset 17 or 21), fp32 and quantized (QDQ) models alike. ONNX support is
// optional at build time (VITOPT_HAVE_ONNX, src/export/CMakeLists.txt): without it the command
// exists and says how to get it.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#ifdef VITOPT_HAVE_ONNX
#include "export/onnx_export.h"
#endif

namespace vitopt::cli {

#ifndef VITOPT_HAVE_ONNX
void register_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "Export a model file for other runtimes (ONNX: not in this build)");
  cmd->allow_extras();
  cmd->callback([] {
    core::throw_input(
        "vitopt export: this vitopt was built without ONNX support (libonnx-dev / libprotobuf-dev "
        "were not found when it was configured); install them (scripts/install-deps.sh) and "
        "re-run cmake");
  });
}
#else
void register_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export a model file for other runtimes (ONNX)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::string model, format = "onnx", out;
    int opset = 17;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file (vitopt .safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--format", f->format, "Output format")->check(CLI::IsMember({"onnx"}));
  cmd->add_option("--opset", f->opset,
                  "ONNX opset: 17 (widest support) or 21 (packed INT4/INT16 weight codes)")
      ->check(CLI::IsMember({17, 21}));
  cmd->add_option("--out,-o", f->out, "Output file (.onnx)")->required();
  add_output_flags(cmd, f->common);
  add_checkpoint_flags(cmd, f->import);
  cmd->callback([f] {
    f->model = model_path_for_job(f->model, f->import);
    exporter::OnnxExportOptions options;
    options.opset = f->opset;
    const auto s = exporter::export_onnx(f->model, options, f->out);
    if (f->common.json) {
      print_json({{"model", f->model},
                  {"out", f->out},
                  {"format", f->format},
                  {"opset", s.opset},
                  {"ir_version", s.ir_version},
                  {"precision", s.precision},
                  {"nodes", s.nodes},
                  {"initializers", s.initializers},
                  {"bytes", s.bytes},
                  {"notes", s.notes}});
      return;
    }
    if (f->common.quiet) return;
    fmt::print(
        "wrote {} (ONNX opset {}, {} model, {} nodes, {:.2f} MB), checked by the ONNX checker\n",
        f->out, s.opset, s.precision, s.nodes, static_cast<double>(s.bytes) / 1e6);
    for (const auto& note : s.notes) fmt::print("  {}\n", note);
  });
}
#endif  // VITOPT_HAVE_ONNX

}  // namespace vitopt::cli
