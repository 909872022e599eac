// Block weight sharing: the config edit (checked by ViTConfig::normalize) and the owners'
// initial weights (the owner's own, or the mean over the group).
#include "model/edit/share.h"

#include <fmt/format.h>

#include <map>

#include "core/error.h"
#include "model/edit/copy.h"

namespace vitopt::edit {

model::ViT share_blocks(model::ViT& model, const std::vector<int>& shared_with, ShareInit init) {
  auto c = model->config();
  if (static_cast<int>(shared_with.size()) != c.depth)
    core::throw_input("share: {} entries for {} blocks", shared_with.size(), c.depth);
  for (int b = 0; b < c.depth; ++b) {
    const int o = shared_with[b];
    if (o >= b || o < -1 || (o >= 0 && shared_with[o] >= 0))
      core::throw_input("share: block {} cannot share block {} (an owner must be an earlier block "
                        "with its own weights)",
                        b, o);
    c.blocks[b].shared_with = o;
  }
  c.normalize(c.name);  // refuses owners of a different shape
  auto dst = rebuild(model, c);
  if (init == ShareInit::Mean) {
    torch::NoGradGuard no_grad;
    // Per-member sums of the source weights, under the owner's names; rebuild already put the
    // owner's own weights there, so start from those and add the others.
    std::map<int, int> members;  // owner -> group size
    for (int b = 0; b < c.depth; ++b)
      if (shared_with[b] >= 0) ++members[shared_with[b]];
    auto src = model->named_parameters();
    for (auto& item : dst->named_parameters()) {
      for (const auto& [owner, n] : members) {
        const std::string prefix = fmt::format("blocks.{}.", owner);
        if (item.key().rfind(prefix, 0) != 0) continue;
        const std::string rest = item.key().substr(prefix.size());
        auto& t = item.value();
        for (int b = 0; b < c.depth; ++b) {
          if (shared_with[b] != owner) continue;
          // A member that itself shared in the source model reads its own owner's weights.
          const int from = model->config().blocks[b].shared_with >= 0
                               ? model->config().blocks[b].shared_with : b;
          const auto* s = src.find(fmt::format("blocks.{}.{}", from, rest));
          if (s == nullptr || s->sizes() != t.sizes())
            core::throw_input("share: block {} has no '{}' of the owner's shape", b, rest);
          t.add_(*s);
        }
        t.div_(n + 1);
      }
    }
  }
  return dst;
}

}  // namespace vitopt::edit
