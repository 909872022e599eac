// A circuit written out: as JSON (every node with kept flag and score, the kept counts) and as a
// graphviz picture (blocks top to bottom, embedding first and logits last, removed nodes dashed,
// kept edges of the residual stream with widths by their writer's score). LibTorch-free.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/circuits/circuit.h"

namespace vitopt::circuits {

// {"nodes": [{"name", "kind", "block", "kept", "score"}...], "kept_heads", "kept_neurons",
//  "removed": [names]}. `scores` aligned with `nodes` (empty: no scores).
nlohmann::json circuit_json(const std::vector<Node>& nodes, const Circuit& circuit,
                            const std::vector<double>& scores);

// The picture in DOT. Edges go from every kept writer (embedding, heads, MLPs) to the kept readers
// of the next block that has any (and from heads to their own block's MLP), the last ones to the
// logits: the residual stream carries each writer further, but every pair makes an unreadable
// picture. Widths scale with |score| of the writer.
std::string circuit_dot(const io::ViTConfig& config, const std::vector<Node>& nodes,
                        const Circuit& circuit, const std::vector<double>& scores,
                        const std::string& title);

// Renders `dot_file` to SVG with graphviz's `dot`; returns "" on success or why it could not.
std::string render_svg(const std::filesystem::path& dot_file, const std::filesystem::path& svg);

}  // namespace vitopt::circuits
