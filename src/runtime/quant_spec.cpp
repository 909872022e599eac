// QuantSpec parsing with errors that name the file, the entry and the field; the `extras` rule of
// docs/model-format.md (an unimplemented key refuses the file) lives here.
#include "runtime/quant_spec.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace vitopt::runtime {
namespace {

using nlohmann::json;

template <typename T>
T get_field(const json& obj, const std::string& key, const T& fallback, bool required,
            const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) core::throw_input("{}: field '{}' is missing", where, key);
    return fallback;
  }
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) core::throw_input("{}: field '{}': expected true or false, got {}", where, key, it->dump());
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) core::throw_input("{}: field '{}': expected an integer, got {}", where, key, it->dump());
  } else {
    if (!it->is_number()) core::throw_input("{}: field '{}': expected a number, got {}", where, key, it->dump());
  }
  return it->get<T>();
}

void only_keys(const json& obj, std::initializer_list<const char*> keys, const std::string& where) {
  if (!obj.is_object()) core::throw_input("{}: expected a JSON object, got {}", where, obj.dump());
  for (const auto& item : obj.items()) {
    bool known = false;
    for (const char* k : keys) known = known || item.key() == k;
    if (!known) core::throw_input("{}: unknown field '{}' (not supported by this runtime)", where, item.key());
  }
}

}  // namespace

QuantSpec QuantSpec::from_json(const json& j, const std::string& source) {
  const std::string top = source + ": metadata 'vitopt.quant'";
  only_keys(j, {"version", "weights", "inputs", "extras"}, top);
  const int version = get_field<int>(j, "version", 1, true, top);
  if (version != 1) core::throw_input("{}: field 'version': expected 1, got {}", top, version);
  QuantSpec spec;
  if (auto it = j.find("extras"); it != j.end()) {
    if (!it->is_object()) core::throw_input("{}: field 'extras': expected a JSON object", top);
    if (it->contains("attention")) {
      // Defined by the format (docs/model-format.md), but this runtime's fused attention runs in
      // fp32: refusing is better than silently computing a different function.
      core::throw_input(
          "{}: extras key 'attention' (quantized attention matmuls) is not implemented by the "
          "runtime, which computes attention in fp32; evaluate it with `--engine torch` (exact "
          "simulation) or re-quantize without --attn-bits for deployment",
          top);
    }
    if (!it->empty()) {
      core::throw_input(
          "{}: unknown extras key '{}': format version 1 defines no extras, so the file "
          "describes a quantized site this runtime cannot compute exactly; re-quantize without it",
          top, it->begin().key());
    }
  }
  if (auto it = j.find("weights"); it != j.end()) {
    if (!it->is_object()) core::throw_input("{}: field 'weights': expected a JSON object", top);
    for (const auto& item : it->items()) {
      const std::string where = fmt::format("{} weights['{}']", top, item.key());
      only_keys(item.value(), {"bits", "symmetric", "per_channel"}, where);
      WeightQuant w;
      w.bits = get_field<int>(item.value(), "bits", 8, true, where);
      if (w.bits < 2 || w.bits > 16)
        core::throw_input("{}: field 'bits': expected 2..16, got {}", where, w.bits);
      w.symmetric = get_field<bool>(item.value(), "symmetric", true, false, where);
      w.per_channel = get_field<bool>(item.value(), "per_channel", true, false, where);
      spec.weights[item.key()] = w;
    }
  }
  if (auto it = j.find("inputs"); it != j.end()) {
    if (!it->is_object()) core::throw_input("{}: field 'inputs': expected a JSON object", top);
    for (const auto& item : it->items()) {
      const std::string where = fmt::format("{} inputs['{}']", top, item.key());
      only_keys(item.value(), {"bits", "symmetric", "dynamic", "scale", "zero_point"}, where);
      InputQuant q;
      q.bits = get_field<int>(item.value(), "bits", 8, true, where);
      if (q.bits < 2 || q.bits > 16)
        core::throw_input("{}: field 'bits': expected 2..16, got {}", where, q.bits);
      q.symmetric = get_field<bool>(item.value(), "symmetric", false, false, where);
      q.dynamic = get_field<bool>(item.value(), "dynamic", false, false, where);
      if (!q.dynamic) {
        const double s = get_field<double>(item.value(), "scale", 1.0, true, where);
        if (!(s > 0) || !std::isfinite(static_cast<float>(s)))
          core::throw_input("{}: field 'scale': expected a positive finite number, got {}", where, s);
        q.scale = static_cast<float>(s);
        q.zero_point = get_field<int>(item.value(), "zero_point", 0, !q.symmetric, where);
        if (q.symmetric && q.zero_point != 0)
          core::throw_input("{}: field 'zero_point': expected 0 for a symmetric input, got {}", where, q.zero_point);
        if (q.zero_point < q.qmin() || q.zero_point > q.qmax())
          core::throw_input("{}: field 'zero_point': expected a value in [{}, {}], got {}", where,
                            q.qmin(), q.qmax(), q.zero_point);
      } else if (item.value().contains("scale") || item.value().contains("zero_point")) {
        core::throw_input("{}: a dynamic input has no 'scale'/'zero_point' (computed per token)", where);
      }
      spec.inputs[item.key()] = q;
    }
  }
  return spec;
}

json QuantSpec::to_json() const {
  json w = json::object(), in = json::object();
  for (const auto& [name, q] : weights)
    w[name] = {{"bits", q.bits}, {"symmetric", q.symmetric}, {"per_channel", q.per_channel}};
  for (const auto& [name, q] : inputs) {
    json e = {{"bits", q.bits}, {"symmetric", q.symmetric}, {"dynamic", q.dynamic}};
    if (!q.dynamic) {
      e["scale"] = q.scale;
      e["zero_point"] = q.zero_point;
    }
    in[name] = e;
  }
  return json{{"version", 1}, {"weights", w}, {"inputs", in}, {"extras", json::object()}};
}

}  // namespace vitopt::runtime
