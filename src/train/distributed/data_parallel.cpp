// DataParallel (see data_parallel.h).
#include "train/distributed/data_parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vitopt::train::dist {
namespace {

// Samples [begin, begin + count) of `base`: one rank's share of a validation set.
class SliceDataset final : public data::Dataset {
 public:
  SliceDataset(std::shared_ptr<const data::Dataset> base, size_t begin, size_t count)
      : base_(std::move(base)), begin_(begin), count_(count) {}
  size_t size() const override { return count_; }
  int num_classes() const override { return base_->num_classes(); }
  int channels() const override { return base_->channels(); }
  int native_size() const override { return base_->native_size(); }
  data::Image image(size_t i) const override { return base_->image(begin_ + i); }
  int label(size_t i) const override { return base_->label(begin_ + i); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  std::string description() const override {
    return fmt::format("{} [images {}..{}]", base_->description(), begin_, begin_ + count_);
  }
  std::vector<float> default_mean() const override { return base_->default_mean(); }
  std::vector<float> default_std() const override { return base_->default_std(); }

 private:
  std::shared_ptr<const data::Dataset> base_;
  size_t begin_, count_;
};

}  // namespace

void DataParallel::sync_start(model::ViT& model, const std::vector<torch::Tensor>& extra,
                              AdamW& optimizer, TrainerState& state, bool resume) {
  if (!active()) return;
  // Same command on every rank? A different seed, batch or model would silently train garbage.
  const nlohmann::json mine = {{"fingerprint", state.fingerprint},
                               {"config", model->config().to_json()},
                               {"extra", extra.size()}};
  std::string root_text = mine.dump();
  comm_->broadcast_string(root_text);
  if (root_text != mine.dump())
    core::throw_input(
        "distributed: rank {} was started with other training options or another model than "
        "rank 0 (rank 0: {}, rank {}: {}); start every worker with the same command",
        rank(), root_text, rank(), mine.dump());
  std::vector<torch::Tensor> tensors;
  for (const auto& p : model->parameters()) tensors.push_back(p);
  for (const auto& b : model->buffers()) tensors.push_back(b);
  for (const auto& e : extra) tensors.push_back(e);
  if (resume) {
    std::string text = trainer_state_json(state).dump();
    text += "\n" + std::to_string(optimizer.step_count());
    comm_->broadcast_string(text);
    const auto nl = text.rfind('\n');
    state =
        trainer_state_from_json(nlohmann::json::parse(text.substr(0, nl)), "rank 0's checkpoint");
    const auto optim = optimizer.state();  // tensors that share the optimizer's storage
    for (const auto& [name, t] : optim) tensors.push_back(t);
    comm_->broadcast(tensors);
    optimizer.load_state(optim, std::stoll(text.substr(nl + 1)), "rank 0's checkpoint");
    return;
  }
  comm_->broadcast(tensors);
}

std::unique_ptr<GradientSync> DataParallel::gradient_sync(
    const std::vector<torch::Tensor>& params) {
  if (!active()) return nullptr;
  return std::make_unique<GradientSync>(*comm_, params);
}

void DataParallel::sum(std::vector<double>& values) {
  if (!active() || values.empty()) return;
  auto t = torch::tensor(values, torch::kFloat64);
  comm_->allreduce_sum(t);
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
}

std::shared_ptr<const data::Dataset> DataParallel::eval_shard(
    std::shared_ptr<const data::Dataset> full) const {
  if (!active()) return full;
  const size_t n = full->size();
  const auto w = static_cast<size_t>(world_size());
  const auto r = static_cast<size_t>(rank());
  const size_t begin = n * r / w, end = n * (r + 1) / w;
  return std::make_shared<SliceDataset>(std::move(full), begin, end - begin);
}

void DataParallel::reduce_eval(EvalResult& r) {
  if (!active()) return;
  const auto n = static_cast<double>(r.count);
  std::vector<double> v = {n, r.top1 * n, r.top5 * n, r.loss * n, r.seconds};
  sum(v);
  r.count = static_cast<int64_t>(std::llround(v[0]));
  const double total = std::max(v[0], 1.0);
  r.top1 = v[1] / total;
  r.top5 = v[2] / total;
  r.loss = v[3] / total;
  r.seconds = v[4] / world_size();  // the shards run side by side
  r.images_per_s = v[0] / std::max(r.seconds, 1e-9);
  r.logits = torch::Tensor();  // per-sample outputs stay on their ranks
  r.labels = torch::Tensor();
}

void DataParallel::verify_same_weights(model::ViT& model, const std::vector<torch::Tensor>& extra) {
  if (!active()) return;
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& p : model->named_parameters(true)) named.emplace_back(p.key(), p.value());
  for (size_t i = 0; i < extra.size(); ++i)
    named.emplace_back(fmt::format("extra[{}]", i), extra[i]);
  std::vector<torch::Tensor> copies;
  for (const auto& [name, t] : named) copies.push_back(t.detach().clone());
  comm_->broadcast(copies);
  for (size_t i = 0; i < named.size(); ++i) {
    if (!torch::equal(copies[i], named[i].second.detach()))
      core::throw_internal(
          "distributed: after training, rank {}'s '{}' differs from rank 0's (max |diff| {}): "
          "the ranks did not train the same model",
          rank(), named[i].first,
          (copies[i] - named[i].second.detach()).abs().max().item<double>());
  }
}

void DataParallel::barrier() {
  if (active()) comm_->barrier();
}

}  // namespace vitopt::train::dist
