// Ranking rule as in eval/metrics.h: classes by descending logit, ties to the lower index; a
// top-k hit when fewer than k classes rank ahead of the label (NaN logits rank last).
#include "infer/accuracy.h"

#include <cmath>

#include "core/error.h"
#include "core/timer.h"
#include "data/loader.h"
#include "infer/classify.h"

namespace vitopt::infer {
namespace {

// Classes ranked ahead of `label` in one row of K logits.
int64_t rank_of(const float* row, int64_t num_classes, int64_t label) {
  const float mine = row[label];
  int64_t ahead = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    if (c == label) continue;
    const float v = row[c];
    if (std::isnan(v)) continue;
    if (std::isnan(mine) || v > mine || (v == mine && c < label)) ++ahead;
  }
  return ahead;
}

}  // namespace

nlohmann::json AccuracyResult::to_json() const {
  return {{"dataset", dataset},
          {"images", images},
          {"top1", top1},
          {"top5", top5},
          {"top1_correct", top1_correct},
          {"top5_correct", top5_correct},
          {"per_class_images", per_class_images},
          {"per_class_correct", per_class_correct},
          {"seconds", seconds},
          {"images_per_s", seconds > 0 ? static_cast<double>(images) / seconds : 0.0}};
}

AccuracyResult runtime_accuracy(runtime::Engine& engine, std::shared_ptr<data::Dataset> dataset,
                                const AccuracyOptions& options) {
  const runtime::ModelInfo& info = engine.info();
  if (dataset->num_classes() > info.num_classes)
    core::throw_input("{}: {} classes, but the model predicts {}", dataset->description(),
                      dataset->num_classes(), info.num_classes);
  dataset = data::limit_dataset(dataset, options.limit);
  data::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.workers = options.workers;
  lo.transform = eval_transform(info, {});
  data::DataLoader loader(dataset, lo);

  AccuracyResult r;
  r.dataset = dataset->description();
  const auto classes = static_cast<size_t>(info.num_classes);
  r.per_class_images.assign(classes, 0);
  r.per_class_correct.assign(classes, 0);
  core::Stopwatch sw;
  data::Batch batch;
  std::vector<float> logits;  // (B, K)
  loader.start_epoch(0);
  while (loader.next(batch)) {
    logits.resize(static_cast<size_t>(batch.size) * classes);
    engine.run(batch.images.data(), static_cast<int>(batch.size), logits.data());
    for (int64_t i = 0; i < batch.size; ++i) {
      const int64_t label = batch.labels[static_cast<size_t>(i)];
      const int64_t rank =
          rank_of(logits.data() + static_cast<size_t>(i) * classes, info.num_classes, label);
      r.per_class_images[static_cast<size_t>(label)] += 1;
      if (rank == 0) {
        r.top1_correct += 1;
        r.per_class_correct[static_cast<size_t>(label)] += 1;
      }
      if (rank < 5) r.top5_correct += 1;
    }
    r.images += batch.size;
  }
  r.seconds = sw.millis() / 1000.0;
  if (r.images > 0) {
    r.top1 = static_cast<double>(r.top1_correct) / static_cast<double>(r.images);
    r.top5 = static_cast<double>(r.top5_correct) / static_cast<double>(r.images);
  }
  return r;
}

}  // namespace vitopt::infer
