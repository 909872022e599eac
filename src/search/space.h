// The search space of the architecture search and its genomes (no LibTorch): what a YAML file
// allows per block (drop the attention / MLP sub-block, heads kept, MLP width in multiples of 16,
// low-rank ratio, weight and input bits, sharing with the previous block, token-merging r) and for
// the whole model (input resolution; smaller student presets trained by distillation, each a base
// of its own), resolved against a base model's config into per-block choices, and the genetic
// operators the evolutionary search applies (random, largest, smallest, mutation, crossover,
// repair). A genome turns into an edited ViTConfig here, so parameters and MACs are exact before
// any weight exists.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::search {

// One block's choice. A block with attn false keeps no heads (heads 0, merge_r 0); mlp false keeps
// no neurons (mlp_dim 0). share: the block runs the previous block's weights, so every structure
// gene (attn, mlp, heads, mlp_dim, rank_ratio, wbits, abits) equals the previous block's.
struct BlockGene {
  bool attn = true, mlp = true;
  int heads = 0;            // kept heads, the most important ones (>= 1 when attn)
  int mlp_dim = 0;          // kept MLP neurons, the most important ones (>= 1 when mlp)
  double rank_ratio = 1.0;  // rank of each of the block's Linears as a fraction of full (1: dense)
  int wbits = 32;           // weight bits of the block's Linears (32: fp32)
  int abits = 32;           // input bits of the block's Linears (32: fp32; < 32 needs wbits < 32)
  bool share = false;       // run the previous block's weights (never for block 0)
  int merge_r = 0;          // tokens merged in this block (ToMe)
  bool operator==(const BlockGene&) const = default;
};

struct Genome {
  // Whole-model genes. student: 0 the model searched, k >= 1 the space's k-th student preset
  // (SpaceSpec::students[k - 1]), whose blocks `blocks` then describes. resolution: the input
  // side in pixels, 0 for the base's own (repair stores the base's side as 0, so a genome has one
  // spelling).
  int student = 0;
  int resolution = 0;
  std::vector<BlockGene> blocks;
  bool operator==(const Genome&) const = default;
  // A short, unique, stable text for a genome (the archive's key; also readable in CSVs), e.g.
  // "A4M256r1w8a8m0|A4M128r.5w32a32m2|S|-M64r1w4a32m0" ("-" dropped attention, "S" shared),
  // prefixed by "T<k>:" for student k and "R<side>:" for another resolution ("T1:R24:A2M...").
  std::string key() const;
  nlohmann::json to_json() const;
  static Genome from_json(const nlohmann::json& j, const std::string& source);  // InputError
};

// The YAML file (configs/search-space.yaml), model-independent:
//   blocks:
//     drop_attention: true        # may a block drop its attention sub-block
//     drop_mlp: true
//     heads: all                  # kept head counts: "all" (1..H) or a list like [2, 4]
//     mlp_width: {step: 16, min_ratio: 0.25}  # multiples of step from min_ratio * M up to M
//     rank_ratio: [1.0, 0.5, 0.25]
//     weight_bits: [32, 8, 6, 4]  # 32 is fp32; others 2..16
//     input_bits: [32, 8]
//     share: true                 # may a block share the previous block's weights
//     merge_r: [0, 2, 4, 8]
//   model:
//     resolution: [1.0, 0.85, 0.7]  # input side as a fraction of the base's, each in (0, 1]
//                                   # (snapped to whole patches, never above the data's side)
//     students: [vit-fmnist-student]  # presets (io/presets.h) trained by distillation; may be []
// Unknown keys, wrong types and out-of-range values throw InputError naming the file and key.
struct SpaceSpec {
  bool drop_attention = true, drop_mlp = true;
  std::vector<int> heads;  // empty: every count 1..H
  int mlp_step = 16;
  double mlp_min_ratio = 0.25;                      // (0, 1]
  std::vector<double> rank_ratios{1.0, 0.5, 0.25};  // each in (0, 1]
  std::vector<int> weight_bits{32, 8, 6, 4};
  std::vector<int> input_bits{32, 8};
  bool share = true;
  std::vector<int> merge_r{0, 2, 4, 8};  // each >= 0
  std::vector<double> resolution{1.0, 0.85, 0.7};  // each in (0, 1]; Space adds the base's own side
  std::vector<std::string> students;               // preset names (checked against io::presets)

  static SpaceSpec from_yaml_text(const std::string& text, const std::string& source);
  static SpaceSpec from_yaml_file(const std::filesystem::path& path);
  nlohmann::json to_json() const;
};

// The choices of one block of a given base model (each list sorted ascending, deduplicated;
// the base model's own value always present, so the unedited model is in the space).
struct BlockChoices {
  std::vector<bool> attn, mlp;  // {true} or {false, true}
  std::vector<int> heads;       // 1..H_b (or the spec's list capped at H_b)
  std::vector<int> mlp_dims;    // multiples of step in [min_ratio * M_b, M_b], plus M_b
  std::vector<double> rank_ratios;
  std::vector<int> wbits, abits, merge_r;
  bool share = false;  // false for block 0
};

// A student preset as a base of the search: the preset's shape with the searched model's input and
// output (image_size, in_channels, num_classes, preprocess), normalized. InputError naming the
// preset when it is unknown or its patch size does not divide the model's image side.
io::ViTConfig student_config(const std::string& preset, const io::ViTConfig& model);

// The space resolved against a base config (which must not be shared, low-rank or quantized:
// the search edits a plain trained model) and against each student preset of the spec (base k).
// Block b's choices follow the base block's heads/width.
class Space {
 public:
  Space(const SpaceSpec& spec, const io::ViTConfig& base);
  // Base 0 is the model searched, base k >= 1 the k-th student (student_config).
  int num_bases() const { return static_cast<int>(bases_.size()); }
  const io::ViTConfig& base(int student = 0) const;
  const std::vector<BlockChoices>& blocks(int student = 0) const;
  // Input sides of base `student`, ascending, whole patches, the base's own side included.
  const std::vector<int>& resolutions(int student = 0) const;

  Genome largest() const;   // the base model: everything kept, dense, fp32, no sharing/merging
  Genome smallest() const;  // base 0 at the fewest parameters and MACs the space allows (still
                            // >= 1 block part: block 0's MLP or attention is kept), lowest bits,
                            // max merge_r, smallest resolution
  // Every gene drawn uniformly (the base too, unless `student` >= 0 fixes it).
  Genome random(std::mt19937_64& rng, int student = -1) const;
  // Each gene re-drawn from its choices with probability p (then repaired). A new base
  // starts from that base's largest genome, then mutated.
  Genome mutate(const Genome& g, double p, std::mt19937_64& rng) const;
  // Uniform crossover per block (each block from a or b; resolution from either), then
  // repaired. Parents of different bases: the child is a copy of one of them.
  Genome crossover(const Genome& a, const Genome& b, std::mt19937_64& rng) const;
  // The nearest valid genome: values snapped to their block's choices, the rules of BlockGene
  // applied (dropped parts, abits needs wbits, shared blocks copy the previous block's structure,
  // at least one sub-block kept somewhere). Idempotent.
  Genome repair(Genome g) const;
  // Throws InputError naming `source` if g is not valid for this space (wrong block count, a value
  // outside its choices, a broken rule). repair(g) == g for a valid genome.
  void check(const Genome& g, const std::string& source) const;

 private:
  std::vector<io::ViTConfig> bases_;               // [0] the model, then the students
  std::vector<std::vector<BlockChoices>> blocks_;  // per base
  std::vector<std::vector<int>> resolutions_;      // per base
};

// Rank a Linear of (out, in) gets at `ratio`: round(ratio * min(out, in)) rounded up to a multiple
// of 8 (the runtime's SIMD width), and 0 (dense) at ratio 1 or where the factor pair would hold
// at least as many parameters as the dense weight.
int rank_for(double ratio, int out, int in);

// The base config edited as the genome says (`base` is the genome's own base: Space::base(
// g.student)): image_size when g.resolution != 0, per block heads (kept_heads left empty: which
// heads is the importance order's business), mlp_dim, skips, ranks (rank_for), attn/mlp_shared_with
// (the owner of a run of shared blocks), merge_r. Normalized. Exact params / MACs follow from it
// (io/model_counts).
io::ViTConfig genome_config(const io::ViTConfig& base, const Genome& g);

// Whether any block is quantized (wbits < 32).
bool quantized(const Genome& g);

}  // namespace vitopt::search
