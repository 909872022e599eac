// Observers (see observer.h). The token sample is a bottom-k sample on random keys, i.e. uniform
// without replacement over every row seen, whatever the batch sizes.
#include "compress/quant/observer.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"

namespace vitopt::quant {
namespace {

// Squared fake-quant error per row of x (R, K) for per-row ranges lo, hi (R).
torch::Tensor row_error(const torch::Tensor& x, const torch::Tensor& lo, const torch::Tensor& hi,
                        int bits, bool symmetric) {
  auto [scale, zp] = model::choose_qparams(lo, hi, bits, symmetric);
  const auto s = scale.view({-1, 1});
  const auto z = zp.to(torch::kFloat).view({-1, 1});
  const QRange r = io::quant_range(bits, symmetric);
  auto fq = (torch::clamp(torch::round(x / s) + z, static_cast<double>(r.qmin),
                          static_cast<double>(r.qmax)) -
             z) *
            s;
  return (fq - x).pow(2).sum(1);  // (R)
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> observe_rows(const torch::Tensor& x_in, int bits,
                                                     bool symmetric, const ObserverOptions& o) {
  torch::NoGradGuard no_grad;
  io::quant_range(bits, symmetric);  // validates bits
  const auto x =
      x_in.detach().to(torch::kCPU, torch::kFloat).reshape({x_in.size(0), -1});  // (R, K)
  auto lo = x.amin(1), hi = x.amax(1);                                           // (R)
  switch (o.kind) {
    case ObserverKind::MinMax:
      return {lo, hi};
    case ObserverKind::Percentile: {
      if (!(o.percentile > 50 && o.percentile <= 100))
        core::throw_input("--percentile: expected a value in (50, 100], got {}", o.percentile);
      const double p = o.percentile / 100.0;
      return {torch::quantile(x, 1.0 - p, 1), torch::quantile(x, p, 1)};
    }
    case ObserverKind::Mse: {
      if (o.mse_grid < 1 || !(o.mse_min_ratio > 0 && o.mse_min_ratio <= 1))
        core::throw_input("MSE observer: expected grid >= 1 and min ratio in (0, 1], got {} and {}",
                          o.mse_grid, o.mse_min_ratio);
      auto best_err = row_error(x, lo, hi, bits, symmetric);
      auto best_ratio = torch::ones_like(best_err);
      for (int g = 0; g < o.mse_grid; ++g) {
        const double ratio = o.mse_grid == 1
                                 ? 1.0
                                 : o.mse_min_ratio + (1.0 - o.mse_min_ratio) * g / (o.mse_grid - 1);
        auto err = row_error(x, lo * ratio, hi * ratio, bits, symmetric);
        auto better = err < best_err;
        best_err = torch::where(better, err, best_err);
        best_ratio = torch::where(better, torch::full_like(best_ratio, ratio), best_ratio);
      }
      return {lo * best_ratio, hi * best_ratio};
    }
  }
  return {lo, hi};
}

ActivationObserver::ActivationObserver(int64_t max_rows, uint64_t seed)
    : max_rows_(max_rows), gen_(at::detail::createCPUGenerator(seed)) {}

void ActivationObserver::observe(const torch::Tensor& x_in) {
  torch::NoGradGuard no_grad;
  const auto x =
      x_in.detach().to(torch::kCPU, torch::kFloat).reshape({-1, x_in.size(-1)});  // (R, K)
  if (x.size(0) == 0) return;
  const auto bmin = x.amin(0), bmax = x.amax(0);  // (K)
  if (!cmin_.defined()) {
    cmin_ = bmin;
    cmax_ = bmax;
  } else {
    if (bmin.size(0) != cmin_.size(0))
      core::throw_internal("ActivationObserver: width changed from {} to {}", cmin_.size(0),
                           bmin.size(0));
    cmin_ = torch::minimum(cmin_, bmin);
    cmax_ = torch::maximum(cmax_, bmax);
  }
  rows_seen_ += x.size(0);
  // Bottom-k sample: every row gets a uniform key; keep the max_rows smallest keys overall.
  auto keys = torch::rand({x.size(0)}, gen_);
  kept_.push_back(torch::cat({keys.unsqueeze(1), x}, 1));  // (R, 1 + K)
  kept_rows_ += x.size(0);
  if (kept_rows_ > 2 * max_rows_) {
    auto all = torch::cat(kept_, 0);
    auto idx = std::get<1>(all.select(1, 0).topk(max_rows_, 0, /*largest=*/false));
    kept_ = {all.index_select(0, idx)};
    kept_rows_ = max_rows_;
  }
}

torch::Tensor ActivationObserver::sample() const {
  if (kept_.empty()) return torch::zeros({0, 0});
  auto all = torch::cat(kept_, 0);
  if (all.size(0) > max_rows_) {
    auto idx = std::get<1>(all.select(1, 0).topk(max_rows_, 0, false));
    all = all.index_select(0, idx);
  }
  return all.slice(1, 1).contiguous();  // drop the key column
}

float ActivationObserver::min() const { return cmin_.defined() ? cmin_.min().item<float>() : 0.0f; }
float ActivationObserver::max() const { return cmax_.defined() ? cmax_.max().item<float>() : 0.0f; }

std::pair<float, float> ActivationObserver::range(int bits, bool symmetric,
                                                  const ObserverOptions& o) const {
  if (empty()) core::throw_internal("ActivationObserver::range: nothing observed");
  if (o.kind == ObserverKind::MinMax) return {min(), max()};
  auto flat = sample().reshape({1, -1});  // the whole sample as one row
  auto [lo, hi] = observe_rows(flat, bits, symmetric, o);
  return {lo.item<float>(), hi.item<float>()};
}

}  // namespace vitopt::quant
