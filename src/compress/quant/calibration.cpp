// Calibration images, input observation through the Linear hooks, and model copies.
#include "compress/quant/calibration.h"

#include "core/error.h"
#include "data/loader.h"
#include "model/quantized_model.h"
#include "train/data_bridge.h"

namespace vitopt::quant {

torch::Tensor load_calibration_images(const std::string& data, const io::ViTConfig& config,
                                      size_t count, uint64_t seed, torch::Tensor* labels) {
  if (count == 0) core::throw_input("--calib-images: expected >= 1, got 0");
  auto ds = train::open_dataset_for(data, config, data::Split::Train, count, seed);
  train::check_dataset_fits(*ds, config);
  if (ds->size() < count) {
    core::throw_input("--calib-images: {} has only {} images, {} asked for", ds->description(),
                      ds->size(), count);
  }
  data::LoaderOptions lopts;
  lopts.batch_size = 256;
  lopts.workers = 1;
  lopts.transform = train::eval_transform(config);
  data::DataLoader loader(ds, lopts);
  std::vector<torch::Tensor> parts, label_parts;
  data::Batch batch;
  while (loader.next(batch)) {
    parts.push_back(train::batch_images(batch, torch::kCPU).clone());
    label_parts.push_back(train::batch_labels(batch, torch::kCPU).clone());
  }
  if (labels != nullptr) *labels = torch::cat(label_parts, 0);  // (count)
  return torch::cat(parts, 0);                                  // (count, C, H, W)
}

std::map<std::string, ActivationObserver> observe_linear_inputs(model::ViT& model,
                                                                const torch::Tensor& images,
                                                                int64_t batch_size,
                                                                int64_t max_rows, uint64_t seed) {
  std::map<std::string, ActivationObserver> obs;
  // Wrap every hook: observe, then run the previous hook (if any).
  const int patch = model->config().patch_size;
  auto old_patch = model->patch_input_transform;
  obs.emplace("patch_embed.proj", ActivationObserver(max_rows, seed));
  auto* patch_obs = &obs.at("patch_embed.proj");
  model->patch_input_transform = [patch_obs, old_patch, patch](const torch::Tensor& x) {
    const int64_t B = x.size(0), C = x.size(1), g = x.size(2) / patch;
    // (B, C, H, W) -> (B, g*g, C*P*P): the rows the patch-embedding Linear sees.
    patch_obs->observe(x.reshape({B, C, g, patch, g, patch})
                           .permute({0, 2, 4, 1, 3, 5})
                           .reshape({B, g * g, C * patch * patch}));
    return old_patch ? old_patch(x) : x;
  };
  std::vector<std::pair<model::LinearImpl*, std::function<torch::Tensor(const torch::Tensor&)>>>
      saved;
  uint64_t k = 1;
  for (const auto& item : model->named_modules("", false)) {
    auto* lin = item.value()->as<model::LinearImpl>();
    if (lin == nullptr || lin->rank > 0) continue;
    auto [it, inserted] = obs.emplace(item.key(), ActivationObserver(max_rows, seed + k++));
    auto* o = &it->second;
    auto old = lin->input_transform;
    saved.emplace_back(lin, old);
    lin->input_transform = [o, old](const torch::Tensor& x) {
      o->observe(x);
      return old ? old(x) : x;
    };
  }
  predict(model, images, batch_size);
  model->patch_input_transform = old_patch;
  for (auto& [lin, old] : saved) lin->input_transform = old;
  return obs;
}

std::map<int, std::array<ActivationObserver, 3>> observe_attention_inputs(
    model::ViT& model, const torch::Tensor& images, int64_t batch_size, int64_t max_rows,
    uint64_t seed) {
  using Hook = std::function<torch::Tensor(const torch::Tensor&)>;
  std::map<int, std::array<ActivationObserver, 3>> obs;
  std::vector<std::pair<Hook*, Hook>> saved;  // every hook replaced, to restore afterwards
  for (int i = 0; i < model->config().depth; ++i) {
    auto& blk = model->block(i);
    if (!blk.attn || blk.shared_with >= 0) continue;
    const uint64_t s = seed + 1000 + 3 * static_cast<uint64_t>(i);
    auto [it, inserted] = obs.emplace(
        i, std::array<ActivationObserver, 3>{ActivationObserver(max_rows, s),
                                             ActivationObserver(max_rows, s + 1),
                                             ActivationObserver(max_rows, s + 2)});
    auto& at = *blk.attn;
    Hook* hooks[3] = {&at.q_transform, &at.k_transform, &at.v_transform};
    for (int j = 0; j < 3; ++j) {
      auto* o = &it->second[j];
      Hook old = *hooks[j];
      saved.emplace_back(hooks[j], old);
      *hooks[j] = [o, old](const torch::Tensor& x) {
        o->observe(x);  // (B, H, N, D): rows of D
        return old ? old(x) : x;
      };
    }
  }
  predict(model, images, batch_size);
  for (auto& [hook, old] : saved) *hook = old;
  return obs;
}

model::ViT copy_model(model::ViT& src) {
  model::ViT dst(src->config());
  torch::NoGradGuard no_grad;
  auto dst_params = dst->named_parameters();
  for (const auto& item : src->named_parameters()) dst_params[item.key()].copy_(item.value());
  auto dst_buffers = dst->named_buffers();
  for (const auto& item : src->named_buffers()) {
    if (auto* t = dst_buffers.find(item.key())) {
      t->copy_(item.value());
    } else {
      // Buffers created after construction (pruning masks): re-register through set_mask.
      const auto dot = item.key().rfind('.');
      auto mod = dst->named_modules("", false)[item.key().substr(0, dot)];
      if (auto* lin = mod->as<model::LinearImpl>(); lin && item.key().substr(dot + 1) == "mask") {
        lin->set_mask(item.value());
      }
    }
  }
  return dst;
}

torch::Tensor predict(model::ViT& model, const torch::Tensor& images, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    out.push_back(model->forward(images.slice(0, i, std::min(i + batch_size, images.size(0)))));
  }
  model->train(was_training);
  return torch::cat(out, 0);
}

torch::Tensor linear_weight(model::ViT& model, const std::string& name) {
  if (name == "patch_embed.proj") {
    auto w = model->patch_embed_proj->weight;
    return w.reshape({w.size(0), -1});  // (C, in_ch*P*P)
  }
  auto mod = model->named_modules("", false)[name];
  auto* lin = mod->as<model::LinearImpl>();
  if (lin == nullptr || lin->rank > 0)
    core::throw_internal("linear_weight: '{}' is not a dense Linear", name);
  return lin->weight;
}

}  // namespace vitopt::quant
