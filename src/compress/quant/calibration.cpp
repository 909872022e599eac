// Input observation through the Linear hooks, predictions, layer weights.
#include "compress/quant/calibration.h"

#include "core/error.h"
#include "model/quantized_model.h"

namespace vitopt::quant {

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
  using Hook = std::function<torch::Tensor(const torch::Tensor&)>;
  std::vector<std::pair<Hook*, Hook>> saved;
  uint64_t k = 1;
  // Observe, then run the previous hook (if any).
  auto wrap = [&](const std::string& unit, Hook& hook) {
    auto [it, inserted] = obs.emplace(unit, ActivationObserver(max_rows, seed + k++));
    auto* o = &it->second;
    Hook old = hook;
    saved.emplace_back(&hook, old);
    hook = [o, old](const torch::Tensor& x) {
      o->observe(x);
      return old ? old(x) : x;
    };
  };
  for (const auto& item : model->named_modules("", false)) {
    auto* lin = item.value()->as<model::LinearImpl>();
    if (lin == nullptr) continue;
    wrap(item.key(), lin->input_transform);
    if (lin->rank > 0) wrap(item.key() + ".weight_u", lin->mid_transform);  // (.., r) between factors
  }
  predict(model, images, batch_size);
  model->patch_input_transform = old_patch;
  for (auto& [hook, old] : saved) *hook = old;
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
    if (!blk.attn) continue;
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
  const std::string u = ".weight_u";
  const bool second = name.size() > u.size() && name.compare(name.size() - u.size(), u.size(), u) == 0;
  const std::string lname = second ? name.substr(0, name.size() - u.size()) : name;
  auto mods = model->named_modules("", false);
  const auto* found = mods.find(lname);
  auto* lin = found ? (*found)->as<model::LinearImpl>() : nullptr;
  if (lin == nullptr || (second && lin->rank == 0))
    core::throw_internal("linear_weight: no quantizable unit '{}'", name);
  if (lin->rank > 0) return second ? lin->weight_u : lin->weight_v;  // (out, r) or (r, in)
  return lin->weight;
}

}  // namespace vitopt::quant
