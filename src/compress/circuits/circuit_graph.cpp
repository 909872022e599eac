#include "compress/circuits/circuit_graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace vitopt::circuits {
namespace {

std::string quoted(const std::string& path) {
  std::string out = "'";
  for (char ch : path) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string dot_id(const Node& n) {
  std::string id = n.name;
  std::replace(id.begin(), id.end(), '.', '_');
  std::replace(id.begin(), id.end(), '-', '_');
  return id;
}

}  // namespace

nlohmann::json circuit_json(const std::vector<Node>& nodes, const Circuit& k,
                            const std::vector<double>& scores) {
  nlohmann::json j;
  j["nodes"] = nlohmann::json::array();
  j["removed"] = nlohmann::json::array();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    nlohmann::json e = {{"name", n.name}, {"kind", kind_name(n.kind)}, {"kept", k.kept(n)}};
    if (n.block >= 0) e["block"] = n.block;
    if (n.kind == NodeKind::Head) e["head"] = n.index;
    if (n.kind == NodeKind::Neurons) e["neurons"] = {n.index, n.index + n.count};
    if (!scores.empty()) e["score"] = scores[i];
    j["nodes"].push_back(e);
    if (!k.kept(n)) j["removed"].push_back(n.name);
  }
  j["kept_heads"] = k.kept_heads();
  j["kept_neurons"] = k.kept_neurons();
  j["embed_kept"] = k.embed;
  return j;
}

std::string circuit_dot(const io::ViTConfig& c, const std::vector<Node>& nodes, const Circuit& k,
                        const std::vector<double>& scores, const std::string& title) {
  double top = 0;
  for (double s : scores) top = std::max(top, std::abs(s));
  auto width = [&](size_t i) {
    if (scores.empty() || top <= 0) return 1.0;
    return 0.5 + 3.5 * std::abs(scores[i]) / top;
  };
  std::string out = fmt::format(
      "digraph circuit {{\n  label=\"{}\";\n  labelloc=t;\n  rankdir=TB;\n  "
      "node [fontname=\"Helvetica\", fontsize=10];\n",
      title);
  auto style = [&](const Node& n) {
    return k.kept(n) ? std::string("style=filled, fillcolor=\"#cfe3ff\"")
                     : std::string("style=dashed, color=gray60, fontcolor=gray60");
  };
  // Writers of the residual stream so far (node index), and the readers block by block.
  std::vector<size_t> writers;
  out += fmt::format("  embed [shape=box, {}];\n", style(nodes[0]));
  if (k.embed) writers.push_back(0);
  std::string spine = "embed";
  for (int b = 0; b < c.depth; ++b) {
    std::vector<size_t> heads;
    size_t mlp = nodes.size(), groups = 0, kept_groups = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].block != b) continue;
      if (nodes[i].kind == NodeKind::Head) heads.push_back(i);
      if (nodes[i].kind == NodeKind::Mlp) mlp = i;
      if (nodes[i].kind == NodeKind::Neurons) {
        ++groups;
        kept_groups += k.kept(nodes[i]);
      }
    }
    out +=
        fmt::format("  subgraph cluster_{} {{\n    label=\"block {}\";\n    color=gray80;\n", b, b);
    for (size_t i : heads)
      out += fmt::format("    {} [label=\"h{}\", shape=ellipse, {}];\n", dot_id(nodes[i]),
                         nodes[i].index, style(nodes[i]));
    if (mlp < nodes.size())
      out += fmt::format("    {} [label=\"MLP {}/{} groups\", shape=box, {}];\n",
                         dot_id(nodes[mlp]), kept_groups, groups, style(nodes[mlp]));
    out += "  }\n";
    // An invisible spine keeps the blocks in order even where nothing of a block is kept.
    const size_t anchor = !heads.empty() ? heads.front() : mlp;
    if (anchor < nodes.size()) {
      out += fmt::format("  {} -> {} [style=invis];\n", spine, dot_id(nodes[anchor]));
      spine = dot_id(nodes[anchor]);
    }
    std::vector<size_t> live_heads;
    for (size_t i : heads)
      if (k.kept(nodes[i])) live_heads.push_back(i);
    const bool live_mlp = mlp < nodes.size() && k.kept(nodes[mlp]);
    if (live_heads.empty() && !live_mlp) continue;  // nothing reads here: writers carry on
    for (size_t w : writers) {
      for (size_t r : live_heads)
        out += fmt::format("  {} -> {} [penwidth={:.2f}];\n", dot_id(nodes[w]), dot_id(nodes[r]),
                           width(w));
      if (live_mlp)
        out += fmt::format("  {} -> {} [penwidth={:.2f}];\n", dot_id(nodes[w]), dot_id(nodes[mlp]),
                           width(w));
    }
    if (live_mlp)
      for (size_t h : live_heads)
        out += fmt::format("  {} -> {} [penwidth={:.2f}];\n", dot_id(nodes[h]), dot_id(nodes[mlp]),
                           width(h));
    writers = live_heads;
    if (live_mlp) writers.push_back(mlp);
  }
  out += "  logits [shape=box, style=filled, fillcolor=\"#ffe0b0\"];\n";
  out += fmt::format("  {} -> logits [style=invis];\n", spine);
  for (size_t w : writers)
    out += fmt::format("  {} -> logits [penwidth={:.2f}];\n", dot_id(nodes[w]), width(w));
  return out + "}\n";
}

std::string render_svg(const std::filesystem::path& dot_file, const std::filesystem::path& svg) {
  if (std::system("command -v dot >/dev/null 2>&1") != 0)
    return "graphviz's `dot` is not installed (apt install graphviz); the .dot file is written";
  const auto cmd = fmt::format("dot -Tsvg {} -o {} 2>/dev/null", quoted(dot_file.string()),
                               quoted(svg.string()));
  if (std::system(cmd.c_str()) != 0) return fmt::format("`dot` failed on {}", dot_file.string());
  return "";
}

}  // namespace vitopt::circuits
