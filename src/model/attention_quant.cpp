// Attention-matmul quantization: JSON (de)serialization with validation, the probability
// quantizers, and the hooks on AttentionImpl.
#include "model/attention_quant.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "core/json_util.h"

namespace vitopt::model {

namespace {

// Forward value q(x), gradient of the identity (straight-through estimator).
torch::Tensor ste(const torch::Tensor& x, const torch::Tensor& q) { return x + (q - x).detach(); }

nlohmann::json input_json(const InputQuant& q) {
  return {{"scale", static_cast<double>(q.scale)}, {"zero_point", q.zero_point}};
}

InputQuant input_from_json(const nlohmann::json& e, int bits, bool symmetric,
                           const std::string& src) {
  InputQuant q;
  q.bits = bits;
  q.symmetric = symmetric;
  read_static_input(e, q, src);
  return q;
}

}  // namespace

nlohmann::json AttentionQuant::to_json() const {
  nlohmann::json j = {{"bits", bits},
                      {"symmetric", symmetric},
                      {"probs", {{"quantizer", prob_quantizer}, {"bits", prob_bits}}},
                      {"blocks", nlohmann::json::object()}};
  for (const auto& [i, b] : blocks)
    j["blocks"][std::to_string(i)] = {{"q", input_json(b.q)}, {"k", input_json(b.k)},
                                      {"v", input_json(b.v)}};
  return j;
}

AttentionQuant AttentionQuant::from_json(const nlohmann::json& j, int depth,
                                         const std::string& source) {
  const std::string src = source + " extras.attention";
  if (!j.is_object()) core::throw_bad_field(src, "attention", "a JSON object", j.dump());
  AttentionQuant a;
  a.bits = core::json_get<int>(j, "bits", src);
  a.symmetric = core::json_get<bool>(j, "symmetric", src);
  quant_range(a.bits, a.symmetric, src + ": field 'bits'");
  const auto probs = core::json_get<nlohmann::json>(j, "probs", src);
  a.prob_bits = core::json_get<int>(probs, "bits", src + ".probs");
  quant_range(a.prob_bits, true, src + ".probs: field 'bits'");
  a.prob_quantizer = core::json_get<std::string>(probs, "quantizer", src + ".probs");
  if (a.prob_quantizer != "uniform" && a.prob_quantizer != "log2")
    core::throw_bad_field(src + ".probs", "quantizer", "'uniform' or 'log2'", a.prob_quantizer);
  const auto blocks = core::json_get<nlohmann::json>(j, "blocks", src);
  if (!blocks.is_object()) core::throw_bad_field(src, "blocks", "a JSON object", blocks.dump());
  for (const auto& [key, e] : blocks.items()) {
    int index = -1;
    try {
      size_t used = 0;
      index = std::stoi(key, &used);
      if (used != key.size()) index = -1;
    } catch (const std::exception&) {
      index = -1;
    }
    if (index < 0 || index >= depth)
      core::throw_bad_field(src + ".blocks", key, fmt::format("a block index in [0, {})", depth),
                            key);
    const std::string bsrc = fmt::format("{}.blocks['{}']", src, key);
    Block b;
    b.q = input_from_json(core::json_get<nlohmann::json>(e, "q", bsrc), a.bits, a.symmetric, bsrc + ".q");
    b.k = input_from_json(core::json_get<nlohmann::json>(e, "k", bsrc), a.bits, a.symmetric, bsrc + ".k");
    b.v = input_from_json(core::json_get<nlohmann::json>(e, "v", bsrc), a.bits, a.symmetric, bsrc + ".v");
    a.blocks[index] = b;
  }
  return a;
}

torch::Tensor quantize_probs(const torch::Tensor& p, int bits, const std::string& quantizer) {
  quant_range(bits, true, "probability bits");
  const double levels = std::ldexp(1.0, bits) - 1;  // 2^b - 1
  if (quantizer == "uniform") return torch::round(p * levels) / levels;
  if (quantizer != "log2")
    core::throw_input("probability quantizer: expected 'uniform' or 'log2', got '{}'", quantizer);
  // c = rne(-log2 p) in [0, 2^b - 2]; larger c (and p = 0, where -log2 p = inf) -> 0.
  const auto c = torch::round(-torch::log2(p)).clamp_min(0);  // (.., N) float
  return torch::where(c <= levels - 1, torch::exp2(-c), torch::zeros_like(p));
}

void apply_attention_quant(ViT& model, const AttentionQuant* aq) {
  for (int i = 0; i < model->config().depth; ++i) {
    auto& blk = model->block(i);
    if (!blk.attn) continue;
    auto& at = *blk.attn;
    const AttentionQuant::Block* found = nullptr;
    if (aq != nullptr) {
      if (auto it = aq->blocks.find(i); it != aq->blocks.end()) found = &it->second;
    }
    if (found == nullptr) {
      if (blk.shared_with >= 0) continue;  // the owner's hooks stay
      at.q_transform = at.k_transform = at.v_transform = at.probs_transform = nullptr;
      continue;
    }
    const auto b = *found;
    at.q_transform = [q = b.q](const torch::Tensor& x) { return ste(x, fake_quant_input(x, q)); };
    at.k_transform = [k = b.k](const torch::Tensor& x) { return ste(x, fake_quant_input(x, k)); };
    at.v_transform = [v = b.v](const torch::Tensor& x) { return ste(x, fake_quant_input(x, v)); };
    at.probs_transform = [bits = aq->prob_bits, kind = aq->prob_quantizer](const torch::Tensor& p) {
      return ste(p, quantize_probs(p, bits, kind));
    };
  }
}

}  // namespace vitopt::model
