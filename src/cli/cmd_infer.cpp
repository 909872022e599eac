// `vitopt infer`: classifies image files with a model file and prints the top-5 classes each,
// with the vitopt runtime (default; fp32 and quantized files) or LibTorch eager (fp32 files).
#include <fmt/format.h>

#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "data/image_decode.h"
#include "data/transforms.h"
#include "train/data_bridge.h"
#include "train/torch_env.h"
#include "vitopt/runtime.h"

namespace vitopt::cli {

void register_infer(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "Classify images (top-5 classes per image)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::string model, engine = "runtime", labels;
    std::vector<std::string> images;
    int top = 5;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("images", f->images, "Image files (PNG, JPEG, BMP)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--engine", f->engine, "Inference engine")->check(CLI::IsMember({"runtime", "torch"}));
  cmd->add_option("--top", f->top, "Classes to show per image")->check(CLI::Range(1, 100));
  cmd->add_option("--class-names", f->labels,
                  "Class names: a dataset name (fashion-mnist, cifar10:DIR, ...) or a text file with one per line (default: those stored in the model file)");
  add_import_flags(cmd, f->import);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    const auto hints = import_hints(f->import);
    const io::ModelHeader header = io::read_model_header(f->model, hints);
    const io::ViTConfig& config = header.config;
    const auto names = f->labels.empty() ? header.class_names : class_names_from(f->labels);
    const auto transform = train::eval_transform(config);
    const int64_t per_image = int64_t{config.in_channels} * config.image_size * config.image_size;
    const auto count = static_cast<int64_t>(f->images.size());
    std::vector<float> buffer(static_cast<size_t>(per_image) * f->images.size());
    std::mt19937_64 rng(0);  // eval transforms draw nothing; required by the signature
    for (size_t i = 0; i < f->images.size(); ++i) {
      const auto image = data::load_image_file(f->images[i], config.in_channels);
      data::apply_transform(image, transform, rng, buffer.data() + i * static_cast<size_t>(per_image));
    }
    torch::Tensor probs;  // (B, classes)
    if (f->engine == "runtime") {
      if (f->common.device != "cpu")
        core::throw_input("--engine runtime runs on the CPU only (got --device {})", f->common.device);
      runtime::RuntimeOptions ro;
      ro.threads = f->common.threads;
      ro.import_heads = hints.num_heads.value_or(0);
      auto engine = runtime::Engine::load(f->model, ro);
      std::vector<float> logits(static_cast<size_t>(count) * static_cast<size_t>(config.num_classes));
      engine->run(buffer.data(), static_cast<int>(count), logits.data());
      probs = torch::softmax(torch::from_blob(logits.data(), {count, config.num_classes}, torch::kFloat32), 1);
    } else {
      train::configure_threads(f->common.threads);
      auto vit = model::load_model(f->model, hints);
      const auto device = train::parse_device(f->common.device);
      vit->to(device);
      vit->eval();
      torch::NoGradGuard no_grad;
      auto x = torch::from_blob(buffer.data(),
                                {count, config.in_channels, config.image_size, config.image_size},
                                torch::kFloat32).to(device);
      probs = torch::softmax(vit->forward(x), 1).to(torch::kCPU);
    }
    const int64_t k = std::min<int64_t>(f->top, probs.size(1));
    auto [values, indices] = probs.topk(k, 1);
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < f->images.size(); ++i) {
      nlohmann::json preds = nlohmann::json::array();
      for (int64_t j = 0; j < k; ++j) {
        const auto cls = indices[static_cast<int64_t>(i)][j].item<int64_t>();
        const auto p = values[static_cast<int64_t>(i)][j].item<double>();
        const std::string name = cls < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(cls)] : "";
        preds.push_back({{"class", cls}, {"name", name}, {"probability", p}});
      }
      out.push_back({{"image", f->images[i]}, {"top", preds}});
    }
    if (f->common.json) {
      print_json(out);
      return;
    }
    for (const auto& rec : out) {
      fmt::print("{}\n", rec["image"].get<std::string>());
      for (const auto& p : rec["top"])
        fmt::print("  {:3}  {:6.2f}%  {}\n", p["class"].get<int64_t>(),
                   100 * p["probability"].get<double>(), p["name"].get<std::string>());
    }
  });
}

}  // namespace vitopt::cli
