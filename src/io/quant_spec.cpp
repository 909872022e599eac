// QuantSpec: code ranges, choose_qparams, and the "vitopt.quant" JSON with every rule of
// docs/model-format.md that needs no tensors (required fields, ranges, unknown fields and extras
// keys refused). Every rounding here is round-half-to-even in float32.
#include "io/quant_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/error.h"
#include "io/json_fields.h"

namespace vitopt::io {
namespace {

using nlohmann::json;
namespace jf = json_fields;

const std::vector<std::string> kTopFields = {"version", "weights", "inputs", "extras"};
const std::vector<std::string> kWeightFields = {"bits", "symmetric", "per_channel"};
const std::vector<std::string> kInputFields = {"bits", "symmetric", "dynamic", "scale",
                                               "zero_point"};
const std::vector<std::string> kAttentionFields = {"bits", "symmetric", "probs", "blocks"};
const std::vector<std::string> kProbFields = {"quantizer", "bits"};
const std::vector<std::string> kStaticFields = {"scale", "zero_point"};

int read_bits(const json& e, const std::string& source, const std::string& where) {
  const int bits = jf::as_int(jf::require(e, "bits", source, where), source, jf::path(where, "bits"));
  if (bits < kMinQuantBits || bits > kMaxQuantBits) {
    core::throw_bad_field(source, jf::path(where, "bits"),
                          fmt::format("a bit width in [{}, {}]", kMinQuantBits, kMaxQuantBits),
                          std::to_string(bits));
  }
  return bits;
}

bool read_bool(const json& e, const char* key, const std::string& source,
               const std::string& where) {
  return jf::as_bool(jf::require(e, key, source, where), source, jf::path(where, key));
}

// A static quantizer's scale (finite, > 0, a float) and zero point (required when asymmetric,
// 0 or absent when symmetric, in [qmin, qmax]); bits/symmetric are already set in `q`.
void read_static(const json& e, InputQuant& q, const std::string& source, const std::string& where) {
  const QRange r = q.range();
  const double scale =
      jf::as_double(jf::require(e, "scale", source, where), source, jf::path(where, "scale"));
  if (!(scale > 0) || !std::isfinite(scale) || scale > static_cast<double>(FLT_MAX) ||
      !(static_cast<float>(scale) > 0.0f)) {
    core::throw_bad_field(source, jf::path(where, "scale"), "a finite float > 0",
                          fmt::format("{}", scale));
  }
  q.scale = static_cast<float>(scale);
  const json* zp = jf::find(e, "zero_point");
  if (zp == nullptr && !q.symmetric) {
    core::throw_bad_field(source, jf::path(where, "zero_point"),
                          fmt::format("an integer in [{}, {}] (asymmetric)", r.qmin, r.qmax),
                          "nothing (missing)");
  }
  q.zero_point = zp == nullptr ? 0 : jf::as_int(*zp, source, jf::path(where, "zero_point"));
  if (q.zero_point < r.qmin || q.zero_point > r.qmax || (q.symmetric && q.zero_point != 0)) {
    core::throw_bad_field(source, jf::path(where, "zero_point"),
                          q.symmetric ? std::string("0 (symmetric)")
                                      : fmt::format("an integer in [{}, {}]", r.qmin, r.qmax),
                          std::to_string(q.zero_point));
  }
}

// Block keys of extras.attention.blocks: canonical decimal indices ("0", "11"; not "01", "+1").
int block_index(const std::string& key, const std::string& source, const std::string& where) {
  const bool digits = !key.empty() && key.size() <= 7 &&
                      std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!digits || (key.size() > 1 && key[0] == '0')) {
    core::throw_bad_field(source, where + "['" + key + "']", "a decimal block index as the key",
                          "'" + key + "'");
  }
  return std::stoi(key);
}

json static_json(const InputQuant& q) {
  return {{"scale", static_cast<double>(q.scale)}, {"zero_point", q.zero_point}};
}

}  // namespace

QRange quant_range(int bits, bool symmetric, const std::string& what) {
  if (bits < kMinQuantBits || bits > kMaxQuantBits) {
    core::throw_input("{}: expected a bit width in [{}, {}], got {}", what, kMinQuantBits,
                      kMaxQuantBits, bits);
  }
  const int half = 1 << (bits - 1);
  return symmetric ? QRange{-(half - 1), half - 1} : QRange{-half, half - 1};
}

QParams choose_qparams(float lo, float hi, QRange r, bool symmetric) {
  lo = std::min(lo, 0.0f);  // the range always holds 0, so 0 is exactly representable
  hi = std::max(hi, 0.0f);
  QParams p;
  p.scale = symmetric ? std::max(-lo, hi) / static_cast<float>(r.qmax)
                      : (hi - lo) / static_cast<float>(r.qmax - r.qmin);
  // A zero (all-zero data) or non-finite scale becomes 1; the zero point follows the same rule.
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) p.scale = 1.0f;
  if (!symmetric) {
    // |lo / scale| <= qmax - qmin unless the scale was replaced (inf/NaN data): clamp before
    // converting so no input makes the conversion undefined (NaN counts as 0).
    float steps = std::nearbyint(lo / p.scale);
    if (std::isnan(steps)) steps = 0.0f;
    steps = std::clamp(steps, -65536.0f, 65536.0f);
    p.zero_point = std::clamp(r.qmin - static_cast<int>(steps), r.qmin, r.qmax);
  }
  return p;
}

QParams choose_qparams(float lo, float hi, int bits, bool symmetric) {
  return choose_qparams(lo, hi, quant_range(bits, symmetric), symmetric);
}

// ---- extras.attention ---------------------------------------------------------------------------

json AttentionQuant::to_json() const {
  json j = {{"bits", bits},
            {"symmetric", symmetric},
            {"probs", {{"quantizer", prob_quantizer}, {"bits", prob_bits}}},
            {"blocks", json::object()}};
  for (const auto& [i, b] : blocks) {
    j["blocks"][std::to_string(i)] = {
        {"q", static_json(b.q)}, {"k", static_json(b.k)}, {"v", static_json(b.v)}};
  }
  return j;
}

AttentionQuant AttentionQuant::from_json(const json& j, const std::string& source) {
  const std::string where = "extras.attention";
  jf::check_fields(j, kAttentionFields, source, where);
  AttentionQuant a;
  a.bits = read_bits(j, source, where);
  a.symmetric = read_bool(j, "symmetric", source, where);
  const std::string pwhere = where + ".probs";
  const json& probs = jf::require(j, "probs", source, where);
  jf::check_fields(probs, kProbFields, source, pwhere);
  a.prob_bits = read_bits(probs, source, pwhere);
  a.prob_quantizer = jf::as_string(jf::require(probs, "quantizer", source, pwhere), source,
                                   pwhere + ".quantizer");
  if (a.prob_quantizer != "uniform" && a.prob_quantizer != "log2") {
    core::throw_bad_field(source, pwhere + ".quantizer", "\"uniform\" or \"log2\"",
                          "\"" + a.prob_quantizer + "\"");
  }
  const std::string bwhere = where + ".blocks";
  const json& blocks = jf::require(j, "blocks", source, where);
  if (!blocks.is_object()) core::throw_bad_field(source, bwhere, "a JSON object", blocks.dump());
  for (const auto& item : blocks.items()) {
    const int index = block_index(item.key(), source, bwhere);
    const std::string ew = bwhere + "['" + item.key() + "']";
    jf::check_fields(item.value(), {"q", "k", "v"}, source, ew);
    Block b;
    for (auto [name, q] : {std::pair<const char*, InputQuant*>{"q", &b.q}, {"k", &b.k}, {"v", &b.v}}) {
      const std::string qw = ew + "." + name;
      const json& e = jf::require(item.value(), name, source, ew);
      jf::check_fields(e, kStaticFields, source, qw);
      q->bits = a.bits;
      q->symmetric = a.symmetric;
      read_static(e, *q, source, qw);
    }
    a.blocks[index] = b;
  }
  return a;
}

// ---- vitopt.quant -------------------------------------------------------------------------------

json QuantSpec::to_json() const {
  json w = json::object(), in = json::object(), extras = json::object();
  for (const auto& [name, q] : weights) {
    w[name] = {{"bits", q.bits}, {"symmetric", q.symmetric}, {"per_channel", q.per_channel}};
  }
  for (const auto& [name, q] : inputs) {
    json e = {{"bits", q.bits}, {"symmetric", q.symmetric}, {"dynamic", q.dynamic}};
    if (!q.dynamic) {
      e["scale"] = static_cast<double>(q.scale);  // a float's exact value: round-trips
      e["zero_point"] = q.zero_point;
    }
    in[name] = e;
  }
  if (attention) extras[kAttentionExtrasKey] = attention->to_json();
  return json{{"version", kQuantVersion}, {"weights", w}, {"inputs", in}, {"extras", extras}};
}

QuantSpec QuantSpec::from_json(const json& j, const std::string& source) {
  jf::check_fields(j, kTopFields, source, "");
  const int version = jf::as_int(jf::require(j, "version", source, ""), source, "version");
  if (version != kQuantVersion) {
    core::throw_bad_field(source, "version",
                          fmt::format("{} (this build's quantization format)", kQuantVersion),
                          std::to_string(version));
  }
  QuantSpec spec;
  if (const json* weights = jf::find(j, "weights")) {
    if (!weights->is_object()) core::throw_bad_field(source, "weights", "a JSON object", weights->dump());
    for (const auto& item : weights->items()) {
      const std::string where = "weights['" + item.key() + "']";
      jf::check_fields(item.value(), kWeightFields, source, where);
      WeightQuant w;
      w.bits = read_bits(item.value(), source, where);
      w.symmetric = read_bool(item.value(), "symmetric", source, where);
      w.per_channel = read_bool(item.value(), "per_channel", source, where);
      spec.weights[item.key()] = w;
    }
  }
  if (const json* inputs = jf::find(j, "inputs")) {
    if (!inputs->is_object()) core::throw_bad_field(source, "inputs", "a JSON object", inputs->dump());
    for (const auto& item : inputs->items()) {
      const std::string where = "inputs['" + item.key() + "']";
      const json& e = item.value();
      jf::check_fields(e, kInputFields, source, where);
      InputQuant q;
      q.bits = read_bits(e, source, where);
      q.symmetric = read_bool(e, "symmetric", source, where);
      q.dynamic = read_bool(e, "dynamic", source, where);
      if (!q.dynamic) {
        read_static(e, q, source, where);
      } else if (jf::find(e, "scale") != nullptr || jf::find(e, "zero_point") != nullptr) {
        core::throw_bad_field(source, where, "no scale/zero_point for a dynamic input (computed "
                              "per token at run time)", "scale or zero_point given");
      }
      spec.inputs[item.key()] = q;
    }
  }
  if (const json* extras = jf::find(j, "extras")) {
    if (!extras->is_object()) core::throw_bad_field(source, "extras", "a JSON object", extras->dump());
    for (const auto& item : extras->items()) {
      if (item.key() != kAttentionExtrasKey) {
        core::throw_input(
            "{}: unknown extras key '{}': this build implements only '{}', so the file describes "
            "a quantized site it cannot compute exactly (written by a newer vitopt?); "
            "re-quantize without it",
            source, item.key(), kAttentionExtrasKey);
      }
      spec.attention = AttentionQuant::from_json(item.value(), source);
    }
  }
  return spec;
}

}  // namespace vitopt::io
