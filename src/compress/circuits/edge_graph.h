// The residual-stream graph of a ViT (Conmy et al. 2023, edge level): writers (the embedding,
// every attention head, every MLP) add to the residual stream; readers take it in (every head's q,
// k and v input, every MLP's input, the logits). An edge joins a writer to a later reader.
// Writers are in topological order, so every reader reads a prefix of them. LibTorch-free: the
// edge forward (edge_model.h), the searches and the pictures share it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/circuits/circuit.h"
#include "io/vit_config.h"

namespace vitopt::circuits {

struct Writer {
  NodeKind kind = NodeKind::Embed;  // Embed, Head or Mlp
  int block = -1, head = 0;
  std::string name;  // the node's name ("blocks.1.attn.head2", "blocks.1.mlp")
};

enum class ReaderKind { Q, K, V, Mlp, Logits };
const char* reader_kind_name(ReaderKind kind);  // "q", "k", "v", "mlp", "logits"

struct Reader {
  ReaderKind kind = ReaderKind::Logits;
  int block = -1, head = 0;  // block = depth for the logits
  std::string name;          // "blocks.1.attn.head2.q", "blocks.1.mlp", "logits"
  int reads = 0;             // it reads writers [0, reads)
  int writer = -1;           // the writer it feeds (its head or MLP); -1 for the logits
};

struct EdgeGraph {
  std::vector<Writer> writers;
  std::vector<Reader> readers;  // topological: per block q, k, v of every head, then the MLP
  int edges() const;
};

EdgeGraph edge_graph(const io::ViTConfig& config);

// Kept edges as a dense (readers x writers) 0/1 table, row-major; entries past a reader's
// prefix are 0.
using EdgeMask = std::vector<std::vector<char>>;
EdgeMask full_edge_mask(const EdgeGraph& graph);

// The node circuit the edges leave: a head, MLP or the embedding with no kept outgoing edge
// affects nothing and is removed (MLPs keep all neurons: edges do not see them).
Circuit node_circuit(const io::ViTConfig& config, const EdgeGraph& graph, const EdgeMask& mask);

// {"edges": [{"from", "to", "kept", "score"}...] (existing edges only), "kept_edges",
// "total_edges"}. `scores` (readers x writers, row-major) may be empty.
nlohmann::json edges_json(const EdgeGraph& graph, const EdgeMask& mask,
                          const std::vector<double>& scores);

// The circuit picture at edge level: blocks top to bottom, every kept edge drawn into its reader's
// head (coloured by q / k / v) or MLP, widths by |score|; removed nodes dashed.
std::string edges_dot(const io::ViTConfig& config, const EdgeGraph& graph, const EdgeMask& mask,
                      const std::vector<double>& scores, const std::string& title);

}  // namespace vitopt::circuits
