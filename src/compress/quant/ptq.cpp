// Post-training quantization (see ptq.h): fold -> quantize weights -> calibrate inputs on the
// weight-quantized model, so activation ranges see the weights they will really meet.
#include "compress/quant/ptq.h"

#include <fmt/format.h>

#include "compress/quant/calibration.h"
#include "compress/quant/quantizer.h"
#include "core/error.h"

namespace vitopt::quant {

void validate(const PtqOptions& o) {
  model::quant_range(o.wbits, o.w_symmetric, "--wbits");
  if (o.abits) model::quant_range(*o.abits, o.a_symmetric, "--abits");
  for (const auto& [name, bits] : o.layer_wbits)
    model::quant_range(bits, o.w_symmetric, "bits of " + name);
  for (const auto* ob : {&o.w_observer, &o.a_observer}) {
    if (ob->kind == ObserverKind::Percentile && !(ob->percentile > 50 && ob->percentile <= 100))
      core::throw_input("--percentile: expected a value in (50, 100], got {}", ob->percentile);
    if (ob->mse_grid < 1) core::throw_input("MSE grid: expected >= 1, got {}", ob->mse_grid);
  }
  if (!(o.reparam_options.alpha >= 0 && o.reparam_options.alpha <= 1))
    core::throw_input("--reparam-alpha: expected a value in [0, 1], got {}",
                      o.reparam_options.alpha);
  if (o.batch_size < 1) core::throw_input("calibration batch: expected >= 1, got {}", o.batch_size);
}

std::map<std::string, model::InputQuant> calibrate_inputs(model::ViT& weights_model,
                                                          const torch::Tensor& calib,
                                                          const PtqOptions& o,
                                                          nlohmann::json* report) {
  std::map<std::string, model::InputQuant> inputs;
  if (!o.abits) return inputs;
  const int bits = *o.abits;
  auto obs = observe_linear_inputs(weights_model, calib, o.batch_size, 4096, o.seed);
  for (const auto& [name, ob] : obs) {
    if (ob.empty()) continue;  // e.g. a Linear the forward never reached
    model::InputQuant q;
    q.bits = bits;
    q.symmetric = o.a_symmetric;
    q.dynamic = o.a_dynamic;
    if (!q.dynamic) {
      const auto [lo, hi] = ob.range(bits, q.symmetric, o.a_observer);
      const auto p = model::choose_qparams(lo, hi, bits, q.symmetric);
      q.scale = p.scale;
      q.zero_point = p.zero_point;
    }
    inputs[name] = q;
    if (report != nullptr) {
      const auto sample = ob.sample();  // (S, K)
      auto& site = (*report)["layers"][name];
      site["input_min"] = ob.min();
      site["input_max"] = ob.max();
      site["input_sqnr_db"] = sqnr_db(sample, model::fake_quant_input(sample, q));
      if (!q.dynamic) {
        site["input_scale"] = q.scale;
        site["input_zero_point"] = q.zero_point;
        // What the plain min-max range would have given, to show what the observer buys.
        const auto mm = model::choose_qparams(ob.min(), ob.max(), bits, q.symmetric);
        model::InputQuant plain = q;
        plain.scale = mm.scale;
        plain.zero_point = mm.zero_point;
        site["input_sqnr_minmax_db"] = sqnr_db(sample, model::fake_quant_input(sample, plain));
      }
    }
  }
  return inputs;
}

QuantizedState run_ptq(model::ViT& source, const torch::Tensor& calib, const PtqOptions& o) {
  validate(o);
  QuantizedState s;
  s.fp32 = copy_model(source);
  s.fp32->eval();
  if (o.reparam) {
    auto obs = observe_linear_inputs(s.fp32, calib, o.batch_size, 16, o.seed);  // channel ranges
    s.report["reparam"] = fold_layernorm_scales(s.fp32, obs, o.reparam_options);
  }
  const auto names = model::quantizable_linears(s.fp32);
  for (const auto& name : o.layer_wbits) {
    if (std::find(names.begin(), names.end(), name.first) == names.end())
      core::throw_input("bit allocation: no quantizable Linear '{}' in this model", name.first);
  }
  for (const auto& name : names) {
    torch::NoGradGuard no_grad;
    model::WeightQuant spec;
    spec.bits = o.layer_wbits.count(name) ? o.layer_wbits.at(name) : o.wbits;
    spec.symmetric = o.w_symmetric;
    spec.per_channel = o.w_per_channel;
    const auto w = linear_weight(s.fp32, name).detach();  // (out, in)
    const auto rows = spec.per_channel ? w : w.reshape({1, -1});
    auto [lo, hi] = observe_rows(rows, spec.bits, spec.symmetric, o.w_observer);
    auto qw = model::quantize_weight(w, spec, lo, hi);
    auto& layer = s.report["layers"][name];
    layer["weight_bits"] = spec.bits;
    layer["weight_sqnr_db"] = sqnr_db(w, qw.dequantize());
    layer["weight_params"] = w.numel();
    s.weights[weight_name(name)] = std::move(qw);
  }
  if (o.abits) {
    QuantizedState weights_only = s;
    auto wq = simulate(weights_only);
    s.inputs = calibrate_inputs(wq, calib, o, &s.report);
  }
  return s;
}

model::ViT simulate(const QuantizedState& s) {
  auto fp32 = s.fp32;
  auto m = copy_model(fp32);
  torch::NoGradGuard no_grad;
  auto params = m->named_parameters();
  for (const auto& [name, qw] : s.weights) {
    auto* p = params.find(name);
    if (p == nullptr) core::throw_internal("simulate: no parameter '{}'", name);
    p->copy_(qw.dequantize().view(p->sizes()));
  }
  model::apply_input_quant(m, s.inputs);
  m->eval();
  return m;
}

void save_quantized(const QuantizedState& s, const std::filesystem::path& path,
                    const std::map<std::string, std::string>& extra_metadata) {
  model::QuantSpec spec;
  spec.inputs = s.inputs;
  auto fp32 = s.fp32;
  model::save_quantized_model(fp32, s.weights, spec, path, extra_metadata);
}

}  // namespace vitopt::quant
