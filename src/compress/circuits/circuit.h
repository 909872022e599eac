// Circuit discovery's vocabulary: the nodes of a ViT that ACDC tests and EAP scores (the
// patch/position embedding, every attention head and sub-block, MLP neurons in groups, whole
// blocks; the logits are the sink and always kept) and a circuit, the set of nodes kept.
// LibTorch-free: the searches (acdc.h, eap.h) and the pictures (circuit_graph.h) share it.
#pragma once

#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::circuits {

enum class NodeKind { Embed, Head, Attn, Neurons, Mlp, Block };
const char* kind_name(NodeKind kind);  // "embed", "head", "attn", "neurons", "mlp", "block"

struct Node {
  NodeKind kind = NodeKind::Embed;
  int block = -1;    // -1 for the embedding
  int index = 0;     // head index, or first neuron of a group
  int count = 1;     // neurons in a group (1 otherwise)
  std::string name;  // "embed", "blocks.2.attn.head1", "blocks.2.mlp.neurons16-31", ...
};

// Every node of the model in topological order: the embedding, then per block its heads, the
// attention sub-block, the neuron groups (`neuron_group` consecutive neurons each, the last one
// possibly smaller), the MLP sub-block and the block. Sub-blocks the config skips have no nodes.
std::vector<Node> circuit_nodes(const io::ViTConfig& config, int neuron_group);

// Which nodes are kept. A sub-block counts as removed when its flag is off or when none of its
// heads / neurons is kept (so its output Linear's bias goes with it, as slimming does).
struct Circuit {
  bool embed = true;
  std::vector<std::vector<char>> heads;    // per block, per head: kept
  std::vector<std::vector<char>> neurons;  // per block, per neuron: kept
  std::vector<char> attn, mlp;             // per block: sub-block kept

  static Circuit full(const io::ViTConfig& config);  // everything the config has
  bool attn_live(int block) const;                   // flag on and at least one head kept
  bool mlp_live(int block) const;                    // flag on and at least one neuron kept
  bool kept(const Node& node) const;
  void set(const Node& node, bool keep);  // a block sets both sub-blocks
  int kept_heads() const;
  int kept_neurons() const;
  bool operator==(const Circuit&) const = default;
};

}  // namespace vitopt::circuits
