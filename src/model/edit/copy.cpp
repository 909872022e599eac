// Weight transfer by name between a model and a model of an edited config (copy, new ranks, new
// sharing). Names are timm's; a sharing block's weights are found under its owner's names.
#include "model/edit/copy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <regex>

#include "core/error.h"
#include "model/edit/factor.h"

namespace vitopt::edit {
namespace {

model::LinearImpl* find_linear(model::ViT& m, const std::string& name) {
  auto mods = m->named_modules("", /*include_self=*/false);
  auto* found = mods.find(name);
  return found ? (*found)->as<model::LinearImpl>() : nullptr;
}

}  // namespace

torch::Tensor plain_weight(const model::LinearImpl& lin) {
  torch::Tensor w = lin.rank > 0 ? lin.weight_u.mm(lin.weight_v) : lin.weight;  // (out, in)
  if (lin.mask.defined()) w = w * lin.mask;
  return lin.delta_u.defined() ? w + lin.delta_u.mm(lin.delta_v) : w;
}

model::ViT rebuild(model::ViT& src, const io::ViTConfig& config) {
  model::ViT dst(config);
  torch::NoGradGuard no_grad;
  const auto& sc = src->config();
  auto src_params = src->named_parameters();
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> factors;  // by Linear name
  for (auto& item : dst->named_parameters()) {
    const std::string& key = item.key();
    auto& t = item.value();
    if (const auto* s = src_params.find(key); s && s->sizes() == t.sizes()) {
      t.copy_(*s);
      continue;
    }
    // Not a parameter of the source: a Linear whose rank or sharing changed. A source Linear that
    // shared its weights gives what it multiplied by (the owner's weights plus its delta).
    const auto dot = key.rfind('.');
    const std::string module = key.substr(0, dot), leaf = key.substr(dot + 1);
    auto* slin = find_linear(src, module);
    auto* dlin = find_linear(dst, module);
    if (slin && dlin && (leaf == "weight" || leaf == "weight_u" || leaf == "weight_v")) {
      const auto w = plain_weight(*slin);  // (out, in)
      if (leaf == "weight") {
        t.copy_(w);
      } else {
        auto it = factors.find(module);
        if (it == factors.end()) it = factors.emplace(module, low_rank_factors(w, dlin->rank)).first;
        t.copy_(leaf == "weight_u" ? it->second.first : it->second.second);
      }
      continue;
    }
    // A delta the source lacks (sharing just introduced) keeps its initial value: delta_u is
    // zero, so the Linear multiplies by its owner's weights; the share edit sets it.
    if (dlin && dlin->shares_weights() && (leaf == "delta_u" || leaf == "delta_v")) continue;
    core::throw_internal("rebuild: no source for '{}' [{}] in model '{}'", key,
                         fmt::join(t.sizes(), ", "), sc.name);
  }
  // Pruning masks stay with the dense Linears that still exist.
  for (const auto& item : src->named_buffers()) {
    const auto dot = item.key().rfind('.');
    if (item.key().substr(dot + 1) != "mask") continue;
    auto* dlin = find_linear(dst, item.key().substr(0, dot));
    if (dlin && dlin->rank == 0 && dlin->weight.sizes() == item.value().sizes())
      dlin->set_mask(item.value());
  }
  dst->train(src->is_training());
  return dst;
}

model::ViT copy_model(model::ViT& model) { return rebuild(model, model->config()); }

}  // namespace vitopt::edit
