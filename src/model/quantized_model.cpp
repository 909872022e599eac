// Quantized models on the LibTorch side: tensor quantizer arithmetic, tensors <-> io's plain arrays,
// hooks, and reading a quantized file back into a ViT that simulates the integer model exactly.
// See quantized_model.h and docs/model-format.md; every rounding here is round-half-to-even in
// float32 (torch::round), as in io::choose_qparams.
#include "model/quantized_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "core/error.h"
#include "io/metadata_keys.h"
#include "io/tensor_layout.h"
#include "model/attention_quant.h"
#include "model/model_file.h"

namespace vitopt::model {
namespace {

// x (..., K) float -> x̂ with per-broadcast scale s and zero point z (both float tensors).
torch::Tensor fake_quant_float(const torch::Tensor& x, const torch::Tensor& s,
                               const torch::Tensor& z, io::QRange r) {
  // Codes are integers below 2^16, so rne(x/s) + z, the clamp and (q - z) are exact in float32.
  auto q = torch::clamp(torch::round(x / s) + z, static_cast<double>(r.qmin),
                        static_cast<double>(r.qmax));
  return (q - z) * s;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> choose_qparams(const torch::Tensor& lo_in,
                                                       const torch::Tensor& hi_in, int bits,
                                                       bool symmetric) {
  const io::QRange r = io::quant_range(bits, symmetric);
  auto lo = lo_in.to(torch::kFloat).clamp_max(0.0);  // (R)
  auto hi = hi_in.to(torch::kFloat).clamp_min(0.0);  // (R)
  torch::Tensor scale = symmetric ? torch::maximum(-lo, hi) / static_cast<float>(r.qmax)
                                  : (hi - lo) / static_cast<float>(r.qmax - r.qmin);
  const auto bad = scale.isfinite().logical_not().logical_or(scale <= 0);  // zero range
  scale = torch::where(bad, torch::ones_like(scale), scale);
  torch::Tensor zp = torch::zeros(scale.sizes(), torch::TensorOptions().dtype(torch::kLong));
  if (!symmetric) {
    zp = (static_cast<float>(r.qmin) - torch::round(lo / scale))
             .clamp(r.qmin, r.qmax)
             .to(torch::kLong);
  }
  return {scale, zp};
}

torch::Tensor quantize_codes(const torch::Tensor& x, const torch::Tensor& scale,
                             const torch::Tensor& zero_point, io::QRange range) {
  auto q =
      torch::round(x.to(torch::kFloat) / scale.to(torch::kFloat)) + zero_point.to(torch::kFloat);
  return q.clamp(static_cast<double>(range.qmin), static_cast<double>(range.qmax)).to(torch::kLong);
}

torch::Tensor dequantize_codes(const torch::Tensor& q, const torch::Tensor& scale,
                               const torch::Tensor& zero_point) {
  return (q - zero_point).to(torch::kFloat) * scale.to(torch::kFloat);
}

torch::Tensor QuantizedWeight::dequantize() const {
  // scale/zero_point (out) or (1) -> (out, 1) rows.
  return dequantize_codes(codes, scale.view({-1, 1}), zero_point.view({-1, 1}));
}

QuantizedWeight quantize_weight(const torch::Tensor& weight_in, const io::WeightQuant& spec,
                                torch::Tensor lo, torch::Tensor hi) {
  torch::NoGradGuard no_grad;
  const auto w = weight_in.detach().to(torch::kCPU, torch::kFloat).reshape({weight_in.size(0), -1});
  if (!lo.defined()) lo = spec.per_channel ? w.amin(1) : w.min().view({1});
  if (!hi.defined()) hi = spec.per_channel ? w.amax(1) : w.max().view({1});
  const int64_t rows = spec.per_channel ? w.size(0) : 1;
  if (lo.numel() != rows || hi.numel() != rows) {
    core::throw_internal("quantize_weight: expected {} clip ranges, got {} and {}", rows,
                         lo.numel(), hi.numel());
  }
  QuantizedWeight out;
  out.spec = spec;
  std::tie(out.scale, out.zero_point) =
      choose_qparams(lo.reshape({rows}).cpu(), hi.reshape({rows}).cpu(), spec.bits, spec.symmetric);
  out.codes = quantize_codes(w, out.scale.view({-1, 1}), out.zero_point.view({-1, 1}),
                             spec.range());
  return out;
}

torch::Tensor fake_quant_input(const torch::Tensor& x, const io::InputQuant& q) {
  const io::QRange r = q.range();
  if (!q.dynamic) {
    auto s = torch::full({}, q.scale, x.options().dtype(torch::kFloat));
    auto z = torch::full({}, static_cast<float>(q.zero_point), s.options());
    return fake_quant_float(x, s, z, r);
  }
  // Per token: one scale per row of the last dimension, from that row's min/max.
  const auto rows = x.reshape({-1, x.size(-1)});  // (R, K)
  auto [s, z] = choose_qparams(rows.amin(1), rows.amax(1), q.bits, q.symmetric);
  return fake_quant_float(rows, s.view({-1, 1}), z.to(torch::kFloat).view({-1, 1}), r)
      .view(x.sizes());
}

torch::Tensor fake_quant_patch_input(const torch::Tensor& x, const io::InputQuant& q, int patch) {
  if (!q.dynamic) return fake_quant_input(x, q);  // elementwise: the layout does not matter
  const int64_t B = x.size(0), C = x.size(1), g = x.size(2) / patch, P = patch;
  // (B, C, g, P, g, P) -> (B, g, g, C, P, P): one row of C*P*P values per patch (= token).
  auto rows =
      x.reshape({B, C, g, P, g, P}).permute({0, 2, 4, 1, 3, 5}).reshape({B, g * g, C * P * P});
  auto fq = fake_quant_input(rows, q);
  return fq.reshape({B, g, g, C, P, P}).permute({0, 3, 1, 4, 2, 5}).reshape(x.sizes());
}

// ---- io's plain arrays --------------------------------------------------------------------------

io::QuantizedWeightData to_plain(const QuantizedWeight& w) {
  const auto codes = w.codes.to(torch::kCPU, torch::kShort).contiguous();  // |q| < 2^15: exact
  const auto scale = w.scale.to(torch::kCPU, torch::kFloat).contiguous().view(-1);
  const auto zp = w.zero_point.to(torch::kCPU, torch::kInt).contiguous().view(-1);
  if (codes.dim() != 2) core::throw_internal("to_plain: expected (out, in) codes, got {}D", codes.dim());
  io::QuantizedWeightData p;
  p.spec = w.spec;
  p.rows = codes.size(0);
  p.cols = codes.size(1);
  p.codes.assign(codes.data_ptr<int16_t>(), codes.data_ptr<int16_t>() + codes.numel());
  p.scale.assign(scale.data_ptr<float>(), scale.data_ptr<float>() + scale.numel());
  p.zero_point.assign(zp.data_ptr<int32_t>(), zp.data_ptr<int32_t>() + zp.numel());
  return p;
}

QuantizedWeight from_plain(const io::QuantizedWeightData& p) {
  QuantizedWeight w;
  w.spec = p.spec;
  w.codes = torch::from_blob(const_cast<int16_t*>(p.codes.data()), {p.rows, p.cols}, torch::kShort)
                .to(torch::kLong);
  w.scale = torch::tensor(p.scale, torch::kFloat);
  w.zero_point = torch::tensor(std::vector<int64_t>(p.zero_point.begin(), p.zero_point.end()),
                               torch::kLong);
  return w;
}

// ---- model hooks --------------------------------------------------------------------------------

std::vector<std::string> quantizable_linears(ViT& model) {
  std::vector<std::string> names{"patch_embed.proj"};
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    if (const auto* lin = item.value()->as<LinearImpl>()) {
      names.push_back(item.key());
      if (lin->rank > 0) names.push_back(item.key() + ".weight_u");
    }
  }
  return names;
}

std::string unit_weight_name(ViT& model, const std::string& unit) {
  if (unit == "patch_embed.proj") return unit + ".weight";
  const std::string u = ".weight_u";
  const bool second =
      unit.size() > u.size() && unit.compare(unit.size() - u.size(), u.size(), u) == 0;
  const std::string linear = second ? unit.substr(0, unit.size() - u.size()) : unit;
  auto mods = model->named_modules("", false);
  const auto* found = mods.find(linear);
  const auto* lin = found ? (*found)->as<LinearImpl>() : nullptr;
  if (lin == nullptr) core::throw_internal("unit_weight_name: no Linear '{}'", unit);
  if (lin->shares_weights()) return "";
  if (second) return unit;
  return unit + (lin->rank > 0 ? ".weight_v" : ".weight");
}

void apply_input_quant(ViT& model, const std::map<std::string, io::InputQuant>& inputs) {
  std::set<std::string> used;
  const int patch = model->config().patch_size;
  if (auto it = inputs.find("patch_embed.proj"); it != inputs.end()) {
    const io::InputQuant q = it->second;
    model->patch_input_transform = [q, patch](const torch::Tensor& x) {
      return fake_quant_patch_input(x, q, patch);
    };
    used.insert(it->first);
  } else {
    model->patch_input_transform = nullptr;
  }
  for (const auto& item : model->named_modules("", false)) {
    auto* lin = item.value()->as<LinearImpl>();
    if (lin == nullptr) continue;
    if (auto it = inputs.find(item.key()); it != inputs.end()) {
      const io::InputQuant q = it->second;
      lin->input_transform = [q](const torch::Tensor& x) { return fake_quant_input(x, q); };
      used.insert(it->first);
    } else {
      lin->input_transform = nullptr;
    }
    if (auto it = inputs.find(item.key() + ".weight_u"); it != inputs.end() && lin->rank > 0) {
      const io::InputQuant q = it->second;
      lin->mid_transform = [q](const torch::Tensor& x) { return fake_quant_input(x, q); };
      used.insert(it->first);
    } else {
      lin->mid_transform = nullptr;
    }
  }
  for (const auto& [name, q] : inputs) {
    if (!used.count(name)) {
      core::throw_input("{} inputs['{}']: no such Linear in this model (expected one of: {})",
                        io::kQuantKey, name, fmt::join(quantizable_linears(model), ", "));
    }
  }
}

// ---- files --------------------------------------------------------------------------------------

std::map<std::string, QuantizedWeight> quantized_weights_from_file(const io::SafeTensorsFile& file,
                                                                   const io::ModelHeader& header) {
  std::map<std::string, QuantizedWeight> out;
  if (!header.quant) return out;
  std::map<std::string, io::WeightLayout> layout;
  for (const auto& l : io::model_linears(header.config))
    for (const auto& w : l.weights) layout[w.name] = w;
  for (const auto& [name, spec] : header.quant->weights) {
    const io::WeightLayout& w = layout.at(name);  // names checked by the header reader
    out[name] = from_plain(io::read_quantized_weight(file, name, spec, w.out, w.in));
  }
  return out;
}

ViT load_quantized_model(const io::SafeTensorsFile& file, const io::ModelHeader& header) {
  if (!header.quant) core::throw_internal("load_quantized_model: {} has no quant spec", file.source());
  ViT model(header.config);
  const auto qweights = quantized_weights_from_file(file, header);
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    expected.insert(name);
    if (auto it = qweights.find(name); it != qweights.end()) {
      param.copy_(it->second.dequantize().view(param.sizes()));
      expected.insert(name + ".scale");
      if (!it->second.spec.symmetric) expected.insert(name + ".zero_point");
      continue;
    }
    load_model_tensor(param, file, name, model->config().name);
  }
  std::vector<std::string> extra;
  for (const auto& name : file.names()) {
    if (!expected.count(name)) extra.push_back(name);
  }
  if (!extra.empty()) {
    core::throw_input("{}: {} unexpected tensor(s) for this quantized ViT: [{}]", file.source(),
                      extra.size(), fmt::join(extra, ", "));
  }
  apply_input_quant(model, header.quant->inputs);
  if (header.quant->attention) apply_attention_quant(model, &*header.quant->attention);
  return model;
}

}  // namespace vitopt::model
