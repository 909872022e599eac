// Post-training quantization (see ptq.h): fold -> quantize weights -> calibrate inputs on the
// weight-quantized model, so activation ranges see the weights they will really meet.
#include "compress/quant/ptq.h"

#include <fmt/format.h>

#include "compress/quant/calibration.h"
#include "compress/quant/quantizer.h"
#include "core/error.h"
#include "export/model_writer.h"
#include "model/edit/copy.h"

namespace vitopt::quant {

void validate(const PtqOptions& o) {
  io::quant_range(o.wbits, o.w_symmetric, "--wbits");
  if (o.abits) io::quant_range(*o.abits, o.a_symmetric, "--abits");
  for (const auto& [name, bits] : o.layer_wbits)
    io::quant_range(bits, o.w_symmetric, "bits of " + name);
  for (const auto* ob : {&o.w_observer, &o.a_observer}) {
    if (ob->kind == ObserverKind::Percentile && !(ob->percentile > 50 && ob->percentile <= 100))
      core::throw_input("--percentile: expected a value in (50, 100], got {}", ob->percentile);
    if (ob->mse_grid < 1) core::throw_input("MSE grid: expected >= 1, got {}", ob->mse_grid);
  }
  if (!(o.reparam_options.alpha >= 0 && o.reparam_options.alpha <= 1))
    core::throw_input("--reparam-alpha: expected a value in [0, 1], got {}",
                      o.reparam_options.alpha);
  if (o.attn_bits) {
    io::quant_range(*o.attn_bits, true, "--attn-bits");
    io::quant_range(o.prob_bits, true, "--prob-bits");
    if (o.prob_quantizer != "log2" && o.prob_quantizer != "uniform" && o.prob_quantizer != "auto")
      core::throw_input("--prob-quantizer: expected log2, uniform or auto, got '{}'",
                        o.prob_quantizer);
  }
  if (o.batch_size < 1) core::throw_input("calibration batch: expected >= 1, got {}", o.batch_size);
}

std::map<std::string, io::InputQuant> calibrate_inputs(model::ViT& weights_model,
                                                          const torch::Tensor& calib,
                                                          const PtqOptions& o,
                                                          nlohmann::json* report) {
  std::map<std::string, io::InputQuant> inputs;
  if (!o.abits) return inputs;
  const int bits = *o.abits;
  auto obs = observe_linear_inputs(weights_model, calib, o.batch_size, 4096, o.seed);
  for (const auto& [name, ob] : obs) {
    if (ob.empty()) continue;  // e.g. a Linear the forward never reached
    io::InputQuant q;
    q.bits = bits;
    q.symmetric = o.a_symmetric;
    q.dynamic = o.a_dynamic;
    if (!q.dynamic) {
      const auto [lo, hi] = ob.range(bits, q.symmetric, o.a_observer);
      const auto p = io::choose_qparams(lo, hi, bits, q.symmetric);
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
        const auto mm = io::choose_qparams(ob.min(), ob.max(), bits, q.symmetric);
        io::InputQuant plain = q;
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
  s.fp32 = edit::copy_model(source);
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
    const std::string wname = model::unit_weight_name(s.fp32, name);
    if (wname.empty()) continue;  // shares another block's weights: quantized as the owner's
    torch::NoGradGuard no_grad;
    io::WeightQuant spec;
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
    s.weights[wname] = std::move(qw);
  }
  if (o.abits) {
    QuantizedState weights_only = s;
    auto wq = simulate(weights_only);
    s.inputs = calibrate_inputs(wq, calib, o, &s.report);
  }
  if (o.attn_bits) {
    QuantizedState linears_only = s;
    auto lq = simulate(linears_only);
    s.attention = calibrate_attention(lq, calib, o, &s.report);
  }
  return s;
}

io::AttentionQuant calibrate_attention(model::ViT& inputs_model, const torch::Tensor& calib,
                                          const PtqOptions& o, nlohmann::json* report) {
  io::AttentionQuant aq;
  aq.bits = *o.attn_bits;
  aq.symmetric = true;  // q, k, v are centred; zero-points would only cost integer corrections
  aq.prob_bits = o.prob_bits;
  // Measured on vit-fmnist (BENCHMARKS.md): at 8 bits uniform codes lose nothing while log2's
  // factor-2 steps blur the dominant probabilities; at 4 bits log2 wins by keeping small ones.
  aq.prob_quantizer = o.prob_quantizer != "auto" ? o.prob_quantizer
                      : o.prob_bits <= 4         ? "log2"
                                                 : "uniform";
  auto obs = observe_attention_inputs(inputs_model, calib, o.batch_size, 4096, o.seed);
  const char* names[3] = {"q", "k", "v"};
  for (auto& [block, qkv] : obs) {
    io::AttentionQuant::Block b;
    io::InputQuant* dst[3] = {&b.q, &b.k, &b.v};
    for (int j = 0; j < 3; ++j) {
      const auto& ob = qkv[static_cast<size_t>(j)];
      if (ob.empty()) core::throw_internal("calibrate_attention: block {} was never run", block);
      const auto [lo, hi] = ob.range(aq.bits, aq.symmetric, o.a_observer);
      const auto p = io::choose_qparams(lo, hi, aq.bits, aq.symmetric);
      dst[j]->bits = aq.bits;
      dst[j]->symmetric = aq.symmetric;
      dst[j]->scale = p.scale;
      dst[j]->zero_point = p.zero_point;
      if (report != nullptr) {
        const auto sample = ob.sample();  // (S, D)
        auto& site = (*report)["attention"][std::to_string(block)][names[j]];
        site["min"] = ob.min();
        site["max"] = ob.max();
        site["scale"] = p.scale;
        site["sqnr_db"] = sqnr_db(sample, model::fake_quant_input(sample, *dst[j]));
      }
    }
    aq.blocks[block] = b;
  }
  if (report != nullptr) {
    // Probability error of the chosen quantizer vs the other, on the calibration attention maps.
    model::Trace trace;
    trace.record_attn = true;
    torch::NoGradGuard no_grad;
    inputs_model->eval();
    inputs_model->forward(calib.slice(0, 0, std::min<int64_t>(calib.size(0), 64)), &trace);
    for (size_t block = 0; block < trace.attn_probs.size(); ++block) {
      const auto& probs = trace.attn_probs[block];  // (B, H, N, N)
      if (!probs.defined()) continue;
      auto& site = (*report)["attention"][std::to_string(block)]["probs"];
      for (const char* kind : {"log2", "uniform"})
        site[std::string(kind) + "_sqnr_db"] =
            sqnr_db(probs, model::quantize_probs(probs, aq.prob_bits, kind));
    }
  }
  return aq;
}

model::ViT simulate(const QuantizedState& s) {
  auto fp32 = s.fp32;
  auto m = edit::copy_model(fp32);
  torch::NoGradGuard no_grad;
  auto params = m->named_parameters();
  for (const auto& [name, qw] : s.weights) {
    auto* p = params.find(name);
    if (p == nullptr) core::throw_internal("simulate: no parameter '{}'", name);
    p->copy_(qw.dequantize().view(p->sizes()));
  }
  model::apply_input_quant(m, s.inputs);
  if (s.attention) model::apply_attention_quant(m, &*s.attention);
  m->eval();
  return m;
}

void save_quantized(const QuantizedState& s, const std::filesystem::path& path,
                    const std::map<std::string, std::string>& extra_metadata) {
  io::QuantSpec spec;
  spec.inputs = s.inputs;
  spec.attention = s.attention;
  auto fp32 = s.fp32;
  exporter::save_quantized_model(fp32, s.weights, spec, path, extra_metadata);
}

}  // namespace vitopt::quant
