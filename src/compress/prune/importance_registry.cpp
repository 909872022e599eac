// The criterion registry and the Importance defaults. To add a criterion: write
// importance_<name>.cpp with a make_<name>_importance() factory and add one line to kRegistry.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <functional>
#include <limits>

#include "compress/prune/importance.h"
#include "core/error.h"

namespace vitopt::prune {

// Factories, one per importance_<name>.cpp.
std::unique_ptr<Importance> make_l2_importance();
std::unique_ptr<Importance> make_taylor_importance();
std::unique_ptr<Importance> make_loss_importance();

namespace {

namespace F = torch::nn::functional;

struct Entry {
  const char* name;
  std::function<std::unique_ptr<Importance>()> make;
};
const std::vector<Entry> kRegistry = {
    {"l2", make_l2_importance},          // L2 of a group's weights; |w| (magnitude) for one weight
    {"taylor", make_taylor_importance},  // first-order |dL/dgate|; |w * dL/dw| (sensitivity)
    {"loss", make_loss_importance},      // measured loss increase when a group is removed
};

// Eval mode during `fn`, the previous mode afterwards.
template <typename Fn>
auto in_eval_mode(model::ViT& model, Fn fn) {
  const bool was_training = model->is_training();
  model->eval();
  auto out = fn();
  model->train(was_training);
  return out;
}

}  // namespace

GroupScores GroupScores::empty(int depth) {
  GroupScores s;
  s.heads.assign(depth, {});
  s.neurons.assign(depth, {});
  s.attn.assign(depth, std::numeric_limits<double>::quiet_NaN());
  s.mlp.assign(depth, std::numeric_limits<double>::quiet_NaN());
  return s;
}

TensorMap Importance::weight_scores(model::ViT&, const std::vector<CalibBatch>&) {
  core::throw_input("criterion '{}' scores groups, not single weights (weight criteria: {})",
                    name(), fmt::join(weight_importance_names(), ", "));
}

GroupScores Importance::group_scores(model::ViT&, ScoreKinds, const std::vector<CalibBatch>&,
                                     bool) {
  core::throw_input(
      "criterion '{}' scores single weights, not heads/neurons/blocks (group "
      "criteria: {})",
      name(), fmt::join(group_importance_names(), ", "));
}

std::unique_ptr<Importance> make_importance(const std::string& name) {
  for (const auto& e : kRegistry)
    if (name == e.name) return e.make();
  core::throw_input("--criterion: expected one of [{}], got '{}'",
                    fmt::join(importance_names(), ", "), name);
}

std::vector<std::string> importance_names() {
  std::vector<std::string> out;
  for (const auto& e : kRegistry) out.push_back(e.name);
  return out;
}

std::vector<std::string> weight_importance_names() {
  std::vector<std::string> out;
  for (const auto& e : kRegistry)
    if (e.make()->scores_weights()) out.push_back(e.name);
  return out;
}

std::vector<std::string> group_importance_names() {
  std::vector<std::string> out;
  for (const auto& e : kRegistry)
    if (e.make()->scores_groups()) out.push_back(e.name);
  return out;
}

GroupScores group_scores(model::ViT& model, const std::string& criterion, ScoreKinds kinds,
                         const std::vector<CalibBatch>& calib, bool quiet) {
  auto imp = make_importance(criterion);
  return in_eval_mode(model, [&] { return imp->group_scores(model, kinds, calib, quiet); });
}

TensorMap weight_scores(model::ViT& model, const std::string& criterion,
                        const std::vector<CalibBatch>& calib) {
  auto imp = make_importance(criterion);
  return in_eval_mode(model, [&] { return imp->weight_scores(model, calib); });
}

int64_t calibration_count(const std::vector<CalibBatch>& calib) {
  int64_t n = 0;
  for (const auto& b : calib) n += b.x.size(0);
  if (n == 0) core::throw_input("--calib-images: the calibration set is empty");
  return n;
}

double calibration_loss(model::ViT& model, const std::vector<CalibBatch>& calib,
                        model::Trace* trace) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (const auto& b : calib)
    sum += F::cross_entropy(model->forward(b.x, trace), b.y,
                            F::CrossEntropyFuncOptions().reduction(torch::kSum))
               .item<double>();
  return sum / static_cast<double>(calibration_count(calib));
}

}  // namespace vitopt::prune
