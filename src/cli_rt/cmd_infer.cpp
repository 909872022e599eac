// `vitopt-rt infer`: top-k classes of image files (infer/classify.h); the same output as
// `vitopt infer --engine runtime`.
#include <fmt/format.h>

#include <iostream>

#include "cli_rt/commands.h"
#include "infer/classify.h"

namespace vitopt::cli_rt {

void register_infer(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "Classify images (top-5 classes per image)");
  struct Flags {
    RuntimeFlags rt;
    infer::InferOptions infer;
    std::string model;
    std::vector<std::string> images;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("images", f->images, "Image files (PNG, JPEG, BMP)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--top", f->infer.top, "Classes to show per image")->check(CLI::Range(1, 100));
  cmd->add_option("--class-names", f->infer.class_names,
                  "Class names: a dataset name (fashion-mnist, cifar10:DIR, ...) or a text file "
                  "with one per line (default: those stored in the model file)");
  cmd->add_option("--mean", f->infer.mean, "Override the model's input mean (one per channel)");
  cmd->add_option("--std", f->infer.std, "Override the model's input std (one per channel)");
  add_runtime_flags(cmd, f->rt);
  cmd->callback([f] {
    auto engine = runtime::Engine::load(f->model, f->rt.options());
    const auto predictions = infer::classify_files(*engine, f->images, f->infer);
    if (f->rt.json)
      std::cout << infer::predictions_json(predictions).dump(2) << std::endl;
    else
      fmt::print("{}", infer::predictions_text(predictions));
  });
}

}  // namespace vitopt::cli_rt
