#include "compress/circuits/runtime_metric.h"

#include <unistd.h>

#include <algorithm>
#include <string>

#include "compress/circuits/circuit_slim.h"
#include "core/error.h"
#include "export/model_writer.h"
#include "vitopt/runtime.h"

namespace vitopt::circuits {

bool RuntimeMetric::supports(const AblatedModel& ablated) {
  return ablated.ablation() != Ablation::Resample;
}

RuntimeMetric::RuntimeMetric(AblatedModel& ablated, const std::vector<train::CalibBatch>& batches,
                             std::filesystem::path scratch_dir, int threads)
    : ablated_(ablated),
      scratch_(std::move(scratch_dir) /
               (".acdc_trial_" + std::to_string(::getpid()) + ".safetensors")),
      threads_(threads) {
  if (!supports(ablated))
    core::throw_internal("RuntimeMetric: resample ablation cannot be folded into a model");
  std::vector<torch::Tensor> xs, ys;
  for (const auto& b : batches) {
    xs.push_back(b.x);
    ys.push_back(b.y);
  }
  const auto x = torch::cat(xs).to(torch::kFloat32).contiguous();
  images_ = x.size(0);
  pixels_.assign(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
  labels_ = torch::cat(ys);
  full_log_probs_ = torch::log_softmax(logits(Circuit::full(ablated.model()->config())), 1);
}

torch::Tensor RuntimeMetric::logits(const Circuit& circuit) {
  auto slim = slim_circuit(ablated_, circuit);
  exporter::save_model(slim, scratch_);
  runtime::RuntimeOptions o;
  o.threads = threads_;
  auto engine = runtime::Engine::load(scratch_, o);
  std::filesystem::remove(scratch_);
  const int64_t classes = ablated_.model()->config().num_classes;
  const int64_t per_image = static_cast<int64_t>(pixels_.size()) / images_;
  auto out = torch::empty({images_, classes}, torch::kFloat32);
  // In chunks: a new engine allocates (and zeroes) its activation buffers for the largest batch
  // it runs, and with a fresh engine per trial that cost grows with the batch.
  constexpr int64_t kChunk = 32;
  for (int64_t i = 0; i < images_; i += kChunk) {
    const int64_t n = std::min(kChunk, images_ - i);
    engine->run(pixels_.data() + i * per_image, static_cast<int>(n),
                out.data_ptr<float>() + i * classes);
  }
  return out;
}

double RuntimeMetric::operator()(const Circuit& circuit) {
  torch::NoGradGuard no_grad;
  const auto sum =
      circuit_metric_sum(logits(circuit), full_log_probs_, labels_, ablated_.task_loss());
  return sum.item<double>() / static_cast<double>(images_);
}

}  // namespace vitopt::circuits
