#include "compress/circuits/edge_graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace vitopt::circuits {
namespace {

std::string dot_id(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

bool any(const std::vector<char>& v) {
  return std::any_of(v.begin(), v.end(), [](char x) { return x != 0; });
}

// Whether writer w has a kept outgoing edge.
bool writes(const EdgeGraph& g, const EdgeMask& mask, int w) {
  for (size_t r = 0; r < g.readers.size(); ++r)
    if (w < g.readers[r].reads && mask[r][static_cast<size_t>(w)]) return true;
  return false;
}

}  // namespace

const char* reader_kind_name(ReaderKind kind) {
  switch (kind) {
    case ReaderKind::Q:
      return "q";
    case ReaderKind::K:
      return "k";
    case ReaderKind::V:
      return "v";
    case ReaderKind::Mlp:
      return "mlp";
    case ReaderKind::Logits:
      return "logits";
  }
  return "?";
}

int EdgeGraph::edges() const {
  int n = 0;
  for (const auto& r : readers) n += r.reads;
  return n;
}

EdgeGraph edge_graph(const io::ViTConfig& c) {
  EdgeGraph g;
  g.writers.push_back({NodeKind::Embed, -1, 0, "embed"});
  for (int b = 0; b < c.depth; ++b) {
    const auto& blk = c.blocks[static_cast<size_t>(b)];
    const int before = static_cast<int>(g.writers.size());
    if (!blk.skip_attn) {
      for (int h = 0; h < c.block_heads(b); ++h) {
        const auto head = fmt::format("blocks.{}.attn.head{}", b, h);
        const int w = static_cast<int>(g.writers.size()) + h;
        for (auto kind : {ReaderKind::Q, ReaderKind::K, ReaderKind::V})
          g.readers.push_back(
              {kind, b, h, fmt::format("{}.{}", head, reader_kind_name(kind)), before, w});
      }
      for (int h = 0; h < c.block_heads(b); ++h)
        g.writers.push_back({NodeKind::Head, b, h, fmt::format("blocks.{}.attn.head{}", b, h)});
    }
    if (!blk.skip_mlp) {
      const auto name = fmt::format("blocks.{}.mlp", b);
      g.readers.push_back({ReaderKind::Mlp, b, 0, name, static_cast<int>(g.writers.size()),
                           static_cast<int>(g.writers.size())});
      g.writers.push_back({NodeKind::Mlp, b, 0, name});
    }
  }
  g.readers.push_back(
      {ReaderKind::Logits, c.depth, 0, "logits", static_cast<int>(g.writers.size()), -1});
  return g;
}

EdgeMask full_edge_mask(const EdgeGraph& g) {
  EdgeMask m(g.readers.size(), std::vector<char>(g.writers.size(), 0));
  for (size_t r = 0; r < g.readers.size(); ++r)
    std::fill(m[r].begin(), m[r].begin() + g.readers[r].reads, 1);
  return m;
}

Circuit node_circuit(const io::ViTConfig& c, const EdgeGraph& g, const EdgeMask& mask) {
  auto k = Circuit::full(c);
  for (size_t w = 0; w < g.writers.size(); ++w) {
    if (writes(g, mask, static_cast<int>(w))) continue;
    const auto& wr = g.writers[w];
    if (wr.kind == NodeKind::Embed) k.embed = false;
    if (wr.kind == NodeKind::Head) k.heads[wr.block][wr.head] = 0;
    if (wr.kind == NodeKind::Mlp) k.mlp[wr.block] = 0;
  }
  for (int b = 0; b < c.depth; ++b)  // a sub-block without heads is gone (Circuit's own rule)
    if (!any(k.heads[b])) k.attn[b] = 0;
  return k;
}

nlohmann::json edges_json(const EdgeGraph& g, const EdgeMask& mask,
                          const std::vector<double>& scores) {
  nlohmann::json edges = nlohmann::json::array();
  int kept = 0;
  for (size_t r = 0; r < g.readers.size(); ++r)
    for (int w = 0; w < g.readers[r].reads; ++w) {
      nlohmann::json e = {{"from", g.writers[static_cast<size_t>(w)].name},
                          {"to", g.readers[r].name},
                          {"kept", mask[r][static_cast<size_t>(w)] != 0}};
      if (!scores.empty()) e["score"] = scores[r * g.writers.size() + static_cast<size_t>(w)];
      kept += mask[r][static_cast<size_t>(w)] != 0;
      edges.push_back(e);
    }
  return {{"edges", edges}, {"kept_edges", kept}, {"total_edges", g.edges()}};
}

std::string edges_dot(const io::ViTConfig& c, const EdgeGraph& g, const EdgeMask& mask,
                      const std::vector<double>& scores, const std::string& title) {
  const auto nodes = node_circuit(c, g, mask);
  double top = 0;
  for (double s : scores) top = std::max(top, std::abs(s));
  std::string out = fmt::format(
      "digraph circuit {{\n  label=\"{}\";\n  labelloc=t;\n  rankdir=TB;\n  "
      "node [fontname=\"Helvetica\", fontsize=10];\n  embed [shape=box, {}];\n",
      title, nodes.embed ? "style=filled, fillcolor=\"#cfe3ff\"" : "style=dashed, color=gray60");
  std::string spine = "embed";
  for (int b = 0; b < c.depth; ++b) {
    out +=
        fmt::format("  subgraph cluster_{} {{\n    label=\"block {}\";\n    color=gray80;\n", b, b);
    std::string first;
    for (const auto& w : g.writers) {
      if (w.block != b) continue;
      const bool kept = w.kind == NodeKind::Head ? nodes.attn_live(b) && nodes.heads[b][w.head]
                                                 : nodes.mlp_live(b);
      out += fmt::format("    {} [label=\"{}\", shape={}, {}];\n", dot_id(w.name),
                         w.kind == NodeKind::Head ? fmt::format("h{}", w.head) : "MLP",
                         w.kind == NodeKind::Head ? "ellipse" : "box",
                         kept ? "style=filled, fillcolor=\"#cfe3ff\""
                              : "style=dashed, color=gray60, fontcolor=gray60");
      if (first.empty()) first = dot_id(w.name);
    }
    out += "  }\n";
    if (!first.empty()) {
      out += fmt::format("  {} -> {} [style=invis];\n", spine, first);
      spine = first;
    }
  }
  out += "  logits [shape=box, style=filled, fillcolor=\"#ffe0b0\"];\n";
  out += fmt::format("  {} -> logits [style=invis];\n", spine);
  for (size_t r = 0; r < g.readers.size(); ++r) {
    const auto& rd = g.readers[r];
    const std::string to = rd.writer >= 0 ? dot_id(g.writers[static_cast<size_t>(rd.writer)].name)
                                          : std::string("logits");
    const char* colour = rd.kind == ReaderKind::Q   ? "#1f77b4"
                         : rd.kind == ReaderKind::K ? "#2ca02c"
                         : rd.kind == ReaderKind::V ? "#d62728"
                                                    : "black";
    for (int w = 0; w < rd.reads; ++w) {
      if (!mask[r][static_cast<size_t>(w)]) continue;
      const double s =
          scores.empty() ? 0 : std::abs(scores[r * g.writers.size() + static_cast<size_t>(w)]);
      const double width = top > 0 ? 0.4 + 3.6 * s / top : 1.0;
      out += fmt::format("  {} -> {} [color=\"{}\", penwidth={:.2f}];\n",
                         dot_id(g.writers[static_cast<size_t>(w)].name), to, colour, width);
    }
  }
  return out + "}\n";
}

}  // namespace vitopt::circuits
