#include "compress/circuits/eap.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace vitopt::circuits {

std::vector<double> ig_alphas(int steps) {
  if (steps <= 0) return {1.0};
  std::vector<double> a;
  for (int k = 0; k < steps; ++k) a.push_back((k + 0.5) / steps);
  return a;
}

std::vector<double> node_scores(const std::vector<Node>& nodes, const LeafScores& s) {
  auto sum = [](const torch::Tensor& t, int first, int count) {
    return t.slice(0, first, first + count).sum().item<double>();
  };
  std::vector<double> out;
  for (const auto& n : nodes) {
    const auto b = static_cast<size_t>(std::max(n.block, 0));
    double v = 0;
    switch (n.kind) {
      case NodeKind::Embed:
        v = s.embed;
        break;
      case NodeKind::Head:
        v = s.heads[b][n.index].item<double>();
        break;
      case NodeKind::Attn:
        v = s.heads[b].sum().item<double>();
        break;
      case NodeKind::Neurons:
        v = sum(s.neurons[b], n.index, n.count);
        break;
      case NodeKind::Mlp:
        v = s.neurons[b].sum().item<double>();
        break;
      case NodeKind::Block:
        v = (s.heads[b].defined() ? s.heads[b].sum().item<double>() : 0) +
            (s.neurons[b].defined() ? s.neurons[b].sum().item<double>() : 0);
        break;
    }
    out.push_back(v);
  }
  return out;
}

Ranking parse_ranking(const std::string& text) {
  if (text == "global") return Ranking::Global;
  if (text == "per-type") return Ranking::PerType;
  core::throw_input("--rank: expected global or per-type, got '{}'", text);
}

Circuit keep_top(const io::ViTConfig& config, const std::vector<Node>& nodes,
                 const std::vector<double>& scores, double keep_ratio, Ranking ranking) {
  if (!(keep_ratio > 0 && keep_ratio <= 1))
    core::throw_input("--keep-ratio: expected a fraction in (0, 1], got {}", keep_ratio);
  auto k = Circuit::full(config);
  auto drop_lowest = [&](std::vector<size_t> idx) {
    // Highest |score| first; equal scores keep the earlier node.
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return std::abs(scores[a]) > std::abs(scores[b]); });
    const auto keep =
        static_cast<size_t>(std::lround(keep_ratio * static_cast<double>(idx.size())));
    for (size_t i = std::max<size_t>(keep, 1); i < idx.size(); ++i) k.set(nodes[idx[i]], false);
  };
  std::vector<size_t> heads, groups;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].kind == NodeKind::Head) heads.push_back(i);
    if (nodes[i].kind == NodeKind::Neurons) groups.push_back(i);
  }
  if (ranking == Ranking::PerType) {
    if (!heads.empty()) drop_lowest(heads);
    if (!groups.empty()) drop_lowest(groups);
  } else {
    heads.insert(heads.end(), groups.begin(), groups.end());
    if (!heads.empty()) drop_lowest(heads);
  }
  return k;
}

}  // namespace vitopt::circuits
