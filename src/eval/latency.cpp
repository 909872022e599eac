// Wall-clock timing of calls and of two models side by side.
#include "eval/latency.h"

#include <algorithm>

#include "core/timer.h"

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

nlohmann::json PairLatency::to_json(const char* a_name, const char* b_name) const {
  return {{"batch", batch}, {"runs", runs}, {a_name, a_ms}, {b_name, b_ms}, {"speedup", speedup}};
}

PairLatency interleaved_latency(model::ViT& a, model::ViT& b, int64_t batch, int runs,
                                torch::Device device) {
  torch::NoGradGuard no_grad;
  a->eval();
  b->eval();
  const auto& c = a->config();
  const auto x = torch::randn({batch, c.in_channels, c.image_size, c.image_size}).to(device);
  for (int i = 0; i < 3; ++i) {  // warm-up: allocator, oneDNN/BLAS pools
    a->forward(x);
    b->forward(x);
  }
  std::vector<double> ta, tb;
  for (int i = 0; i < std::max(runs, 1); ++i) {
    ta.push_back(time_runs([&] { a->forward(x); }, 0, 1)[0]);
    tb.push_back(time_runs([&] { b->forward(x); }, 0, 1)[0]);
  }
  PairLatency p;
  p.batch = batch;
  p.runs = static_cast<int>(ta.size());
  p.a_ms = median_ms(ta);
  p.b_ms = median_ms(tb);
  p.speedup = p.b_ms > 0 ? p.a_ms / p.b_ms : 0;
  return p;
}

}  // namespace vitopt::eval
