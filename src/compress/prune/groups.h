// Coupling groups (Torch-Pruning's "what is pruned together"): a head is its q/k/v rows plus its
// proj columns, an MLP neuron is its fc1 row + bias plus its fc2 column, a sub-block is the whole
// attention or MLP branch. Also the plan of what is kept, gates that mask a plan in a traced
// forward, and weight-magnitude (L2) scores per group. No ranking policy here (see policy.h).
// Legend: H heads of a block, D head dim, M MLP width, C embed dim.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "model/vit.h"

namespace vitopt::prune {

// What one block keeps, as indices into the *current* model's heads / neurons (ascending).
struct BlockPlan {
  std::vector<int> heads;    // kept heads; empty (or attn false) removes the attention branch
  std::vector<int> neurons;  // kept fc1 outputs; empty (or mlp false) removes the MLP branch
  bool attn = true;          // false: attention sub-block removed (skip_attn)
  bool mlp = true;           // false: MLP sub-block removed (skip_mlp)
};
using StructurePlan = std::vector<BlockPlan>;  // one per block

// Everything kept (skipped sub-blocks of the config stay skipped).
StructurePlan full_plan(const io::ViTConfig& config);
// Total kept heads / neurons / live sub-blocks of a plan.
int plan_heads(const StructurePlan& plan);
int plan_neurons(const StructurePlan& plan);

// Throws InputError if structured pruning cannot edit this model (shared or low-rank blocks).
void check_structured_supported(const io::ViTConfig& config, const std::string& source);

// The dense Linear layers unstructured pruning works on: blocks.<i>.attn.{qkv,proj} and
// blocks.<i>.mlp.{fc1,fc2} (patch embedding and classifier are left dense, as is usual).
std::vector<std::pair<std::string, model::LinearImpl*>> prunable_linears(model::ViT& model);

// Row indices of head h's q, k and v outputs inside qkv (3 * D rows: part*H*D + h*D + [0, D)).
std::vector<int64_t> head_qkv_rows(int head, int heads, int head_dim);

// L2 norm of every head's coupled weights in block b: qkv rows (weight and bias) and proj
// columns. (H). Undefined tensor if the block has no attention.
torch::Tensor head_l2(model::ViT& model, int block);
// L2 norm of every neuron's coupled weights: fc1 row + bias and fc2 column. (M) or undefined.
torch::Tensor neuron_l2(model::ViT& model, int block);
// L2 norm of a whole sub-block's weights {attention, MLP}; -1 when the sub-block is absent.
std::pair<double, double> subblock_l2(model::ViT& model, int block);

// Fills trace gates that make a traced forward compute what the slimmed model computes: 0/1
// head_gates, neuron_gates, and 0 attn/mlp gates for removed sub-blocks.
void plan_gates(const StructurePlan& plan, const io::ViTConfig& config, model::Trace& trace);

}  // namespace vitopt::prune
