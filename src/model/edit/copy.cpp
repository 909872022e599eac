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

// "blocks.3.attn.qkv.weight" in a model where block 3 shares block 1's weights is found under
// "blocks.1.attn.qkv.weight".
std::string owner_key(const io::ViTConfig& c, const std::string& key) {
  static const std::regex re(R"(^blocks\.(\d+)\.(.*)$)");
  std::smatch m;
  if (!std::regex_match(key, m, re)) return key;
  const int b = std::stoi(m[1]);
  if (b < 0 || b >= c.depth || c.blocks[b].shared_with < 0) return key;
  return fmt::format("blocks.{}.{}", c.blocks[b].shared_with, m[2].str());
}

model::LinearImpl* find_linear(model::ViT& m, const std::string& name) {
  auto mods = m->named_modules("", /*include_self=*/false);
  auto* found = mods.find(name);
  return found ? (*found)->as<model::LinearImpl>() : nullptr;
}

}  // namespace

torch::Tensor plain_weight(const model::LinearImpl& lin) {
  torch::Tensor w = lin.rank > 0 ? lin.weight_u.mm(lin.weight_v) : lin.weight;  // (out, in)
  return lin.mask.defined() ? w * lin.mask : w;
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
    const std::string skey = owner_key(sc, key);
    if (const auto* s = src_params.find(skey); s && s->sizes() == t.sizes()) {
      t.copy_(*s);
      continue;
    }
    const auto dot = skey.rfind('.');
    const std::string module = skey.substr(0, dot), leaf = skey.substr(dot + 1);
    auto* slin = find_linear(src, module);
    auto* dlin = find_linear(dst, key.substr(0, key.rfind('.')));
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
