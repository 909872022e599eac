// Helpers of the search tests (header-only, LibTorch-free): small base configs and a brute-force
// enumerator of every valid genome of a small space (every base, every input side), the ground
// truth the search is checked by.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "io/presets.h"
#include "io/vit_config.h"
#include "search/space.h"

namespace vitopt::search::testing {

// vit-tiny-test (28x28x1, patch 7: 17 tokens; C 32, MLP 64) with `depth` blocks of `heads` heads.
inline io::ViTConfig tiny_base(int depth = 2, int heads = 2) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.depth = depth;
  c.num_heads = heads;
  c.head_dim = 0;
  c.blocks.clear();
  c.normalize("tiny test config");
  return c;
}

// Every gene combination a block could take that already obeys the per-block rules written in
// space.h (dropped parts keep nothing, fp32 weights take fp32 inputs), share both ways.
inline std::vector<BlockGene> block_candidates(const BlockChoices& ch) {
  std::vector<BlockGene> out;
  for (bool attn : ch.attn)
    for (bool mlp : ch.mlp)
      for (int heads : attn ? ch.heads : std::vector<int>{0})
        for (int mlp_dim : mlp ? ch.mlp_dims : std::vector<int>{0})
          for (double r : ch.rank_ratios)
            for (int w : ch.wbits)
              for (int a : ch.abits)
                for (int m : attn ? ch.merge_r : std::vector<int>{0})
                  for (bool share : {false, true}) {
                    if (w == 32 && a != 32) continue;
                    out.push_back({attn, mlp, heads, mlp_dim, r, w, a, share, m});
                  }
  return out;
}

// Every genome of the space with repair(g) == g (the space's definition of valid), by brute force:
// for each base and each of its input sides, the product of each block's candidates.
inline std::vector<Genome> all_genomes(const Space& space) {
  std::vector<Genome> out;
  for (int k = 0; k < space.num_bases(); ++k) {
    std::vector<std::vector<BlockGene>> cands;
    for (const BlockChoices& ch : space.blocks(k)) cands.push_back(block_candidates(ch));
    for (int side : space.resolutions(k)) {
      Genome g;
      g.student = k;
      g.resolution = side == space.base(k).image_size ? 0 : side;
      g.blocks.resize(cands.size());
      std::function<void(size_t)> walk = [&](size_t b) {
        if (b == cands.size()) {
          if (space.repair(g) == g) out.push_back(g);
          return;
        }
        for (const BlockGene& x : cands[b]) {
          g.blocks[b] = x;
          walk(b + 1);
        }
      };
      walk(0);
    }
  }
  return out;
}

}  // namespace vitopt::search::testing
