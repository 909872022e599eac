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

// Static scale/zero-point of a quantizer whose bits/symmetric are already set.
void parse_static(const json& e, InputQuant& q, const std::string& where) {
  const double s = get_field<double>(e, "scale", 1.0, true, where);
  if (!(s > 0) || !std::isfinite(static_cast<float>(s)))
    core::throw_input("{}: field 'scale': expected a positive finite number, got {}", where, s);
  q.scale = static_cast<float>(s);
  q.zero_point = get_field<int>(e, "zero_point", 0, !q.symmetric, where);
  if (q.symmetric && q.zero_point != 0)
    core::throw_input("{}: field 'zero_point': expected 0 for a symmetric input, got {}", where, q.zero_point);
  if (q.zero_point < q.qmin() || q.zero_point > q.qmax())
    core::throw_input("{}: field 'zero_point': expected a value in [{}, {}], got {}", where,
                      q.qmin(), q.qmax(), q.zero_point);
}

int parse_bits(const json& e, const std::string& where) {
  const int bits = get_field<int>(e, "bits", 8, true, where);
  if (bits < 2 || bits > 16) core::throw_input("{}: field 'bits': expected 2..16, got {}", where, bits);
  return bits;
}

AttentionQuant parse_attention(const json& j, const std::string& where) {
  only_keys(j, {"bits", "symmetric", "probs", "blocks"}, where);
  AttentionQuant a;
  a.bits = parse_bits(j, where);
  a.symmetric = get_field<bool>(j, "symmetric", true, true, where);
  const auto probs = j.find("probs");
  if (probs == j.end()) core::throw_input("{}: field 'probs' is missing", where);
  only_keys(*probs, {"quantizer", "bits"}, where + ".probs");
  a.prob_bits = parse_bits(*probs, where + ".probs");
  const auto kind = probs->find("quantizer");
  if (kind == probs->end() || !kind->is_string() || (*kind != "log2" && *kind != "uniform"))
    core::throw_input("{}.probs: field 'quantizer': expected \"log2\" or \"uniform\", got {}", where,
                      kind == probs->end() ? std::string("nothing") : kind->dump());
  a.prob_log2 = *kind == "log2";
  const auto blocks = j.find("blocks");
  if (blocks == j.end() || !blocks->is_object())
    core::throw_input("{}: field 'blocks': expected a JSON object", where);
  for (const auto& item : blocks->items()) {
    const std::string bw = fmt::format("{}.blocks['{}']", where, item.key());
    size_t used = 0;
    int index = -1;
    try {
      index = std::stoi(item.key(), &used);
    } catch (const std::exception&) {
    }
    if (index < 0 || used != item.key().size())
      core::throw_input("{}: expected a decimal block index as the key", bw);
    only_keys(item.value(), {"q", "k", "v"}, bw);
    AttentionQuant::Block b;
    for (auto [name, q] : {std::pair<const char*, InputQuant*>{"q", &b.q}, {"k", &b.k}, {"v", &b.v}}) {
      const auto e = item.value().find(name);
      if (e == item.value().end()) core::throw_input("{}: field '{}' is missing", bw, name);
      only_keys(*e, {"scale", "zero_point"}, bw + "." + name);
      q->bits = a.bits;
      q->symmetric = a.symmetric;
      parse_static(*e, *q, bw + "." + name);
    }
    a.blocks[index] = b;
  }
  return a;
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
    for (const auto& item : it->items()) {
      if (item.key() == "attention") {
        spec.attention = parse_attention(item.value(), top + " extras.attention");
        continue;
      }
      core::throw_input(
          "{}: unknown extras key '{}': this runtime implements only 'attention', so the file "
          "describes a quantized site it cannot compute exactly; re-quantize without it",
          top, item.key());
    }
  }
  if (auto it = j.find("weights"); it != j.end()) {
    if (!it->is_object()) core::throw_input("{}: field 'weights': expected a JSON object", top);
    for (const auto& item : it->items()) {
      const std::string where = fmt::format("{} weights['{}']", top, item.key());
      only_keys(item.value(), {"bits", "symmetric", "per_channel"}, where);
      WeightQuant w;
      w.bits = parse_bits(item.value(), where);
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
      q.bits = parse_bits(item.value(), where);
      q.symmetric = get_field<bool>(item.value(), "symmetric", false, false, where);
      q.dynamic = get_field<bool>(item.value(), "dynamic", false, false, where);
      if (!q.dynamic) {
        parse_static(item.value(), q, where);
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
  json extras = json::object();
  if (attention) {
    json blocks = json::object();
    auto entry = [](const InputQuant& q) { return json{{"scale", q.scale}, {"zero_point", q.zero_point}}; };
    for (const auto& [i, b] : attention->blocks)
      blocks[std::to_string(i)] = {{"q", entry(b.q)}, {"k", entry(b.k)}, {"v", entry(b.v)}};
    extras["attention"] = {{"bits", attention->bits},
                           {"symmetric", attention->symmetric},
                           {"probs", {{"quantizer", attention->prob_log2 ? "log2" : "uniform"},
                                      {"bits", attention->prob_bits}}},
                           {"blocks", blocks}};
  }
  return json{{"version", 1}, {"weights", w}, {"inputs", in}, {"extras", extras}};
}

}  // namespace vitopt::runtime
