// Structure plans: the full plan of a config, counts, the JSON view of a structure, the checks
// that say when a plan cannot be applied, coupling indices, and the gates that emulate a plan.
#include "model/edit/plan.h"

#include <fmt/format.h>

#include <numeric>

#include "core/error.h"

namespace vitopt::edit {

StructurePlan full_plan(const io::ViTConfig& c) {
  StructurePlan plan(c.depth);
  for (int b = 0; b < c.depth; ++b) {
    const auto& bc = c.blocks.at(b);
    plan[b].attn = !bc.skip_attn;
    plan[b].mlp = !bc.skip_mlp;
    if (plan[b].attn) {
      plan[b].heads.resize(c.block_heads(b));
      std::iota(plan[b].heads.begin(), plan[b].heads.end(), 0);
    }
    if (plan[b].mlp) {
      plan[b].neurons.resize(c.block_mlp(b));
      std::iota(plan[b].neurons.begin(), plan[b].neurons.end(), 0);
    }
  }
  return plan;
}

int plan_heads(const StructurePlan& plan) {
  int n = 0;
  for (const auto& bp : plan) n += bp.attn ? static_cast<int>(bp.heads.size()) : 0;
  return n;
}

int plan_neurons(const StructurePlan& plan) {
  int n = 0;
  for (const auto& bp : plan) n += bp.mlp ? static_cast<int>(bp.neurons.size()) : 0;
  return n;
}

nlohmann::json structure_json(const io::ViTConfig& c) {
  auto j = nlohmann::json::array();
  for (int b = 0; b < c.depth; ++b) {
    const auto& bc = c.blocks[b];
    j.push_back({{"block", b},
                 {"heads", bc.skip_attn ? 0 : c.block_heads(b)},
                 {"kept_heads", bc.kept_heads},
                 {"mlp_dim", bc.skip_mlp ? 0 : c.block_mlp(b)},
                 {"skip_attn", bc.skip_attn},
                 {"skip_mlp", bc.skip_mlp}});
  }
  return j;
}

void check_structured_supported(const io::ViTConfig& c, const std::string& source) {
  for (int b = 0; b < c.depth; ++b) {
    const auto& bc = c.blocks.at(b);
    if (bc.shares())
      core::throw_input(
          "{}: block {} shares the {} weights of block {}; structured pruning needs "
          "blocks with their own weights (prune first, then share)",
          source, b, bc.attn_shared_with >= 0 ? "attention" : "MLP",
          bc.attn_shared_with >= 0 ? bc.attn_shared_with : bc.mlp_shared_with);
    if (bc.qkv_rank || bc.proj_rank || bc.fc1_rank || bc.fc2_rank)
      core::throw_input("{}: block {} has low-rank layers; structured pruning needs dense layers "
                        "(prune first, then factorize)",
                        source, b);
  }
}

std::vector<std::pair<std::string, model::LinearImpl*>> prunable_linears(model::ViT& model) {
  std::vector<std::pair<std::string, model::LinearImpl*>> out;
  const auto& c = model->config();
  for (int b = 0; b < c.depth; ++b) {
    auto& blk = model->block(b);
    const std::string p = fmt::format("blocks.{}.", b);
    // A shared Linear's weights are pruned through the owning block.
    auto add = [&](const std::string& name, model::Linear& lin) {
      if (lin && lin->rank == 0 && !lin->shares_weights()) out.emplace_back(p + name, lin.get());
    };
    if (blk.attn) {
      add("attn.qkv", blk.attn->qkv);
      add("attn.proj", blk.attn->proj);
    }
    if (blk.mlp) {
      add("mlp.fc1", blk.mlp->fc1);
      add("mlp.fc2", blk.mlp->fc2);
    }
  }
  return out;
}

std::vector<int64_t> head_qkv_rows(int head, int heads, int head_dim) {
  std::vector<int64_t> rows;
  rows.reserve(3 * head_dim);
  for (int part = 0; part < 3; ++part)  // q, k, v
    for (int d = 0; d < head_dim; ++d)
      rows.push_back(static_cast<int64_t>(part) * heads * head_dim + head * head_dim + d);
  return rows;
}

std::vector<int64_t> head_proj_cols(const std::vector<int>& kept, int head_dim) {
  std::vector<int64_t> cols;
  cols.reserve(kept.size() * head_dim);
  for (int h : kept)
    for (int d = 0; d < head_dim; ++d) cols.push_back(static_cast<int64_t>(h) * head_dim + d);
  return cols;
}

void plan_gates(const StructurePlan& plan, const io::ViTConfig& c, model::Trace& trace) {
  trace.head_gates.assign(c.depth, torch::Tensor());
  trace.neuron_gates.assign(c.depth, torch::Tensor());
  trace.attn_gates.assign(c.depth, torch::Tensor());
  trace.mlp_gates.assign(c.depth, torch::Tensor());
  for (int b = 0; b < c.depth; ++b) {
    const auto& bp = plan.at(b);
    if (!c.blocks[b].skip_attn) {
      auto g = torch::zeros({c.block_heads(b)});  // (H)
      for (int h : bp.heads) g[h] = 1.0;
      trace.head_gates[b] = g;
      // No head left removes the branch (as slimming does), not only its heads' outputs.
      if (!bp.attn || bp.heads.empty()) trace.attn_gates[b] = torch::zeros({});
    }
    if (!c.blocks[b].skip_mlp) {
      auto g = torch::zeros({c.block_mlp(b)});  // (M)
      for (int j : bp.neurons) g[j] = 1.0;
      trace.neuron_gates[b] = g;
      if (!bp.mlp || bp.neurons.empty()) trace.mlp_gates[b] = torch::zeros({});
    }
  }
}

}  // namespace vitopt::edit
