// Building a search candidate from the trained model (LibTorch): the importance order of heads
// and MLP neurons computed once, then, for a genome, the same edits the single-technique commands
// make, in the one order that composes: slim the kept heads / neurons / sub-blocks (removed parts'
// mean outputs folded into biases, model/edit/slim.h), factorize and share (edit::rebuild: SVD
// factors at the genome's ranks, shared blocks taking their owner's weights), set the merge
// schedule, and quantize by post-training quantization with per-block weight / input bits.
// Legend: H_b heads, M_b MLP width of block b.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compress/quant/ptq.h"
#include "model/edit/ablation.h"
#include "model/edit/plan.h"
#include "model/vit.h"
#include "search/space.h"
#include "train/calibration.h"

namespace vitopt::search {

// What every candidate inherits from the trained model: heads and neurons of each block ordered by
// importance (most important first) and the clean model's mean outputs (for folding).
struct Inheritance {
  std::vector<std::vector<int>> head_order;    // per block, H_b indices
  std::vector<std::vector<int>> neuron_order;  // per block, M_b indices
  edit::AblationMeans means;
  std::string criterion;  // the importance criterion the orders come from
};

// The importance criteria of inherit(): prune's group criteria and "eap" (EAP-IG node scores of
// the circuits layer, KL under mean ablation).
const std::vector<std::string>& inheritance_criteria();

// Orders by `criterion` (one of inheritance_criteria()) on `calib`; means on the same images. The
// model must be plain (not shared, low-rank or quantized); InputError otherwise.
Inheritance inherit(model::ViT& model, const std::string& criterion,
                    const std::vector<train::CalibBatch>& calib, bool quiet = true);

// What the genome keeps of `config`'s blocks: the most important heads / neurons by `inheritance`
// (indices ascending), dropped sub-blocks. Used by build_fp32 and by the supernet's gates.
edit::StructurePlan structure_plan(const io::ViTConfig& config, const Inheritance& inheritance,
                                   const Genome& genome);

// The fp32 candidate: slimmed, factorized, shared, merging and at the input resolution the genome
// says (no quantization); `base` is the genome's own base (the model or its student). `base` is
// left unchanged. The genome must be valid for a Space over base's config.
model::ViT build_fp32(model::ViT& base, const Inheritance& inheritance, const Genome& genome);

// PTQ options for the genome: 8-bit defaults (the quantize command's), every quantized block's
// Linears at their wbits through layer_wbits. The patch embedding and blocks at 32 bits are
// stripped from the result by quantize_candidate (they stay fp32).
quant::PtqOptions ptq_options(model::ViT& fp32, const Genome& genome);

// Post-training quantization of an fp32 candidate with the genome's per-block bits, calibrated on
// `calib` (Ncal, C, H, W). nullopt when no block is quantized.
std::optional<quant::QuantizedState> quantize_candidate(model::ViT& fp32, const Genome& genome,
                                                        const torch::Tensor& calib);

// Writes the candidate (quantized if `quantized` holds a state, else `fp32`) to `path`
// atomically, with the genome and `record` under "vitopt.search" and the class names.
void save_candidate(model::ViT& fp32, const std::optional<quant::QuantizedState>& quantized,
                    const Genome& genome, const nlohmann::json& record,
                    const std::vector<std::string>& class_names, const std::filesystem::path& path);

}  // namespace vitopt::search
