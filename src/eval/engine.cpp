// The engine registry and the LibTorch engine: model::load_model (fp32, slimmed, distilled or
// quantized-as-exact-simulation files alike), eval mode, inference mode, CPU or CUDA.
#include "eval/engine.h"
#include "eval/runtime_engine.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <mutex>

#include "core/error.h"
#include "model/model_file.h"
#include "train/torch_env.h"

namespace vitopt::eval {

namespace {

class TorchEngine : public Engine {
 public:
  TorchEngine(const std::filesystem::path& file, const EngineOptions& o)
      : device_(train::parse_device(o.device)) {
    io::ImportHints hints;
    hints.num_heads = o.import_heads;
    if (!o.import_mean.empty()) hints.mean = o.import_mean;
    if (!o.import_std.empty()) hints.std = o.import_std;
    hints.merge_r = o.merge_r;
    vit_ = model::load_model(file, hints);
    vit_->to(device_);
    vit_->eval();
  }
  std::string name() const override { return "torch"; }
  const io::ViTConfig& config() const override { return vit_->config(); }

  void run(const float* images, int64_t batch, float* logits) override {
    c10::InferenceMode guard;
    const auto& c = vit_->config();
    auto x = torch::from_blob(const_cast<float*>(images),
                              {batch, c.in_channels, c.image_size, c.image_size},
                              torch::kFloat32);  // (B, C, H, W), no copy on CPU
    auto y = vit_->forward(x.to(device_)).to(torch::kCPU, torch::kFloat32).contiguous();  // (B, K)
    std::memcpy(logits, y.data_ptr<float>(), sizeof(float) * static_cast<size_t>(y.numel()));
  }

  std::optional<int64_t> nonzero_params() const override {
    c10::InferenceMode guard;
    int64_t n = 0;
    for (const auto& p : vit_->parameters()) n += p.ne(0).sum().item<int64_t>();
    return n;
  }

  std::optional<int64_t> allocator_peak_bytes(std::string* why) const override {
    if (device_.is_cuda()) {
      if (why != nullptr)
        *why = "CUDA caching-allocator statistics are not read by this build (CPU LibTorch)";
      return std::nullopt;
    }
    if (why != nullptr)
      *why = "LibTorch's CPU allocator keeps no peak statistics (plain malloc); see peak_rss_bytes";
    return std::nullopt;
  }

 private:
  torch::Device device_;
  model::ViT vit_{nullptr};
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, EngineFactory> factories;
  Registry() {
    factories["torch"] = [](const std::filesystem::path& f, const EngineOptions& o) {
      return std::unique_ptr<Engine>(new TorchEngine(f, o));
    };
    factories["runtime"] = make_runtime_engine;
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::optional<int64_t> Engine::allocator_peak_bytes(std::string* why) const {
  if (why != nullptr) *why = "this engine reports no allocator statistics";
  return std::nullopt;
}

void register_engine(const std::string& name, EngineFactory factory) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories[name] = std::move(factory);
}

std::vector<std::string> engine_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

std::unique_ptr<Engine> make_engine(const std::string& name,
                                    const std::filesystem::path& model_file,
                                    const EngineOptions& options) {
  EngineFactory factory;
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    core::throw_input("--engine: expected one of [{}], got '{}'", fmt::join(engine_names(), ", "),
                      name);
  }
  return factory(model_file, options);
}

}  // namespace vitopt::eval
