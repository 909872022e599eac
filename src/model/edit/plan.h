// The structure plan: what every block of a ViT keeps (heads and MLP neurons by index, whole
// sub-blocks), the low-rank ranks it asks for and the block it shares weights with. Plans are
// produced by the compression methods (pruning, circuits, factorization, sharing, search) and
// applied by slim.h / factor.h / share.h. Also the coupling facts every method needs: which Linear
// rows/columns belong to a head, which Linears are prunable, and the gates that emulate a plan.
// Legend: H heads of a block, D head dim, M MLP width, C embed dim.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/vit.h"

namespace vitopt::edit {

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
// Total kept heads / neurons of a plan.
int plan_heads(const StructurePlan& plan);
int plan_neurons(const StructurePlan& plan);

// Per block: heads, kept_heads (original indices), MLP width and skips of a config, as JSON.
nlohmann::json structure_json(const io::ViTConfig& config);

// Throws InputError naming `source` if heads/neurons cannot be removed from this model: blocks
// that share weights (removing a head of one would remove it from the others) or low-rank layers
// (a head is not a set of rows of a factor pair).
void check_structured_supported(const io::ViTConfig& config, const std::string& source);

// The dense Linear layers unstructured pruning works on: blocks.<i>.attn.{qkv,proj} and
// blocks.<i>.mlp.{fc1,fc2} of blocks that own their weights (patch embedding and classifier are
// left dense, as is usual).
std::vector<std::pair<std::string, model::LinearImpl*>> prunable_linears(model::ViT& model);

// Row indices of head h's q, k and v outputs inside qkv (3 * D rows: part*H*D + h*D + [0, D)).
std::vector<int64_t> head_qkv_rows(int head, int heads, int head_dim);
// Column indices of heads `kept` inside proj (h*D + [0, D) each, in the order given).
std::vector<int64_t> head_proj_cols(const std::vector<int>& kept, int head_dim);

// Fills trace gates that make a traced forward compute what the slimmed model computes: 0/1
// head_gates, neuron_gates, and 0 attn/mlp gates for removed sub-blocks. With ablation means set
// in the trace (see ablation.h) removed parts output their mean instead of zero.
void plan_gates(const StructurePlan& plan, const io::ViTConfig& config, model::Trace& trace);

}  // namespace vitopt::edit
