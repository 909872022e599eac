// Rank policy of low-rank factorization, as pure functions of singular values and shapes (no
// LibTorch): rank by retained energy or by a ratio, rounding to the runtime's SIMD width, whether a
// factor pair saves parameters at all, and the allocation of a global parameter budget across
// layers by measured sensitivity.
// Legend: out/in a Linear's output/input width, r rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vitopt::lowrank {

// Ranks are multiples of this: one AVX-512 register (two AVX2 ones) of fp32 values, so the
// runtime's GEMMs over a factor pair have no ragged panel.
inline constexpr int kRankMultiple = 16;

// The smallest r whose leading singular values keep `energy` (in (0, 1]) of sum(s_i^2).
// `singular` is in descending order; an all-zero spectrum gives 1.
int rank_for_energy(const std::vector<double>& singular, double energy);

// `rank` rounded to the nearest multiple of `multiple` (at least one multiple), capped at `full`.
int round_rank(int rank, int full, int multiple = kRankMultiple);

// Weight parameters of a factor pair (out x r and r x in); biases are the same either way.
inline int64_t factor_params(int out, int in, int rank) {
  return static_cast<int64_t>(rank) * (out + in);
}
// The largest multiple of `multiple` whose factor pair has fewer weights than the dense
// out x in matrix (0 when none does).
int max_useful_rank(int out, int in, int multiple = kRankMultiple);

// One way to run a layer: rank 0 is dense. `params` its weight count, `cost` the measured damage
// (e.g. KL to the unfactorized model on calibration images; 0 for dense).
struct LayerOption {
  int rank = 0;
  int64_t params = 0;
  double cost = 0;
};

// Picks one option per layer (options[0] must be the dense one, the others in any order) so that
// the weights saved reach `to_save`, taking each time the move with the smallest cost increase
// per weight saved. Returns the chosen option index per layer, or an empty vector when even the
// smallest options of every layer cannot save `to_save` (the budget cannot be met).
std::vector<size_t> allocate_budget(const std::vector<std::vector<LayerOption>>& layers,
                                    int64_t to_save);

// A parameter budget as given on the command line: a count ("800000"), with a K/M/G suffix
// ("1.2M"), or a percentage of `model_params` ("60%"). InputError naming `flag` otherwise.
int64_t parse_param_budget(const std::string& text, int64_t model_params,
                           const std::string& flag = "--param-budget");

}  // namespace vitopt::lowrank
