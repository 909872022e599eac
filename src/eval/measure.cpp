// One model's measurement (see measure.h). Latency and throughput reuse real, preprocessed test
// images (the model's own eval transform), so timing sees the same inputs as accuracy.
#include "eval/measure.h"

#include <fmt/format.h>

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "data/loader.h"
#include "eval/engine.h"
#include "eval/metrics.h"
#include "io/model_counts.h"
#include "model/model_file.h"
#include "train/data_bridge.h"

namespace vitopt::eval {

namespace {

// Throughput at `batch`: one warm-up batch, then at least 3 timed batches and until 1 s has
// passed (at most 50). Energy is read around the timed batches.
report::Throughput time_throughput(Engine& engine, const std::vector<float>& images, int64_t batch,
                                   int64_t num_classes, EnergyMeter& energy,
                                   report::Energy* energy_out) {
  std::vector<float> out(static_cast<size_t>(batch * num_classes));
  engine.run(images.data(), batch, out.data());
  std::vector<double> ms;
  const double j0 = energy.available() ? energy.joules() : 0;
  const double d0 = energy.has_dram() ? energy.dram_joules() : 0;
  core::Stopwatch total;
  while (ms.size() < 3 || (total.seconds() < 1.0 && ms.size() < 50)) {
    core::Stopwatch clock;
    engine.run(images.data(), batch, out.data());
    ms.push_back(clock.millis());
  }
  const double j1 = energy.available() ? energy.joules() : 0;
  const double d1 = energy.has_dram() ? energy.dram_joules() : 0;
  report::Throughput t;
  t.batch = batch;
  t.runs = static_cast<int>(ms.size());
  const double sum_ms = std::accumulate(ms.begin(), ms.end(), 0.0);
  const double images_done = static_cast<double>(batch) * static_cast<double>(ms.size());
  t.images_per_s = images_done / std::max(sum_ms * 1e-3, 1e-12);
  t.ms_per_batch = percentile(ms, 50);
  energy_out->available = energy.available();
  energy_out->source = energy.source();
  energy_out->includes = energy.includes();
  if (energy.available()) energy_out->joules_per_image = (j1 - j0) / images_done;
  if (energy.has_dram()) energy_out->dram_joules_per_image = (d1 - d0) / images_done;
  return t;
}

}  // namespace

EngineOptions engine_options(const EvalRequest& req, int threads) {
  EngineOptions eo;
  eo.device = req.device;
  eo.threads = threads;
  eo.import_heads = req.import_heads;
  eo.import_mean = req.import_mean;
  eo.import_std = req.import_std;
  eo.merge_r = req.merge_r;
  return eo;
}

MeasuredModel measure_model(const std::filesystem::path& file, const std::string& label,
                            const EvalRequest& req, int threads, EnergyMeter& energy) {
  MeasuredModel out;
  auto& m = out.metrics;
  m.label = label;
  m.path = file.string();
  m.engine = req.engine;
  io::ImportHints hints;  // the header every engine reads (io::read_model_header)
  hints.num_heads = req.import_heads;
  if (!req.import_mean.empty()) hints.mean = req.import_mean;
  if (!req.import_std.empty()) hints.std = req.import_std;
  hints.merge_r = req.merge_r;
  const io::ModelHeader header = io::read_model_header(file, hints);
  m.precision = header.precision;
  auto& eff = m.efficiency;
  eff.memory.rss_reset = RssProbe::reset(&eff.memory.rss_note);

  auto engine = make_engine(req.engine, file, engine_options(req, threads));
  engine->reset_allocator_peak();
  const io::ViTConfig config = engine->config();
  m.config = config.to_json();
  const int64_t K = config.num_classes;

  const auto split = req.split == "train" ? data::Split::Train : data::Split::Test;
  auto ds = train::open_dataset_for(req.data, config, split, req.limit, req.seed);
  train::check_dataset_fits(*ds, config);
  if (ds->size() == 0)
    core::throw_input("--data {}: the {} split has no images", req.data, req.split);
  out.data.spec = req.data;
  out.data.split = req.split;
  out.data.description = ds->description();
  out.data.images = static_cast<int64_t>(ds->size());
  out.data.num_classes = static_cast<int>(K);
  auto names = header.class_names;
  if (static_cast<int64_t>(names.size()) != K) names = ds->class_names();
  if (static_cast<int64_t>(names.size()) != K) names.clear();
  out.data.class_names = names;

  // Data pass: logits (n, K) for every image; keep the first throughput_batch images for timing.
  data::LoaderOptions lo;
  lo.batch_size = req.batch_size;
  lo.workers = req.workers;
  lo.transform = train::eval_transform(config);
  data::DataLoader loader(ds, lo);
  const int64_t image_floats = int64_t{config.in_channels} * config.image_size * config.image_size;
  const int64_t T = req.throughput_batch;
  std::vector<float> logits, sample, batch_logits;
  logits.reserve(ds->size() * static_cast<size_t>(K));
  core::ProgressOptions popts;
  popts.quiet = req.quiet;
  core::Progress progress("eval " + label, loader.batches_per_epoch(), popts);
  loader.start_epoch(0);
  data::Batch batch;
  int64_t step = 0;
  while (loader.next(batch)) {
    batch_logits.resize(static_cast<size_t>(batch.size * K));
    engine->run(batch.images.data(), batch.size, batch_logits.data());
    logits.insert(logits.end(), batch_logits.begin(), batch_logits.end());
    out.labels.insert(out.labels.end(), batch.labels.begin(), batch.labels.end());
    const int64_t have = static_cast<int64_t>(sample.size()) / image_floats;
    const int64_t take = std::min(batch.size, T - have);
    if (take > 0)
      sample.insert(sample.end(), batch.images.begin(), batch.images.begin() + take * image_floats);
    progress.update(++step, static_cast<int64_t>(out.labels.size()));
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!std::isfinite(logits[i]))
      core::throw_input("{}: the model produced a non-finite logit ({}) for image {} of {}",
                        file.string(), logits[i], i / static_cast<size_t>(K), out.data.description);
  }
  // Fewer images than the throughput batch: repeat them.
  for (size_t i = 0; static_cast<int64_t>(sample.size()) < T * image_floats; ++i)
    sample.push_back(sample[i]);

  m.classification = classification_metrics(logits, out.labels, K, names);
  m.confidence = confidence_metrics(logits, out.labels, K);
  out.predictions = predictions(logits, K);
  progress.finish(
      fmt::format("{} images, top-1 {:.2f}%", out.labels.size(), 100 * m.classification.top1));

  eff.params = io::count_params(config);
  eff.params_per_block = io::block_params(config);
  eff.params_other = io::other_params(config);
  eff.nonzero_params = engine->nonzero_params();
  eff.macs = io::count_macs(config);
  eff.flops = 2 * eff.macs;
  eff.file_bytes = static_cast<int64_t>(std::filesystem::file_size(file));
  out.latency_image.assign(sample.begin(), sample.begin() + image_floats);
  eff.throughput = time_throughput(*engine, sample, T, K, energy, &eff.energy);
  eff.memory.peak_rss_bytes = RssProbe::peak_bytes();
  eff.memory.allocator_peak_bytes = engine->allocator_peak_bytes(&eff.memory.allocator_note);
  if (eff.memory.allocator_peak_bytes)
    eff.memory.allocator_note = "peak bytes of the engine's allocator";
  return out;
}

}  // namespace vitopt::eval
