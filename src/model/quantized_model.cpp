// Quantized model files: quantizer arithmetic, code packing, the "vitopt.quant" JSON, writing, and
// reading back into a ViT that simulates the integer model exactly. See quantized_model.h and
// docs/model-format.md; every rounding here is round-half-to-even in float32 (torch::round).
#include "model/quantized_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/json_util.h"
#include "model/attention_quant.h"

namespace vitopt::model {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

io::DType expected_dtype(int bits) {
  return bits <= 4 ? io::DType::U8 : bits <= 8 ? io::DType::I8 : io::DType::I16;
}

// x (..., K) float -> x̂ with per-broadcast scale s and zero point z (both float tensors).
torch::Tensor fake_quant_float(const torch::Tensor& x, const torch::Tensor& s,
                               const torch::Tensor& z, QRange r) {
  // Codes are integers below 2^16, so rne(x/s) + z, the clamp and (q - z) are exact in float32.
  auto q = torch::clamp(torch::round(x / s) + z, static_cast<double>(r.qmin),
                        static_cast<double>(r.qmax));
  return (q - z) * s;
}

const std::set<std::string> kKnownExtras = {"attention"};  // extras keys this reader implements

}  // namespace

QRange quant_range(int bits, bool symmetric, const std::string& what) {
  if (bits < kMinQuantBits || bits > kMaxQuantBits) {
    core::throw_input("{}: expected a bit width in [{}, {}], got {}", what, kMinQuantBits,
                      kMaxQuantBits, bits);
  }
  const int64_t half = int64_t{1} << (bits - 1);
  return symmetric ? QRange{-(half - 1), half - 1} : QRange{-half, half - 1};
}

QParams choose_qparams(float lo, float hi, int bits, bool symmetric) {
  const QRange r = quant_range(bits, symmetric);
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  QParams p;
  if (symmetric) {
    p.scale = std::max(-lo, hi) / static_cast<float>(r.qmax);
  } else {
    p.scale = (hi - lo) / static_cast<float>(r.qmax - r.qmin);
  }
  // A zero (all-zero data) or non-finite scale becomes 1; the zero point follows the same rule.
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) p.scale = 1.0f;
  if (!symmetric) {
    const auto zp = static_cast<int64_t>(r.qmin - std::nearbyint(lo / p.scale));
    p.zero_point = std::clamp(zp, r.qmin, r.qmax);
  }
  return p;
}

std::pair<torch::Tensor, torch::Tensor> choose_qparams(const torch::Tensor& lo_in,
                                                       const torch::Tensor& hi_in, int bits,
                                                       bool symmetric) {
  const QRange r = quant_range(bits, symmetric);
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
                             const torch::Tensor& zero_point, QRange range) {
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

QuantizedWeight quantize_weight(const torch::Tensor& weight_in, const WeightQuant& spec,
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
                             quant_range(spec.bits, spec.symmetric));
  return out;
}

torch::Tensor fake_quant_input(const torch::Tensor& x, const InputQuant& q) {
  const QRange r = quant_range(q.bits, q.symmetric);
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

torch::Tensor fake_quant_patch_input(const torch::Tensor& x, const InputQuant& q, int patch) {
  if (!q.dynamic) return fake_quant_input(x, q);  // elementwise: the layout does not matter
  const int64_t B = x.size(0), C = x.size(1), g = x.size(2) / patch, P = patch;
  // (B, C, g, P, g, P) -> (B, g, g, C, P, P): one row of C*P*P values per patch (= token).
  auto rows =
      x.reshape({B, C, g, P, g, P}).permute({0, 2, 4, 1, 3, 5}).reshape({B, g * g, C * P * P});
  auto fq = fake_quant_input(rows, q);
  return fq.reshape({B, g, g, C, P, P}).permute({0, 3, 1, 4, 2, 5}).reshape(x.sizes());
}

// ---- packing ------------------------------------------------------------------------------------

PackedCodes pack_codes(const torch::Tensor& codes_in, int bits, bool symmetric) {
  const QRange r = quant_range(bits, symmetric);
  const auto codes = codes_in.to(torch::kCPU, torch::kLong).contiguous();
  if (codes.dim() != 2)
    core::throw_internal("pack_codes: expected (out, in) codes, got {}D", codes.dim());
  const int64_t rows = codes.size(0), cols = codes.size(1);
  if (codes.numel() > 0 &&
      (codes.min().item<int64_t>() < r.qmin || codes.max().item<int64_t>() > r.qmax)) {
    core::throw_internal("pack_codes: codes outside [{}, {}]", r.qmin, r.qmax);
  }
  const int64_t* q = codes.data_ptr<int64_t>();
  PackedCodes p;
  p.dtype = expected_dtype(bits);
  if (bits <= 4) {
    const int64_t packed_cols = (cols + 1) / 2;
    p.shape = {rows, packed_cols};
    p.bytes.assign(static_cast<size_t>(rows * packed_cols), 0);
    for (int64_t o = 0; o < rows; ++o) {
      for (int64_t i = 0; i < cols; ++i) {
        const auto nibble = static_cast<uint8_t>(q[o * cols + i] - r.qmin);  // 0..15
        p.bytes[static_cast<size_t>(o * packed_cols + i / 2)] |=
            static_cast<uint8_t>(i % 2 == 0 ? nibble : nibble << 4);
      }
    }
  } else if (bits <= 8) {
    p.shape = {rows, cols};
    p.bytes.resize(static_cast<size_t>(rows * cols));
    for (int64_t k = 0; k < rows * cols; ++k) {
      const auto v = static_cast<int8_t>(q[k]);
      std::memcpy(&p.bytes[static_cast<size_t>(k)], &v, 1);
    }
  } else {
    p.shape = {rows, cols};
    p.bytes.resize(static_cast<size_t>(rows * cols * 2));
    for (int64_t k = 0; k < rows * cols; ++k) {
      const auto v = static_cast<int16_t>(q[k]);
      const auto u = static_cast<uint16_t>(v);  // little endian on disk
      p.bytes[static_cast<size_t>(2 * k)] = static_cast<uint8_t>(u & 0xFF);
      p.bytes[static_cast<size_t>(2 * k + 1)] = static_cast<uint8_t>(u >> 8);
    }
  }
  return p;
}

torch::Tensor unpack_codes(const uint8_t* data, io::DType dtype, const std::vector<int64_t>& shape,
                           int64_t in_features, int bits, bool symmetric,
                           const std::string& source) {
  const QRange r = quant_range(bits, symmetric, source + ": bits");
  const io::DType want = expected_dtype(bits);
  if (dtype != want) {
    core::throw_input("{}: expected dtype {} for {}-bit codes, got {}", source,
                      io::dtype_name(want), bits, io::dtype_name(dtype));
  }
  const int64_t cols = bits <= 4 ? (in_features + 1) / 2 : in_features;
  if (shape.size() != 2 || shape[1] != cols) {
    core::throw_input("{}: expected shape [out, {}] for {}-bit codes of {} inputs, got {}", source,
                      cols, bits, in_features, shape_str(shape));
  }
  const int64_t rows = shape[0];
  auto codes = torch::empty({rows, in_features}, torch::TensorOptions().dtype(torch::kLong));
  int64_t* q = codes.data_ptr<int64_t>();
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t i = 0; i < in_features; ++i) {
      int64_t v = 0;
      if (bits <= 4) {
        const uint8_t byte = data[o * cols + i / 2];
        v = (i % 2 == 0 ? (byte & 0x0F) : (byte >> 4)) + r.qmin;
      } else if (bits <= 8) {
        int8_t s8 = 0;
        std::memcpy(&s8, data + o * cols + i, 1);
        v = s8;
      } else {
        const auto u =
            static_cast<uint16_t>(data[2 * (o * cols + i)] | (data[2 * (o * cols + i) + 1] << 8));
        v = static_cast<int16_t>(u);
      }
      if (v < r.qmin || v > r.qmax) {
        core::throw_input("{}: code {} at [{}, {}] outside [{}, {}] for {}-bit {} quantization",
                          source, v, o, i, r.qmin, r.qmax, bits,
                          symmetric ? "symmetric" : "asymmetric");
      }
      q[o * in_features + i] = v;
    }
    if (bits <= 4 && in_features % 2 == 1 && (data[o * cols + cols - 1] >> 4) != 0) {
      core::throw_input("{}: row {}: the pad nibble must be 0", source, o);
    }
  }
  return codes;
}

// ---- metadata -----------------------------------------------------------------------------------

nlohmann::json QuantSpec::to_json() const {
  nlohmann::json j = {{"version", kQuantVersion},
                      {"weights", nlohmann::json::object()},
                      {"inputs", nlohmann::json::object()},
                      {"extras", extras}};
  for (const auto& [name, w] : weights) {
    j["weights"][name] = {
        {"bits", w.bits}, {"symmetric", w.symmetric}, {"per_channel", w.per_channel}};
  }
  for (const auto& [name, in] : inputs) {
    nlohmann::json e = {{"bits", in.bits}, {"symmetric", in.symmetric}, {"dynamic", in.dynamic}};
    if (!in.dynamic) {
      e["scale"] = static_cast<double>(in.scale);  // a float's exact value: round-trips
      e["zero_point"] = in.zero_point;
    }
    j["inputs"][name] = e;
  }
  return j;
}

void read_static_input(const nlohmann::json& e, InputQuant& in, const std::string& src) {
  const QRange r = quant_range(in.bits, in.symmetric, src + ": field 'bits'");
  const double scale = core::json_get<double>(e, "scale", src);
  if (!(scale > 0) || !std::isfinite(scale) || scale > FLT_MAX)
    core::throw_bad_field(src, "scale", "a finite float > 0", std::to_string(scale));
  in.scale = static_cast<float>(scale);
  in.zero_point = core::json_get_or<int64_t>(e, "zero_point", 0, src);
  if (in.zero_point < r.qmin || in.zero_point > r.qmax || (in.symmetric && in.zero_point != 0)) {
    core::throw_bad_field(src, "zero_point",
                          in.symmetric ? std::string("0 (symmetric)")
                                       : fmt::format("an integer in [{}, {}]", r.qmin, r.qmax),
                          std::to_string(in.zero_point));
  }
}

QuantSpec QuantSpec::from_json(const nlohmann::json& j, const std::string& source) {
  using core::json_get;
  using core::json_get_or;
  if (!j.is_object())
    core::throw_bad_field(source, kQuantKey, "a JSON object", core::json_type_name(j));
  QuantSpec s;
  const int version = json_get<int>(j, "version", source);
  if (version != kQuantVersion) {
    core::throw_bad_field(source, "version", std::to_string(kQuantVersion),
                          std::to_string(version));
  }
  const auto weights = json_get_or<nlohmann::json>(j, "weights", nlohmann::json::object(), source);
  for (const auto& [name, e] : weights.items()) {
    const std::string src = source + " weights['" + name + "']";
    WeightQuant w;
    w.bits = json_get<int>(e, "bits", src);
    w.symmetric = json_get<bool>(e, "symmetric", src);
    w.per_channel = json_get<bool>(e, "per_channel", src);
    quant_range(w.bits, w.symmetric, src + ": field 'bits'");
    s.weights[name] = w;
  }
  const auto inputs = json_get_or<nlohmann::json>(j, "inputs", nlohmann::json::object(), source);
  for (const auto& [name, e] : inputs.items()) {
    const std::string src = source + " inputs['" + name + "']";
    InputQuant in;
    in.bits = json_get<int>(e, "bits", src);
    in.symmetric = json_get<bool>(e, "symmetric", src);
    in.dynamic = json_get_or<bool>(e, "dynamic", false, src);
    quant_range(in.bits, in.symmetric, src + ": field 'bits'");
    if (!in.dynamic) read_static_input(e, in, src);
    s.inputs[name] = in;
  }
  s.extras = json_get_or<nlohmann::json>(j, "extras", nlohmann::json::object(), source);
  if (!s.extras.is_object())
    core::throw_bad_field(source, "extras", "a JSON object", s.extras.dump());
  for (const auto& [key, value] : s.extras.items()) {
    if (!kKnownExtras.count(key)) {
      core::throw_input("{}: unknown extras key '{}' (this reader knows: attention; a file "
                        "written by a newer vitopt needs that version to load)",
                        source, key);
    }
  }
  return s;
}

// ---- model hooks --------------------------------------------------------------------------------

std::vector<std::string> quantizable_linears(ViT& model) {
  std::vector<std::string> names{"patch_embed.proj"};
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    if (const auto* lin = item.value()->as<LinearImpl>(); lin && lin->rank == 0)
      names.push_back(item.key());
  }
  return names;
}

void apply_input_quant(ViT& model, const std::map<std::string, InputQuant>& inputs) {
  std::set<std::string> used;
  const int patch = model->config().patch_size;
  if (auto it = inputs.find("patch_embed.proj"); it != inputs.end()) {
    const InputQuant q = it->second;
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
      const InputQuant q = it->second;
      lin->input_transform = [q](const torch::Tensor& x) { return fake_quant_input(x, q); };
      used.insert(it->first);
    } else {
      lin->input_transform = nullptr;
    }
  }
  for (const auto& [name, q] : inputs) {
    if (!used.count(name)) {
      core::throw_input("{} inputs['{}']: no such Linear in this model (expected one of: {})",
                        kQuantKey, name, fmt::join(quantizable_linears(model), ", "));
    }
  }
}

// ---- files --------------------------------------------------------------------------------------

void save_quantized_model(ViT& model, const std::map<std::string, QuantizedWeight>& weights,
                          const QuantSpec& spec_in, const std::filesystem::path& path,
                          const std::map<std::string, std::string>& extra_metadata) {
  torch::NoGradGuard no_grad;
  QuantSpec spec = spec_in;
  spec.weights.clear();
  io::SafeTensorsWriter writer;
  std::set<std::string> written;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    auto it = weights.find(name);
    if (it == weights.end()) {
      auto t = item.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
      writer.add_f32(name, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                     t.data_ptr<float>());
      continue;
    }
    const QuantizedWeight& qw = it->second;
    if (qw.codes.size(0) != item.value().size(0) || qw.codes.numel() != item.value().numel()) {
      core::throw_internal("save_quantized_model: codes of '{}' have {} elements, the weight {}",
                           name, qw.codes.numel(), item.value().numel());
    }
    const PackedCodes p = pack_codes(qw.codes, qw.spec.bits, qw.spec.symmetric);
    writer.add(name, p.dtype, p.shape, p.bytes.data(), p.bytes.size());
    const auto scale = qw.scale.to(torch::kCPU, torch::kFloat).contiguous();
    writer.add_f32(name + ".scale", {scale.numel()}, scale.data_ptr<float>());
    if (!qw.spec.symmetric) {
      const auto zp = qw.zero_point.to(torch::kCPU, torch::kInt).contiguous();
      writer.add(name + ".zero_point", io::DType::I32, {zp.numel()}, zp.data_ptr<int32_t>(),
                 static_cast<size_t>(zp.numel()) * 4);
    }
    spec.weights[name] = qw.spec;
    written.insert(name);
  }
  for (const auto& [name, qw] : weights) {
    if (!written.count(name)) core::throw_internal("save_quantized_model: no parameter '{}'", name);
  }
  for (const auto& [key, value] : extra_metadata) writer.set_metadata(key, value);
  writer.set_metadata(kQuantKey, spec.to_json().dump());
  writer.set_metadata(kConfigKey, model->config().to_json().dump());
  writer.set_metadata(kFormatVersionKey, std::to_string(kFormatVersion));
  writer.set_metadata("format", "pt");
  writer.write(path);
}

bool is_quantized_file(const io::SafeTensorsFile& file) {
  return file.metadata_value(kQuantKey) != nullptr;
}

QuantSpec quant_spec_from_file(const io::SafeTensorsFile& file) {
  const std::string* text = file.metadata_value(kQuantKey);
  if (text == nullptr)
    core::throw_input("{}: metadata '{}' missing: not a quantized model", file.source(), kQuantKey);
  const std::string src = file.source() + " metadata '" + kQuantKey + "'";
  return QuantSpec::from_json(core::json_parse(*text, src), src);
}

std::map<std::string, QuantizedWeight> quantized_weights_from_file(const io::SafeTensorsFile& file,
                                                                   const QuantSpec& spec) {
  std::map<std::string, QuantizedWeight> out;
  for (const auto& [name, w] : spec.weights) {
    const std::string src = fmt::format("{}: tensor '{}'", file.source(), name);
    if (!file.has(name)) core::throw_input("{}: missing (listed in '{}')", src, kQuantKey);
    const auto& info = file.info(name);
    if (info.shape.size() != 2)
      core::throw_input("{}: expected a 2-D (out, in) tensor, got {}", src, shape_str(info.shape));
    const int64_t rows = info.shape[0];
    // The stored column count fixes `in` up to the nibble padding; the model config checks it
    // later.
    const int64_t in = w.bits <= 4 ? info.shape[1] * 2 : info.shape[1];
    QuantizedWeight qw;
    qw.spec = w;
    qw.codes = unpack_codes(file.data(name), info.dtype, info.shape, in, w.bits, w.symmetric, src);
    const int64_t n = w.per_channel ? rows : 1;
    const std::vector<int64_t> sshape{n};
    const auto scale = file.read_f32(name + ".scale", &sshape);
    qw.scale = torch::tensor(scale, torch::kFloat);
    for (float s : scale) {
      if (!(s > 0) || !std::isfinite(s))
        core::throw_input("{}.scale: expected finite values > 0, got {}", src, s);
    }
    if (!w.symmetric) {
      const std::string zname = name + ".zero_point";
      if (!file.has(zname)) core::throw_input("{}: asymmetric weight without '{}'", src, zname);
      const auto& zi = file.info(zname);
      if (zi.dtype != io::DType::I32 || zi.shape != sshape) {
        core::throw_input("{}: tensor '{}': expected I32 {}, got {} {}", file.source(), zname,
                          shape_str(sshape), io::dtype_name(zi.dtype), shape_str(zi.shape));
      }
      std::vector<int32_t> z(static_cast<size_t>(n));
      std::memcpy(z.data(), file.data(zname), z.size() * 4);
      const QRange r = quant_range(w.bits, false);
      for (int32_t v : z) {
        if (v < r.qmin || v > r.qmax)
          core::throw_input("{}: tensor '{}': zero point {} outside [{}, {}]", file.source(), zname,
                            v, r.qmin, r.qmax);
      }
      qw.zero_point = torch::tensor(std::vector<int64_t>(z.begin(), z.end()), torch::kLong);
    } else {
      if (file.has(name + ".zero_point"))
        core::throw_input("{}: symmetric weight must not have a zero_point tensor", src);
      qw.zero_point = torch::zeros({n}, torch::kLong);
    }
    out[name] = std::move(qw);
  }
  return out;
}

ViT load_quantized_model(const io::SafeTensorsFile& file, const ImportHints& hints) {
  if (file.metadata_value(kConfigKey) == nullptr) {
    core::throw_input("{}: a quantized model needs metadata '{}'", file.source(), kConfigKey);
  }
  ViT model(config_from_file(file, hints));
  const QuantSpec spec = quant_spec_from_file(file);
  auto qweights = quantized_weights_from_file(file, spec);
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    const std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
    expected.insert(name);
    if (auto it = qweights.find(name); it != qweights.end()) {
      const int64_t in = param.numel() / param.size(0);
      const auto& codes = it->second.codes;
      // Nibble-packed rows carry one pad column when `in` is odd: drop it after checking it.
      const auto stored_in = codes.size(1);
      if (codes.size(0) != param.size(0) ||
          !(stored_in == in || (it->second.spec.bits <= 4 && stored_in == in + 1))) {
        core::throw_input(
            "{}: tensor '{}': expected {} codes of shape [{}, {}] for this config, got {}",
            file.source(), name, it->second.spec.bits, param.size(0), in,
            shape_str(file.info(name).shape));
      }
      QuantizedWeight qw = it->second;
      if (stored_in == in + 1 && !qw.codes.select(1, in)
                                      .eq(quant_range(qw.spec.bits, qw.spec.symmetric).qmin)
                                      .all()
                                      .item<bool>()) {
        core::throw_input("{}: tensor '{}': the pad nibble of every row must be 0", file.source(),
                          name);
      }
      qw.codes = qw.codes.slice(1, 0, in);
      param.copy_(qw.dequantize().view(param.sizes()));
      expected.insert(name + ".scale");
      if (!qw.spec.symmetric) expected.insert(name + ".zero_point");
      continue;
    }
    if (!file.has(name)) {
      core::throw_input("{}: tensor '{}' missing: expected shape {} for model '{}'", file.source(),
                        name, shape_str(want), model->config().name);
    }
    std::vector<float> values = file.read_f32(name, &want);
    param.copy_(torch::from_blob(values.data(), param.sizes(), torch::kFloat));
  }
  for (const auto& [name, w] : spec.weights) {
    if (!expected.count(name))
      core::throw_input("{}: metadata '{}' lists weight '{}' that this ViT config does not have",
                        file.source(), kQuantKey, name);
  }
  std::vector<std::string> extra;
  for (const auto& name : file.names()) {
    if (!expected.count(name)) extra.push_back(name);
  }
  if (!extra.empty()) {
    core::throw_input("{}: {} unexpected tensor(s) for this quantized ViT: [{}]", file.source(),
                      extra.size(), fmt::join(extra, ", "));
  }
  apply_input_quant(model, spec.inputs);
  if (spec.extras.contains(kAttentionExtrasKey)) {
    const auto aq = AttentionQuant::from_json(spec.extras[kAttentionExtrasKey],
                                              model->config().depth, file.source());
    apply_attention_quant(model, &aq);
  }
  return model;
}

}  // namespace vitopt::model
