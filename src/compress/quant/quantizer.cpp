// STE and LSQ fake quantizers, SQNR, and option parsing (see quantizer.h).
#include "compress/quant/quantizer.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace vitopt::quant {

torch::Tensor fake_quant_ste(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, QRange range) {
  const auto s = scale.detach().to(x.options());
  const auto z = zero_point.detach().to(x.options());
  torch::Tensor fq;
  {
    torch::NoGradGuard no_grad;
    fq = (torch::clamp(torch::round(x / s) + z, static_cast<double>(range.qmin),
                       static_cast<double>(range.qmax)) -
          z) *
         s;
  }
  if (!x.requires_grad()) return fq;
  // Clipped STE: the clamp passes gradient only inside the range; the detached difference makes
  // the forward value exactly fq.
  const auto lo = (static_cast<double>(range.qmin) - z) * s;
  const auto hi = (static_cast<double>(range.qmax) - z) * s;
  const auto xc = torch::max(torch::min(x, hi), lo);
  return xc + (fq - xc).detach();
}

torch::Tensor fake_quant_lsq(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, QRange range, double grad_scale) {
  const auto z = zero_point.detach().to(x.options());
  // Gradient scaling: forward value s, backward d/ds multiplied by grad_scale.
  const auto s = (scale - scale * grad_scale).detach() + scale * grad_scale;
  auto v =
      torch::clamp(x / s + z, static_cast<double>(range.qmin), static_cast<double>(range.qmax));
  // rne(x/s + z) == rne(x/s) + z because z is an integer, so this equals the format's rounding.
  auto q = v + (torch::round(v) - v).detach();
  return (q - z) * s;
}

double lsq_grad_scale(int64_t elements_per_scale, QRange range) {
  return 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(elements_per_scale, 1)) *
                         static_cast<double>(range.qmax));
}

double sqnr_db(const torch::Tensor& x, const torch::Tensor& x_hat) {
  const double signal = x.to(torch::kDouble).pow(2).sum().item<double>();
  const double noise =
      (x.to(torch::kDouble) - x_hat.to(torch::kDouble)).pow(2).sum().item<double>();
  if (noise == 0) return std::numeric_limits<double>::infinity();
  if (signal == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

ObserverKind parse_observer(const std::string& name, const std::string& flag) {
  if (name == "minmax") return ObserverKind::MinMax;
  if (name == "percentile") return ObserverKind::Percentile;
  if (name == "mse") return ObserverKind::Mse;
  core::throw_input("{}: expected one of minmax, percentile, mse, got '{}'", flag, name);
}

std::string observer_name(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::MinMax:
      return "minmax";
    case ObserverKind::Percentile:
      return "percentile";
    case ObserverKind::Mse:
      return "mse";
  }
  return "?";
}

bool parse_scheme(const std::string& name, const std::string& flag) {
  if (name == "sym") return true;
  if (name == "asym") return false;
  core::throw_input("{}: expected sym or asym, got '{}'", flag, name);
}

bool parse_channel_granularity(const std::string& name, const std::string& flag) {
  if (name == "channel") return true;
  if (name == "tensor") return false;
  core::throw_input("{}: expected channel or tensor, got '{}'", flag, name);
}

}  // namespace vitopt::quant
