// Accuracy on a split through train::evaluate, plus top-3 from the kept logits.
#include "eval/accuracy.h"

#include <algorithm>

#include "data/loader.h"
#include "train/data_bridge.h"
#include "train/evaluate.h"

namespace vitopt::eval {

nlohmann::json SplitAccuracy::to_json() const {
  return {{"images", count}, {"top1", top1}, {"top3", top3}, {"top5", top5}, {"loss", loss}};
}

SplitAccuracy accuracy(model::ViT& model, std::shared_ptr<const data::Dataset> dataset,
                       const AccuracyOptions& o) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.workers = o.workers;
  lo.transform = train::eval_transform(model->config());
  data::DataLoader loader(std::move(dataset), lo);
  train::EvalOptions eo;
  eo.device = o.device;
  eo.keep_logits = true;
  eo.quiet = o.quiet;
  eo.label = o.label;
  const auto r = train::evaluate(model, loader, eo);
  SplitAccuracy a;
  a.count = r.count;
  a.top1 = r.top1;
  a.top5 = r.top5;
  a.loss = r.loss;
  if (r.count > 0) {
    const int64_t k = std::min<int64_t>(3, r.logits.size(1));
    const auto top = std::get<1>(r.logits.topk(k, 1));  // (count, k)
    a.top3 =
        top.eq(r.labels.unsqueeze(1)).any(1).sum().item<double>() / static_cast<double>(r.count);
    const auto pred = r.logits.argmax(1);  // (count)
    for (int64_t c = 0; c < r.logits.size(1); ++c) {
      const auto mask = r.labels.eq(c);
      const auto n = mask.sum().item<int64_t>();
      a.per_class_top1.push_back(
          n ? pred.masked_select(mask).eq(c).sum().item<double>() / static_cast<double>(n) : 0.0);
    }
  }
  return a;
}

SplitAccuracy split_accuracy(model::ViT& model, const std::string& data, data::Split split,
                             size_t limit, const AccuracyOptions& options) {
  const auto& config = model->config();
  auto ds = train::open_dataset_for(data, config, split, limit, 0);
  train::check_dataset_fits(*ds, config);
  return accuracy(model, std::move(ds), options);
}

}  // namespace vitopt::eval
