// Timing helpers, the one place every latency figure comes from: `time_runs` (warm-up, then one
// wall-clock sample per call); interleaved rounds across models (round-robin, the order rotated
// each round, so machine noise lands on all of them alike) with the p50's spread over rounds
// (interquartile range of the per-round p50s) and the tie rule built on it; and the two-model
// speed claim made from those rounds (LibTorch models side by side, or two files on an engine),
// "faster"/"slower" only beyond the two spreads, else "tie".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/vit.h"
#include "report/metrics_schema.h"

namespace vitopt::eval {

// Calls fn `warmup` times untimed, then `runs` times timed; milliseconds per timed call.
std::vector<double> time_runs(const std::function<void()>& fn, int warmup, int runs);

// Median of samples (0 for none).
double median_ms(std::vector<double> samples);

// ---- interleaved rounds -------------------------------------------------------------------------

struct RoundPlan {
  int rounds = 5;           // round-robin passes over all models
  int runs_per_round = 10;  // timed runs of one model in one round (one block)
  int warmup = 3;           // untimed runs of each model before the first round
};

// `latency_runs` timed runs per model split into `rounds` (at most latency_runs) rounds of equal
// size (rounded up); warm-up as before: max(3, runs / 10). InputError for values < 1.
RoundPlan plan_rounds(int latency_runs, int rounds);

// Times fns[m]() as: warm-up runs of every model, then for each round r the models in the order
// r, r+1, ... (mod n), each as one untimed run (its threads wake, another model's go to sleep)
// followed by runs_per_round timed runs (time_runs). Returns ms[model][round][run].
std::vector<std::vector<std::vector<double>>> time_in_rounds(
    const std::vector<std::function<void()>>& fns, const RoundPlan& plan);

// Latency statistics of one model from its per-round samples: p50/p90/p99/mean/min/max over all
// runs pooled, plus rounds, the per-round p50s and their interquartile range (p50_spread_ms).
report::Latency latency_from_rounds(const std::vector<std::vector<double>>& rounds_ms, int warmup,
                                    int64_t batch);

// The tie rule of the report: a is faster than b only if its p50 is below b's by more than the
// two spreads together; anything closer is a tie (the noise could have ordered them either way).
bool faster_beyond_spread(double a_p50, double a_spread, double b_p50, double b_spread);

// ---- two-model speed claims ---------------------------------------------------------------------

struct SpeedClaim {
  std::string engine;  // what ran both models ("runtime", "torch")
  int64_t batch = 1;
  int rounds = 0, runs_per_round = 0;
  double a_p50_ms = 0, a_spread_ms = 0;  // reference model (dense, teacher)
  double b_p50_ms = 0, b_spread_ms = 0;  // changed model (pruned, student)
  double speedup = 0;                    // a_p50 / b_p50
  std::string verdict;                   // "faster", "slower" or "tie" (b relative to a)
  // {"engine", "batch", "rounds", "runs_per_round", "<a>_ms", "<a>_spread_ms", "<b>_ms",
  //  "<b>_spread_ms", "speedup", "verdict"} with the two models' names (e.g. "dense", "pruned").
  nlohmann::json to_json(const std::string& a_name = "dense",
                         const std::string& b_name = "pruned") const;
  // "batch-64 on runtime: 243.51 ms -> 178.15 ms (1.37x, faster beyond the ±3.10/±2.90 ms spread
  // over 5 interleaved rounds)" or "... (no measurable difference: within ...)".
  std::string summary() const;
};

// Times run_a and run_b (each one forward of `batch` images) interleaved in `rounds` rounds of
// `runs_per_round` timed runs each, after 3 warm-up runs each, and judges them with
// faster_beyond_spread.
SpeedClaim compare_speed_in_rounds(const std::function<void()>& run_a,
                                   const std::function<void()>& run_b, const std::string& engine,
                                   int64_t batch, int rounds, int runs_per_round);

// Two LibTorch models side by side ("torch"): both in eval mode, no gradients, the same random
// (batch, C, H, W) input of a's shape on `device`. Both models must take the same input shape.
SpeedClaim interleaved_latency(model::ViT& a, model::ViT& b, int64_t batch, int rounds,
                               int runs_per_round, torch::Device device = torch::kCPU);

// The same for two model files on a registered engine (engine.h), on random inputs of the
// model's shape (the timing does not depend on the pixel values). Both must take one input shape.
SpeedClaim compare_files_speed(const std::filesystem::path& a, const std::filesystem::path& b,
                               const std::string& engine, int64_t batch, int rounds,
                               int runs_per_round, int threads);

}  // namespace vitopt::eval
