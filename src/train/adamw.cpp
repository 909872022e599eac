#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace vitopt::train {

bool is_no_decay(const std::string& name, const torch::Tensor& param) {
  if (param.dim() <= 1) return true;  // biases and LayerNorm weights
  return name.find("cls_token") != std::string::npos ||
         name.find("dist_token") != std::string::npos ||
         name.find("reg_token") != std::string::npos || name.find("pos_embed") != std::string::npos;
}

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options)
    : options_(options) {
  for (auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p), !is_no_decay(name, p)});
  }
}

void AdamW::zero_grad() {
  for (auto& s : slots_) {
    auto& g = s.param.mutable_grad();
    if (g.defined()) g.zero_();
  }
}

void AdamW::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step_));
  const double step_size = options_.lr / bc1;
  const double sqrt_bc2 = std::sqrt(bc2);
  for (auto& s : slots_) {
    const auto& g = s.param.grad();
    if (!g.defined()) continue;
    if (s.decay && options_.weight_decay != 0) s.param.mul_(1.0 - options_.lr * options_.weight_decay);
    s.m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    s.v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    // p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)   (PyTorch's formulation, bit for bit)
    auto denom = (s.v.sqrt() / sqrt_bc2).add_(options_.eps);
    s.param.addcdiv_(s.m, denom, -step_size);
  }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : slots_) {
    out["m." + s.name] = s.m;
    out["v." + s.name] = s.v;
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, int64_t step,
                       const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    for (auto* pair : {&s.m, &s.v}) {
      const std::string key = (pair == &s.m ? "m." : "v.") + s.name;
      auto it = state.find(key);
      if (it == state.end()) core::throw_input("{}: optimizer state '{}' missing", source, key);
      if (!it->second.sizes().equals(pair->sizes()))
        core::throw_input("{}: optimizer state '{}': expected shape {}, got {}", source, key,
                          c10::str(pair->sizes()), c10::str(it->second.sizes()));
      pair->copy_(it->second);
    }
  }
  step_ = step;
}

double warmup_cosine_lr(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr,
                        double min_lr) {
  if (warmup_steps > 0 && step < warmup_steps)
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const int64_t decay_steps = std::max<int64_t>(total_steps - warmup_steps, 1);
  const double t = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * t));
}

}  // namespace vitopt::train
