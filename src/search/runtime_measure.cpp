// Runtime measurements of candidate files (see runtime_measure.h).
#include "search/runtime_measure.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "data/range_dataset.h"
#include "train/data_bridge.h"
#include "vitopt/runtime.h"

namespace vitopt::search {

HeldOut held_out_split(const std::string& data, const io::ViTConfig& config, size_t count,
                       size_t reserved, int64_t batch, uint64_t seed) {
  if (count == 0) core::throw_input("--holdout-images: expected >= 1, got 0");
  auto all = train::open_dataset_for(data, config, data::Split::Train, 0, seed);
  train::check_dataset_fits(*all, config);
  if (all->size() < count + reserved)
    core::throw_input(
        "--holdout-images: {} has {} images; {} held out + {} for calibration do "
        "not fit",
        all->description(), all->size(), count, reserved);
  auto tail = data::tail_dataset(all, count);
  data::LoaderOptions lopts;
  lopts.batch_size = batch;
  lopts.workers = 1;
  lopts.transform = train::eval_transform(config);
  HeldOut h;
  h.description = tail->description();
  data::DataLoader loader(tail, lopts);
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
    h.count += static_cast<size_t>(b.size);
    h.batches.push_back(b);  // a copy: the loader reuses its buffers
  }
  return h;
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

Metrics measure_file(const std::filesystem::path& path, const HeldOut& held_out,
                     const MeasureOptions& o) {
  if (o.batch < 1 || o.runs < 1) core::throw_input("search: latency batch and runs must be >= 1");
  Metrics m;
  m["size-mb"] = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  runtime::RuntimeOptions ro;
  ro.threads = o.threads;
  // Peak memory: what loading and one batch of the latency size allocate.
  runtime::reset_peak_allocated_bytes();
  const size_t before = runtime::allocated_bytes();
  auto engine = runtime::Engine::load(path, ro);
  const auto& info = engine->info();
  m["params"] = static_cast<double>(info.params);
  m["macs"] = static_cast<double>(info.macs);
  const size_t image = static_cast<size_t>(info.in_channels) * info.image_size * info.image_size;
  std::vector<float> input(image * static_cast<size_t>(o.batch), 0.0f);
  if (!held_out.batches.empty()) {  // real pixels, repeated: the kernels' speed is data-blind
    const auto& src = held_out.batches.front().images;
    for (size_t i = 0; i < input.size(); ++i) input[i] = src[i % src.size()];
  }
  std::vector<float> logits(static_cast<size_t>(info.num_classes) * o.batch);
  engine->run(input.data(), o.batch, logits.data());
  m["memory-mb"] = static_cast<double>(runtime::peak_allocated_bytes() - before) / 1e6;
  for (int i = 0; i < o.warmup; ++i) engine->run(input.data(), o.batch, logits.data());
  std::vector<double> ms;
  for (int i = 0; i < o.runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    engine->run(input.data(), o.batch, logits.data());
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  m["latency-ms"] = median(ms);
  m["latency-iqr-ms"] = quantile(ms, 0.75) - quantile(ms, 0.25);
  if (held_out.count > 0) {
    size_t correct = 0;
    std::vector<float> out;
    for (const auto& b : held_out.batches) {
      out.resize(static_cast<size_t>(info.num_classes) * b.size);
      engine->run(b.images.data(), static_cast<int>(b.size), out.data());
      for (int64_t i = 0; i < b.size; ++i) {
        const float* row = out.data() + i * info.num_classes;
        const auto pred = std::max_element(row, row + info.num_classes) - row;
        correct += pred == b.labels[static_cast<size_t>(i)];
      }
    }
    m["top1"] = static_cast<double>(correct) / static_cast<double>(held_out.count);
  }
  return m;
}

}  // namespace vitopt::search
