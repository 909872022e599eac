#include "compress/circuits/circuit.h"

#include <fmt/format.h>

#include <algorithm>

namespace vitopt::circuits {

const char* kind_name(NodeKind kind) {
  switch (kind) {
    case NodeKind::Embed:
      return "embed";
    case NodeKind::Head:
      return "head";
    case NodeKind::Attn:
      return "attn";
    case NodeKind::Neurons:
      return "neurons";
    case NodeKind::Mlp:
      return "mlp";
    case NodeKind::Block:
      return "block";
  }
  return "?";
}

std::vector<Node> circuit_nodes(const io::ViTConfig& c, int neuron_group) {
  std::vector<Node> nodes{{NodeKind::Embed, -1, 0, 1, "embed"}};
  const int group = std::max(1, neuron_group);
  for (int b = 0; b < c.depth; ++b) {
    const auto& blk = c.blocks[static_cast<size_t>(b)];
    if (!blk.skip_attn) {
      for (int h = 0; h < c.block_heads(b); ++h)
        nodes.push_back({NodeKind::Head, b, h, 1, fmt::format("blocks.{}.attn.head{}", b, h)});
      nodes.push_back({NodeKind::Attn, b, 0, 1, fmt::format("blocks.{}.attn", b)});
    }
    if (!blk.skip_mlp) {
      const int m = c.block_mlp(b);
      for (int first = 0; first < m; first += group) {
        const int n = std::min(group, m - first);
        nodes.push_back({NodeKind::Neurons, b, first, n,
                         fmt::format("blocks.{}.mlp.neurons{}-{}", b, first, first + n - 1)});
      }
      nodes.push_back({NodeKind::Mlp, b, 0, 1, fmt::format("blocks.{}.mlp", b)});
    }
    if (!blk.skip_attn || !blk.skip_mlp)
      nodes.push_back({NodeKind::Block, b, 0, 1, fmt::format("blocks.{}", b)});
  }
  return nodes;
}

Circuit Circuit::full(const io::ViTConfig& c) {
  Circuit k;
  for (int b = 0; b < c.depth; ++b) {
    const auto& blk = c.blocks[static_cast<size_t>(b)];
    k.heads.emplace_back(blk.skip_attn ? 0 : c.block_heads(b), 1);
    k.neurons.emplace_back(blk.skip_mlp ? 0 : c.block_mlp(b), 1);
    k.attn.push_back(!blk.skip_attn);
    k.mlp.push_back(!blk.skip_mlp);
  }
  return k;
}

namespace {
bool any(const std::vector<char>& v) {
  return std::any_of(v.begin(), v.end(), [](char x) { return x != 0; });
}
}  // namespace

bool Circuit::attn_live(int b) const { return attn[b] && any(heads[b]); }
bool Circuit::mlp_live(int b) const { return mlp[b] && any(neurons[b]); }

bool Circuit::kept(const Node& n) const {
  switch (n.kind) {
    case NodeKind::Embed:
      return embed;
    case NodeKind::Head:
      return attn_live(n.block) && heads[n.block][n.index];
    case NodeKind::Attn:
      return attn_live(n.block);
    case NodeKind::Neurons:
      return mlp_live(n.block) && std::any_of(neurons[n.block].begin() + n.index,
                                              neurons[n.block].begin() + n.index + n.count,
                                              [](char x) { return x != 0; });
    case NodeKind::Mlp:
      return mlp_live(n.block);
    case NodeKind::Block:
      return attn_live(n.block) || mlp_live(n.block);
  }
  return true;
}

void Circuit::set(const Node& n, bool keep) {
  const char v = keep ? 1 : 0;
  switch (n.kind) {
    case NodeKind::Embed:
      embed = keep;
      break;
    case NodeKind::Head:
      heads[n.block][n.index] = v;
      break;
    case NodeKind::Attn:
      attn[n.block] = v;
      break;
    case NodeKind::Neurons:
      std::fill(neurons[n.block].begin() + n.index, neurons[n.block].begin() + n.index + n.count,
                v);
      break;
    case NodeKind::Mlp:
      mlp[n.block] = v;
      break;
    case NodeKind::Block:
      attn[n.block] = v && !heads[n.block].empty();
      mlp[n.block] = v && !neurons[n.block].empty();
      break;
  }
}

int Circuit::kept_heads() const {
  int n = 0;
  for (size_t b = 0; b < heads.size(); ++b)
    if (attn_live(static_cast<int>(b)))
      n += static_cast<int>(std::count(heads[b].begin(), heads[b].end(), 1));
  return n;
}

int Circuit::kept_neurons() const {
  int n = 0;
  for (size_t b = 0; b < neurons.size(); ++b)
    if (mlp_live(static_cast<int>(b)))
      n += static_cast<int>(std::count(neurons[b].begin(), neurons[b].end(), 1));
  return n;
}

}  // namespace vitopt::circuits
