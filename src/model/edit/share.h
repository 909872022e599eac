// Weight sharing between blocks: a block with shared_with = j runs block j's modules, so the
// model holds (and the file stores) one copy and gradients of every user accumulate into it.
// Which blocks to group is the share method's policy; this is the edit itself.
#pragma once

#include <vector>

#include "model/vit.h"

namespace vitopt::edit {

enum class ShareInit {
  Owner,  // the group takes the owner's (earliest block's) weights
  Mean,   // the group takes the mean of its members' weights
};

// A new model where block b runs block shared_with[b]'s weights (-1: its own). shared_with has
// one entry per block; an owner must come earlier, own its weights and have the same shapes
// (InputError otherwise). The source model is unchanged.
model::ViT share_blocks(model::ViT& model, const std::vector<int>& shared_with, ShareInit init);

}  // namespace vitopt::edit
