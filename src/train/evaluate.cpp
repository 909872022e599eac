#include "train/evaluate.h"

#include <fmt/format.h>

#include "core/progress.h"
#include "train/data_bridge.h"

namespace vitopt::train {

EvalResult evaluate(model::ViT& model, data::DataLoader& loader, const EvalOptions& options) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  core::ProgressOptions popts;
  popts.quiet = options.quiet;
  core::Progress progress(options.label, loader.batches_per_epoch(), popts);
  core::Stopwatch clock;
  EvalResult r;
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0, step = 0;
  std::vector<torch::Tensor> all_logits, all_labels;
  loader.start_epoch(0);
  data::Batch batch;
  while (loader.next(batch)) {
    auto x = batch_images(batch, options.device);
    auto y = batch_labels(batch, options.device);
    auto logits = model->forward(x);  // (B, classes)
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    auto topk = std::get<1>(logits.topk(k, 1));  // (B, k)
    auto hits = topk.eq(y.unsqueeze(1));
    correct1 += hits.select(1, 0).sum().item<int64_t>();
    correct5 += hits.any(1).sum().item<int64_t>();
    r.count += batch.size;
    if (options.keep_logits) {
      all_logits.push_back(logits.to(torch::kCPU).clone());
      all_labels.push_back(y.to(torch::kCPU).clone());
    }
    progress.update(++step, r.count,
                    fmt::format("top1 {:.2f}%", 100.0 * static_cast<double>(correct1) /
                                                    static_cast<double>(r.count)));
  }
  r.seconds = clock.seconds();
  if (r.count > 0) {
    const auto n = static_cast<double>(r.count);
    r.top1 = static_cast<double>(correct1) / n;
    r.top5 = static_cast<double>(correct5) / n;
    r.loss = loss_sum / n;
    r.images_per_s = n / std::max(r.seconds, 1e-9);
  }
  if (options.keep_logits && !all_logits.empty()) {
    r.logits = torch::cat(all_logits);
    r.labels = torch::cat(all_labels);
  }
  progress.finish(fmt::format("{} images: top1 {:.2f}% top5 {:.2f}% loss {:.4f} ({:.0f} img/s)",
                              r.count, 100 * r.top1, 100 * r.top5, r.loss, r.images_per_s));
  if (was_training) model->train();
  return r;
}

}  // namespace vitopt::train
