// `vitopt bench`: latency percentiles and throughput of model files per engine (the vitopt
// runtime, LibTorch eager) and batch size, measured side by side in one process with the same
// thread count. Random normal inputs; warm-up runs first (they also build the runtime's plan).
// Runtime records name the CPU, the kernel level and the implementation per kernel family.
#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"
#include "model/model_file.h"
#include "train/torch_env.h"
#include "vitopt/runtime.h"

namespace vitopt::cli {
namespace {

struct Timing {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};

Timing summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    const double pos = p * static_cast<double>(ms.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, ms.size() - 1);
    return ms[lo] + (ms[hi] - ms[lo]) * (pos - static_cast<double>(lo));
  };
  Timing t{pct(0.5), pct(0.9), pct(0.99), 0};
  for (double v : ms) t.mean += v / static_cast<double>(ms.size());
  return t;
}

template <typename Fn>
Timing time_runs(int warmup, int runs, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    core::Stopwatch sw;
    fn();
    ms.push_back(sw.millis());
  }
  return summarize(ms);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, comma - pos);
    try {
      size_t used = 0;
      const int v = std::stoi(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      core::throw_input("--batch: expected positive integers separated by commas (e.g. 1,8,32), got '{}'", s);
    }
    pos = comma + 1;
  }
  return out;
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Latency (p50/p90/p99) and throughput per model, engine and batch");
  struct Flags {
    CommonFlags common;
    std::vector<std::string> models;
    std::string batches = "1", isa, schedule = "auto", int4 = "auto";
    std::vector<std::string> engines{"runtime"};
    int runs = 20, warmup = 3;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->models, "Model files")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch,-b", f->batches, "Batch sizes, comma separated (e.g. 1,8,32)");
  cmd->add_option("--engine", f->engines, "Engines, comma separated: runtime, torch")
      ->delimiter(',')->check(CLI::IsMember({"runtime", "torch"}));
  cmd->add_option("--runs", f->runs, "Timed runs per model/engine/batch")->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", f->warmup, "Untimed runs first")->check(CLI::Range(0, 1000));
  cmd->add_option("--isa", f->isa, "Runtime kernel level (default: $VITOPT_ISA, else the best this CPU has)")
      ->check(CLI::IsMember({"ref", "avx2", "avx2vnni", "avx512", "avx512vnni"}));
  cmd->add_option("--int4", f->int4,
                  "Runtime kernel for <= 4-bit weights: auto (packed when the int8 weights exceed the L3), "
                  "packed, int8")
      ->check(CLI::IsMember({"auto", "packed", "int8"}));
  cmd->add_option("--schedule", f->schedule,
                  "Runtime thread schedule: auto, layer (split each GEMM), rows (split token rows)")
      ->check(CLI::IsMember({"auto", "layer", "rows"}));
  add_threads_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    const std::vector<int> batches = parse_list(f->batches);
    const int threads = f->common.threads > 0 ? f->common.threads : core::available_cores();
    nlohmann::json out = nlohmann::json::array();
    const bool human = !f->common.json && !f->common.quiet;
    if (human)
      fmt::print("{:<40} {:<8} {:>5} {:>9} {:>9} {:>9} {:>10}\n", "model", "engine", "batch",
                 "p50 ms", "p90 ms", "p99 ms", "img/s");
    auto record = [&](const std::string& model, const std::string& engine, int batch,
                      const Timing& t, nlohmann::json extra) {
      nlohmann::json j = {{"model", model}, {"engine", engine}, {"batch", batch},
                          {"threads", threads}, {"runs", f->runs},
                          {"p50_ms", t.p50}, {"p90_ms", t.p90}, {"p99_ms", t.p99},
                          {"mean_ms", t.mean}, {"images_per_s", 1000.0 * batch / t.p50}};
      j.update(extra);
      if (human)
        fmt::print("{:<40} {:<8} {:>5} {:>9.3f} {:>9.3f} {:>9.3f} {:>10.1f}\n", model, engine, batch,
                   t.p50, t.p90, t.p99, 1000.0 * batch / t.p50);
      out.push_back(std::move(j));
    };
    for (const auto& path : f->models) {
      for (const auto& engine : f->engines) {
        if (engine == "runtime") {
          runtime::RuntimeOptions ro;
          ro.threads = threads;
          ro.isa = f->isa;
          ro.schedule = f->schedule;
          ro.int4 = f->int4;
          auto e = runtime::Engine::load(path, ro);
          const auto& info = e->info();
          const std::string cpu = runtime::kernel_report(info.isa).cpu;
          if (human)
            fmt::print("{:<40} kernels: level {} (fp32 {}, int8 {}, int4 {}){}\n", path, info.isa, info.isa_fp32,
                       info.isa_int8, info.isa_int4,
                       info.int4_kernel.empty() ? "" : ", <= 4-bit weights as " + info.int4_kernel);
          for (int b : batches) {
            const size_t per = static_cast<size_t>(info.in_channels) * info.image_size * info.image_size;
            std::vector<float> x(per * static_cast<size_t>(b)), y(static_cast<size_t>(b) * info.num_classes);
            std::mt19937 rng(0);
            std::normal_distribution<float> nd;
            for (auto& v : x) v = nd(rng);
            const Timing t = time_runs(f->warmup, f->runs, [&] { e->run(x.data(), b, y.data()); });
            record(path, engine, b, t,
                   {{"precision", info.precision}, {"isa", info.isa}, {"cpu", cpu},
                    {"kernels", {{"level", info.isa}, {"fp32", info.isa_fp32}, {"int8", info.isa_int8},
                                 {"int4", info.isa_int4}, {"int4_kernel", info.int4_kernel}}}});
          }
        } else {
          train::configure_threads(threads);
          model::ViT vit{nullptr};
          try {
            vit = model::load_model(path);
          } catch (const core::InputError& err) {
            // e.g. a quantized file: LibTorch eager runs fp32 model files only.
            if (human) fmt::print("{:<40} {:<8} skipped: {}\n", path, engine, err.what());
            out.push_back({{"model", path}, {"engine", engine}, {"error", err.what()}});
            continue;
          }
          vit->eval();
          torch::NoGradGuard no_grad;
          const auto& c = vit->config();
          for (int b : batches) {
            auto x = torch::randn({b, c.in_channels, c.image_size, c.image_size});
            const Timing t = time_runs(f->warmup, f->runs, [&] { (void)vit->forward(x); });
            record(path, engine, b, t, {{"precision", "fp32"}});
          }
        }
      }
    }
    if (f->common.json) print_json(out);
  });
}

}  // namespace vitopt::cli
