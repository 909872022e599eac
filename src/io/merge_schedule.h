// Token-merging schedules as users write them (`--merge-r`, the recipe's `merge:` stage) and
// their application to a config. A spec is one of
//   "8"            every block merges 8 tokens,
//   "16,16,8,...", one value per block (exactly depth values),
//   "decreasing:8" (or "decreasing", meaning decreasing:8) the same total as a constant 8 but
//                  front-loaded, r_b = round(2 R (depth - b) / (depth + 1)): early blocks, where
//                  most tokens are still redundant patches, merge most;
//   "0" / "off"    no merging.
// Each block's effective r is then capped by ViTConfig::merge_at (half the mergeable tokens).
#pragma once

#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::io {

// Per-block r (depth entries). Throws InputError naming `source` (e.g. "--merge-r") and the
// expected form on anything else.
std::vector<int> parse_merge_schedule(const std::string& spec, int depth, const std::string& source);

// Sets blocks[b].merge_r (the config must be normalized: blocks has depth entries).
void set_merge_schedule(ViTConfig& c, const std::vector<int>& merge_r);

// The stored per-block r (depth entries).
std::vector<int> merge_schedule(const ViTConfig& c);

}  // namespace vitopt::io
