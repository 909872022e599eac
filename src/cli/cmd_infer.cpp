// `vitopt infer`: classifies image files with a model file and prints the top-5 classes each,
// with the vitopt runtime (default; fp32 and quantized files) or LibTorch eager (fp32 files).
// The runtime path is src/infer's, the same as `vitopt-rt infer`: no LibTorch call on it.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "infer/classify.h"
#include "io/model_header.h"
#include "train/data_bridge.h"
#include "train/torch_env.h"
#include "vitopt/runtime.h"

namespace vitopt::cli {
namespace {

// LibTorch eager: the model's config (with import hints for timm files), same preprocessing and
// top-k as the runtime path; only the forward pass differs.
std::vector<infer::ImagePrediction> classify_with_torch(const std::string& model_file,
                                                        const std::vector<std::string>& images,
                                                        const infer::InferOptions& options,
                                                        const io::ImportHints& hints,
                                                        const CommonFlags& common) {
  const io::ModelHeader header = io::read_model_header(model_file, hints);
  const io::ViTConfig& config = header.config;
  const auto buffer = infer::preprocess_files(images, train::eval_transform(config));
  train::configure_threads(common.threads);
  auto vit = model::load_model(model_file, hints);
  const auto device = train::parse_device(common.device);
  vit->to(device);
  vit->eval();
  torch::NoGradGuard no_grad;
  const auto count = static_cast<int64_t>(images.size());
  auto x = torch::from_blob(const_cast<float*>(buffer.data()),
                            {count, config.in_channels, config.image_size, config.image_size},
                            torch::kFloat32)
               .to(device);
  const torch::Tensor logits = vit->forward(x).to(torch::kCPU).contiguous();  // (B, K)
  const std::vector<float> flat(logits.data_ptr<float>(),
                                logits.data_ptr<float>() + logits.numel());
  return infer::predictions_for(images, flat, config.num_classes, options, header.class_names);
}

}  // namespace

void register_infer(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "Classify images (top-5 classes per image)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    infer::InferOptions infer;
    std::string model, engine = "runtime";
    std::vector<std::string> images;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("images", f->images, "Image files (PNG, JPEG, BMP)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--engine", f->engine, "Inference engine")->check(CLI::IsMember({"runtime", "torch"}));
  cmd->add_option("--top", f->infer.top, "Classes to show per image")->check(CLI::Range(1, 100));
  cmd->add_option("--class-names", f->infer.class_names,
                  "Class names: a dataset name (fashion-mnist, cifar10:DIR, ...) or a text file "
                  "with one per line (default: those stored in the model file)");
  add_import_flags(cmd, f->import);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    const auto hints = import_hints(f->import);
    f->infer.mean = f->import.mean;
    f->infer.std = f->import.std;
    std::vector<infer::ImagePrediction> predictions;
    if (f->engine == "runtime") {
      if (f->common.device != "cpu")
        core::throw_input("--engine runtime runs on the CPU only (got --device {})", f->common.device);
      runtime::RuntimeOptions ro;
      ro.threads = f->common.threads;
      ro.import_heads = hints.num_heads.value_or(0);
      ro.merge_r = hints.merge_r.value_or("");
      auto engine = runtime::Engine::load(f->model, ro);
      predictions = infer::classify_files(*engine, f->images, f->infer);
    } else {
      predictions = classify_with_torch(f->model, f->images, f->infer, hints, f->common);
    }
    if (f->common.json)
      print_json(infer::predictions_json(predictions));
    else
      fmt::print("{}", infer::predictions_text(predictions));
  });
}

}  // namespace vitopt::cli
