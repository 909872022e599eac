// Fine-tuning wrapper: fractional epochs through a rotating window view of the training set,
// then train::train_model with the caller's after_step hook (masks, schedules).
#include "compress/prune/finetune.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "data/dataset.h"
#include "train/data_bridge.h"
#include "train/trainer.h"

namespace vitopt::prune {
namespace {

// `count` samples of `base` starting at `offset`, wrapping around.
class WindowDataset : public data::Dataset {
 public:
  WindowDataset(std::shared_ptr<data::Dataset> base, size_t offset, size_t count)
      : base_(std::move(base)), offset_(offset % base_->size()), count_(count) {}
  size_t size() const override { return count_; }
  int num_classes() const override { return base_->num_classes(); }
  int channels() const override { return base_->channels(); }
  int native_size() const override { return base_->native_size(); }
  data::Image image(size_t i) const override { return base_->image(map(i)); }
  int label(size_t i) const override { return base_->label(map(i)); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  std::string description() const override {
    return fmt::format("{} [window of {} from {}]", base_->description(), count_, offset_);
  }
  std::vector<float> default_mean() const override { return base_->default_mean(); }
  std::vector<float> default_std() const override { return base_->default_std(); }

 private:
  size_t map(size_t i) const { return (offset_ + i) % base_->size(); }
  std::shared_ptr<data::Dataset> base_;
  size_t offset_, count_;
};

struct Plan {
  int passes;     // train_model epochs
  size_t window;  // images per pass
};

Plan plan_for(size_t train_size, double epochs) {
  if (!(epochs > 0) || !std::isfinite(epochs))
    core::throw_input("--finetune-epochs: expected a positive number, got {}", epochs);
  const int passes = static_cast<int>(std::ceil(epochs - 1e-9));
  const auto window = static_cast<size_t>(
      std::llround(static_cast<double>(train_size) * epochs / static_cast<double>(passes)));
  return {passes, std::min(train_size, std::max<size_t>(window, 1))};
}

}  // namespace

FinetuneOptions job_finetune_options(FinetuneOptions o, const std::string& data, uint64_t seed,
                                     const std::string& device, bool quiet,
                                     const std::filesystem::path& work_dir) {
  o.data = data;
  o.seed = seed;
  o.device = device;
  o.quiet = quiet;
  if (o.work_dir.empty()) o.work_dir = work_dir;
  return o;
}

size_t finetune_train_size(const FinetuneOptions& o, const io::ViTConfig& config) {
  return train::open_dataset_for(o.data, config, data::Split::Train, o.limit, o.seed)->size();
}

int64_t finetune_steps(const FinetuneOptions& o, size_t train_size, double epochs) {
  const auto p = plan_for(train_size, epochs);
  return static_cast<int64_t>(p.window / static_cast<size_t>(o.batch_size)) * p.passes;
}

nlohmann::json finetune(model::ViT& model, const FinetuneOptions& o, double epochs, int round,
                        std::function<void(model::ViT&, int64_t)> after_step) {
  const auto& config = model->config();
  auto full = train::open_dataset_for(o.data, config, data::Split::Train, o.limit, o.seed);
  const auto p = plan_for(full->size(), epochs);
  std::shared_ptr<data::Dataset> ds = full;
  if (p.window < full->size())
    ds = std::make_shared<WindowDataset>(full, static_cast<size_t>(round) * p.window, p.window);
  train::TrainOptions t;
  t.epochs = p.passes;
  t.batch_size = o.batch_size;
  t.lr = o.lr;
  t.min_lr = o.min_lr;
  t.weight_decay = o.weight_decay;
  t.warmup_epochs = o.warmup_fraction * p.passes;
  t.label_smoothing = o.label_smoothing;
  t.crop_padding = 0;  // like the standard recipe; pruning recovery needs no new augmentation
  t.seed = o.seed + static_cast<uint64_t>(round);
  t.workers = o.workers;
  t.quiet = o.quiet;
  t.device = o.device;
  t.out_dir = o.work_dir / fmt::format("finetune-{}", round);
  t.after_step = std::move(after_step);
  if (o.configure) o.configure(t);
  const auto r = train::train_model(model, ds, nullptr, t);
  model->eval();
  return r.history;
}

}  // namespace vitopt::prune
