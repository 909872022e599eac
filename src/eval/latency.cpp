// Wall-clock timing of calls, interleaved latency rounds with their statistics and tie rule, and
// two-model speed claims built on them (see latency.h).
#include "eval/latency.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "core/timer.h"
#include "eval/efficiency.h"
#include "eval/engine.h"

namespace vitopt::eval {

std::vector<double> time_runs(const std::function<void()>& fn, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(std::max(runs, 0)));
  for (int i = 0; i < runs; ++i) {
    core::Stopwatch clock;
    fn();
    ms.push_back(clock.millis());
  }
  return ms;
}

double median_ms(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- interleaved rounds -------------------------------------------------------------------------

RoundPlan plan_rounds(int latency_runs, int rounds) {
  if (latency_runs < 1) core::throw_input("--latency-runs: expected >= 1, got {}", latency_runs);
  if (rounds < 1) core::throw_input("--latency-rounds: expected >= 1, got {}", rounds);
  RoundPlan p;
  p.rounds = std::min(rounds, latency_runs);
  p.runs_per_round = (latency_runs + p.rounds - 1) / p.rounds;
  p.warmup = std::max(3, latency_runs / 10);
  return p;
}

std::vector<std::vector<std::vector<double>>> time_in_rounds(
    const std::vector<std::function<void()>>& fns, const RoundPlan& plan) {
  const size_t n = fns.size();
  std::vector<std::vector<std::vector<double>>> ms(
      n, std::vector<std::vector<double>>(static_cast<size_t>(std::max(plan.rounds, 0))));
  for (const auto& fn : fns)
    for (int i = 0; i < plan.warmup; ++i) fn();
  for (int r = 0; r < plan.rounds; ++r) {
    for (size_t k = 0; k < n; ++k) {
      const size_t m = (static_cast<size_t>(r) + k) % n;
      // One untimed run first: wakes this model's threads after the previous model's block.
      ms[m][static_cast<size_t>(r)] = time_runs(fns[m], 1, plan.runs_per_round);
    }
  }
  return ms;
}

report::Latency latency_from_rounds(const std::vector<std::vector<double>>& rounds_ms, int warmup,
                                    int64_t batch) {
  std::vector<double> all;
  std::vector<double> round_p50;
  for (const auto& round : rounds_ms) {
    if (round.empty()) continue;
    all.insert(all.end(), round.begin(), round.end());
    round_p50.push_back(percentile(round, 50));
  }
  report::Latency l = latency_stats(all, warmup, batch);
  l.rounds = static_cast<int>(round_p50.size());
  l.round_p50_ms = round_p50;
  l.p50_spread_ms =
      round_p50.size() >= 2 ? percentile(round_p50, 75) - percentile(round_p50, 25) : 0.0;
  return l;
}

bool faster_beyond_spread(double a_p50, double a_spread, double b_p50, double b_spread) {
  return b_p50 - a_p50 > a_spread + b_spread;
}

// ---- two-model speed claims ---------------------------------------------------------------------

nlohmann::json SpeedClaim::to_json(const std::string& a_name, const std::string& b_name) const {
  return {{"engine", engine},
          {"batch", batch},
          {"rounds", rounds},
          {"runs_per_round", runs_per_round},
          {a_name + "_ms", a_p50_ms},
          {a_name + "_spread_ms", a_spread_ms},
          {b_name + "_ms", b_p50_ms},
          {b_name + "_spread_ms", b_spread_ms},
          {"speedup", speedup},
          {"verdict", verdict}};
}

std::string SpeedClaim::summary() const {
  const std::string head =
      fmt::format("batch-{} on {}: {:.2f} ms -> {:.2f} ms", batch, engine, a_p50_ms, b_p50_ms);
  const std::string noise = fmt::format("the ±{:.2f}/±{:.2f} ms spread over {} interleaved rounds",
                                        a_spread_ms, b_spread_ms, rounds);
  if (verdict == "tie") return fmt::format("{} (no measurable difference: within {})", head, noise);
  return fmt::format("{} ({:.2f}x, {} beyond {})", head, speedup, verdict, noise);
}

SpeedClaim compare_speed_in_rounds(const std::function<void()>& run_a,
                                   const std::function<void()>& run_b, const std::string& engine,
                                   int64_t batch, int rounds, int runs_per_round) {
  RoundPlan plan;
  plan.rounds = std::max(1, rounds);
  plan.runs_per_round = std::max(1, runs_per_round);
  plan.warmup = 3;
  const auto ms = time_in_rounds({run_a, run_b}, plan);
  const auto a = latency_from_rounds(ms[0], plan.warmup, batch);
  const auto b = latency_from_rounds(ms[1], plan.warmup, batch);
  SpeedClaim s;
  s.engine = engine;
  s.batch = batch;
  s.rounds = plan.rounds;
  s.runs_per_round = plan.runs_per_round;
  s.a_p50_ms = a.p50_ms;
  s.a_spread_ms = a.p50_spread_ms;
  s.b_p50_ms = b.p50_ms;
  s.b_spread_ms = b.p50_spread_ms;
  s.speedup = b.p50_ms > 0 ? a.p50_ms / b.p50_ms : 0;
  if (faster_beyond_spread(b.p50_ms, b.p50_spread_ms, a.p50_ms, a.p50_spread_ms))
    s.verdict = "faster";
  else if (faster_beyond_spread(a.p50_ms, a.p50_spread_ms, b.p50_ms, b.p50_spread_ms))
    s.verdict = "slower";
  else
    s.verdict = "tie";
  return s;
}

SpeedClaim interleaved_latency(model::ViT& a, model::ViT& b, int64_t batch, int rounds,
                               int runs_per_round, torch::Device device) {
  torch::NoGradGuard no_grad;
  a->eval();
  b->eval();
  const auto& c = a->config();
  const auto x = torch::randn({batch, c.in_channels, c.image_size, c.image_size}).to(device);
  return compare_speed_in_rounds([&] { a->forward(x); }, [&] { b->forward(x); }, "torch", batch,
                                 rounds, runs_per_round);
}

SpeedClaim compare_files_speed(const std::filesystem::path& a, const std::filesystem::path& b,
                               const std::string& engine, int64_t batch, int rounds,
                               int runs_per_round, int threads) {
  EngineOptions eo;
  eo.threads = threads;
  auto ea = make_engine(engine, a, eo);
  auto eb = make_engine(engine, b, eo);
  const auto& ca = ea->config();
  const auto& cb = eb->config();
  if (ca.in_channels != cb.in_channels || ca.image_size != cb.image_size)
    core::throw_input("{} and {}: different input shapes ({}x{}x{} vs {}x{}x{}); cannot time them "
                      "on the same images",
                      a.string(), b.string(), ca.in_channels, ca.image_size, ca.image_size,
                      cb.in_channels, cb.image_size, cb.image_size);
  const auto n = static_cast<size_t>(batch * ca.in_channels * ca.image_size * ca.image_size);
  std::vector<float> x(n);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = normal(rng);
  std::vector<float> ya(static_cast<size_t>(batch * ca.num_classes));
  std::vector<float> yb(static_cast<size_t>(batch * cb.num_classes));
  return compare_speed_in_rounds([&] { ea->run(x.data(), batch, ya.data()); },
                                 [&] { eb->run(x.data(), batch, yb.data()); }, engine, batch,
                                 rounds, runs_per_round);
}

}  // namespace vitopt::eval
