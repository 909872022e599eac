// Single-technique genomes (see single_techniques.h).
#include "search/single_techniques.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace vitopt::search {
namespace {

template <typename T>
bool contains(const std::vector<T>& v, T x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

std::vector<TechniqueGenome> single_technique_genomes(const Space& space) {
  std::vector<TechniqueGenome> out;
  std::set<std::string> seen;
  const Genome full = space.largest();
  auto add = [&](const std::string& tech, const std::string& setting, Genome g) {
    g = space.repair(std::move(g));
    if (g == full || !seen.insert(tech + "/" + g.key()).second) return;
    out.push_back({tech, setting, std::move(g)});
  };
  const auto& base = space.base();
  for (double keep : {0.75, 0.5, 0.25}) {
    Genome g = full;
    for (size_t b = 0; b < g.blocks.size(); ++b) {
      // Fractions of the base widths; repair (in add) snaps them to the block's nearest choices.
      auto& gene = g.blocks[b];
      if (gene.attn)
        gene.heads = static_cast<int>(std::lround(keep * base.block_heads(static_cast<int>(b))));
      if (gene.mlp)
        gene.mlp_dim = static_cast<int>(std::lround(keep * base.block_mlp(static_cast<int>(b))));
    }
    add("prune", fmt::format("{:.0f}%", 100 * (1 - keep)), g);
  }
  const auto& ch0 = space.blocks().front();
  for (int w : ch0.wbits) {
    if (w >= 32) continue;
    for (int a : ch0.abits) {
      Genome g = full;
      for (auto& gene : g.blocks) {
        gene.wbits = w;
        gene.abits = a;
      }
      add("quantize", a >= 32 ? fmt::format("w{}", w) : fmt::format("w{}a{}", w, a), g);
    }
  }
  for (double r : ch0.rank_ratios) {
    if (r >= 1.0) continue;
    Genome g = full;
    for (auto& gene : g.blocks) gene.rank_ratio = r;
    add("factorize", fmt::format("rank {:g}", r), g);
  }
  for (int r : ch0.merge_r) {
    if (r == 0) continue;
    Genome g = full;
    for (size_t b = 0; b < g.blocks.size(); ++b)
      if (contains(space.blocks()[b].merge_r, r)) g.blocks[b].merge_r = r;
    add("merge", fmt::format("r {}", r), g);
  }
  return out;
}

}  // namespace vitopt::search
