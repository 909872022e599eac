// `vitopt-rt info`: the model file as the runtime sees it (infer/model_summary.h).
#include <fmt/format.h>

#include <iostream>

#include "cli_rt/commands.h"
#include "infer/model_summary.h"

namespace vitopt::cli_rt {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show what the runtime makes of a model file");
  struct Flags {
    RuntimeFlags rt;
    std::string model;
    bool tensors = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--tensors", f->tensors, "Also list every tensor with dtype and shape");
  add_runtime_flags(cmd, f->rt);
  cmd->callback([f] {
    const auto summary = infer::describe_model(f->model, f->rt.options());
    if (f->rt.json)
      std::cout << summary.dump(2) << std::endl;
    else
      fmt::print("{}", infer::describe_model_text(summary, f->tensors));
  });
}

}  // namespace vitopt::cli_rt
