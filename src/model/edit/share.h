// Weight sharing between blocks (MiniViT-style): in each group the first block owns the weight
// matrices of the shared branches (attention: qkv, proj; MLP: fc1, fc2) and the other members run
// them, so the model holds (and the file stores) one copy and gradients of every user accumulate
// into it. LayerNorms and biases stay each block's own; an optional per-member low-rank delta
// (delta_rank) restores some of what the member had. Which blocks to group is the share
// method's policy; this is the edit itself.
// Legend: out/in a Linear's output/input width, r the delta rank.
#pragma once

#include <vector>

#include "model/vit.h"

namespace vitopt::edit {

struct ShareGroup {
  std::vector<int> blocks;  // ascending; blocks.front() owns the shared weights
  // The member whose weights the group starts from (-1: the mean of the members' weights).
  int init_from = -1;
};

struct ShareSpec {
  std::vector<ShareGroup> groups;  // disjoint; blocks in no group keep their own weights
  bool attn = true, mlp = true;    // the branches shared
  int delta_rank = 0;              // members' delta on every shared Linear (0: none)
};

// A new model with the spec's sharing. Every member's delta starts as the best rank-r
// approximation (truncated SVD) of the difference between its own weight and the group's; where
// that difference is zero, it starts as LoRA does (delta_u zero, delta_v random). InputError when
// the model already shares weights or a group cannot share (different shapes, skipped branches).
// The source model is unchanged.
model::ViT share_blocks(model::ViT& model, const ShareSpec& spec);

}  // namespace vitopt::edit
