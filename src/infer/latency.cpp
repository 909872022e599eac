// Timing loop and the runtime engine's bench. The engine is loaded once per model; its plan for
// a batch size is built during the warm-up runs, so timed runs measure execution only.
#include "infer/latency.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"

namespace vitopt::infer {

Timing summarize(std::vector<double> ms) {
  if (ms.empty()) core::throw_internal("summarize: no timings");
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    const double pos = p * static_cast<double>(ms.size() - 1);
    const auto lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, ms.size() - 1);
    return ms[lo] + (ms[hi] - ms[lo]) * (pos - static_cast<double>(lo));
  };
  Timing t{pct(0.5), pct(0.9), pct(0.99), 0};
  for (double v : ms) t.mean += v / static_cast<double>(ms.size());
  return t;
}

Timing time_runs(int warmup, int runs, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    core::Stopwatch sw;
    fn();
    ms.push_back(sw.millis());
  }
  return summarize(ms);
}

std::vector<int> parse_batch_list(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    try {
      size_t used = 0;
      const int v = std::stoi(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      core::throw_input(
          "--batch: expected positive integers separated by commas (e.g. 1,8,32), got '{}'", text);
    }
    pos = comma + 1;
  }
  return out;
}

nlohmann::json timing_record(const std::string& model, const std::string& engine, int batch,
                             int threads, int runs, const Timing& t) {
  return {{"model", model},    {"engine", engine},
          {"batch", batch},    {"threads", threads},
          {"runs", runs},      {"p50_ms", t.p50},
          {"p90_ms", t.p90},   {"p99_ms", t.p99},
          {"mean_ms", t.mean}, {"images_per_s", 1000.0 * batch / t.p50}};
}

nlohmann::json bench_runtime(const std::string& model_file, const BenchOptions& options) {
  runtime::RuntimeOptions ro = options.runtime;
  if (ro.threads <= 0) ro.threads = core::available_cores();
  auto engine = runtime::Engine::load(model_file, ro);
  const runtime::ModelInfo& info = engine->info();
  const std::string cpu = runtime::kernel_report(info.isa).cpu;
  const size_t per_image = static_cast<size_t>(info.in_channels) *
                           static_cast<size_t>(info.image_size) *
                           static_cast<size_t>(info.image_size);  // C * S * S
  nlohmann::json out = nlohmann::json::array();
  for (int b : options.batches) {
    const auto batch = static_cast<size_t>(b);
    std::vector<float> x(per_image * batch);                              // (B, C, S, S)
    std::vector<float> y(batch * static_cast<size_t>(info.num_classes));  // (B, K)
    std::mt19937 rng(0);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    const Timing t =
        time_runs(options.warmup, options.runs, [&] { engine->run(x.data(), b, y.data()); });
    auto record = timing_record(model_file, "runtime", b, ro.threads, options.runs, t);
    record["precision"] = info.precision;
    record["isa"] = info.isa;
    record["cpu"] = cpu;
    record["kernels"] = {{"level", info.isa},
                         {"fp32", info.isa_fp32},
                         {"int8", info.isa_int8},
                         {"int4", info.isa_int4},
                         {"int4_kernel", info.int4_kernel}};
    out.push_back(std::move(record));
  }
  return out;
}

std::string bench_kernels_line(const nlohmann::json& r) {
  if (!r.contains("kernels")) return "";
  const auto& k = r["kernels"];
  const auto int4_kernel = k["int4_kernel"].get<std::string>();
  return fmt::format("{:<40} kernels: level {} (fp32 {}, int8 {}, int4 {}){}\n",
                     r["model"].get<std::string>(), k["level"].get<std::string>(),
                     k["fp32"].get<std::string>(), k["int8"].get<std::string>(),
                     k["int4"].get<std::string>(),
                     int4_kernel.empty() ? "" : ", <= 4-bit weights as " + int4_kernel);
}

std::string bench_table_header() {
  return fmt::format("{:<40} {:<8} {:>5} {:>9} {:>9} {:>9} {:>10}\n", "model", "engine", "batch",
                     "p50 ms", "p90 ms", "p99 ms", "img/s");
}

std::string bench_table_row(const nlohmann::json& r) {
  if (r.contains("error"))
    return fmt::format("{:<40} {:<8} skipped: {}\n", r["model"].get<std::string>(),
                       r["engine"].get<std::string>(), r["error"].get<std::string>());
  return fmt::format("{:<40} {:<8} {:>5} {:>9.3f} {:>9.3f} {:>9.3f} {:>10.1f}\n",
                     r["model"].get<std::string>(), r["engine"].get<std::string>(),
                     r["batch"].get<int>(), r["p50_ms"].get<double>(), r["p90_ms"].get<double>(),
                     r["p99_ms"].get<double>(), r["images_per_s"].get<double>());
}

}  // namespace vitopt::infer
