// QuantSpec: code ranges and choose_qparams by hand, an exact JSON round trip (attention
// included), and one refusal per rule of docs/model-format.md ("Fields and names"), each naming the
// entry and field. These rules are the ones both halves apply (one parser).
#include "io/quant_spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"
#include "test_util.h"

namespace vitopt::io {
namespace {

using vitopt::testing::expect_input_error;
using nlohmann::json;

TEST(QuantRange, Edges) {
  EXPECT_EQ(quant_range(2, true).qmin, -1);
  EXPECT_EQ(quant_range(2, true).qmax, 1);
  EXPECT_EQ(quant_range(2, false).qmin, -2);
  EXPECT_EQ(quant_range(2, false).qmax, 1);
  EXPECT_EQ(quant_range(8, true).qmin, -127);
  EXPECT_EQ(quant_range(16, true).qmin, -32767);
  EXPECT_EQ(quant_range(16, false).qmin, -32768);
  EXPECT_EQ(quant_range(16, false).qmax, 32767);
  expect_input_error([] { quant_range(1, true, "--wbits"); }, {"--wbits", "got 1"});
  expect_input_error([] { quant_range(17, false, "--abits"); }, {"--abits", "got 17"});
}

TEST(ChooseQParams, ByHand) {
  // Zero range: scale 1, zp = qmin - rne(0) = -128; 0 still decodes to exactly 0.
  auto p = choose_qparams(0.0f, 0.0f, 8, false);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero_point, -128);
  EXPECT_EQ(choose_qparams(0.0f, 0.0f, 8, true).zero_point, 0);
  // [-4, -2] widens to [-4, 0]: scale 4/255, zp = -128 - rne(-255) = 127.
  p = choose_qparams(-4.0f, -2.0f, 8, false);
  EXPECT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 127);
  p = choose_qparams(-4.0f, -2.0f, 8, true);
  EXPECT_EQ(p.scale, 4.0f / 127.0f);
  EXPECT_EQ(p.zero_point, 0);
  // [0.5, 2.55] widens to [0, 2.55]: scale 0.01, zp -128.
  p = choose_qparams(0.5f, 2.55f, 8, false);
  EXPECT_EQ(p.scale, 2.55f / 255.0f);
  EXPECT_EQ(p.zero_point, -128);
  // The QRange overload is the same rule (the runtime's kernels call it with their qmin/qmax).
  const auto q = choose_qparams(-1.5f, 0.25f, QRange{-8, 7}, false);
  EXPECT_EQ(q.scale, 1.75f / 15.0f);
  EXPECT_EQ(q.zero_point, -8 - static_cast<int>(std::nearbyint(-1.5f / (1.75f / 15.0f))));
  // Non-finite data gives a usable (scale 1) quantizer, never undefined behaviour.
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(choose_qparams(-inf, 1.0f, 8, false).scale, 1.0f);
  EXPECT_EQ(choose_qparams(-inf, 1.0f, 8, false).zero_point, 127);
  EXPECT_EQ(choose_qparams(std::nanf(""), 1.0f, 8, false).scale, 1.0f);
}

QuantSpec full_spec() {
  QuantSpec s;
  s.weights["blocks.0.attn.qkv.weight"] = {4, false, true};
  s.weights["head.weight"] = {12, true, false};
  s.inputs["blocks.0.attn.qkv"] = {8, false, false, 0.0123f, -5};
  s.inputs["head"] = {8, true, true, 1.0f, 0};
  AttentionQuant a;
  a.bits = 6;
  a.symmetric = false;
  a.prob_bits = 3;
  a.prob_quantizer = "uniform";
  a.blocks[1] = {{6, false, false, 0.031f, 3}, {6, false, false, 0.027f, -2}, {6, false, false, 0.5f, 0}};
  s.attention = a;
  return s;
}

TEST(QuantSpec, JsonRoundTripIsExact) {
  const QuantSpec s = full_spec();
  const QuantSpec back = QuantSpec::from_json(json::parse(s.to_json().dump()), "t");
  EXPECT_EQ(back, s);  // every float scale survives the JSON text exactly
  EXPECT_EQ(back.to_json(), s.to_json());
  EXPECT_TRUE(back.attention->prob_log2() == false);
  // Empty sections may be absent.
  EXPECT_EQ(QuantSpec::from_json(json{{"version", 1}}, "t"), QuantSpec{});
}

TEST(QuantSpec, EveryFieldRuleIsEnforced) {
  const json good = full_spec().to_json();
  auto edited = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return [j] { QuantSpec::from_json(j, "f.safetensors: metadata 'vitopt.quant'"); };
  };
  const std::string w = "blocks.0.attn.qkv.weight";
  // Scheme fields are required (the former runtime reader defaulted them).
  expect_input_error(edited([&](json& j) { j["weights"][w].erase("symmetric"); }),
                 {"f.safetensors", "weights['blocks.0.attn.qkv.weight'].symmetric", "missing"});
  expect_input_error(edited([&](json& j) { j["weights"][w].erase("per_channel"); }),
                 {"per_channel", "missing"});
  expect_input_error(edited([&](json& j) { j["inputs"]["head"].erase("dynamic"); }),
                 {"inputs['head'].dynamic", "missing"});
  expect_input_error(edited([&](json& j) { j["inputs"]["blocks.0.attn.qkv"].erase("zero_point"); }),
                 {"zero_point", "asymmetric"});
  expect_input_error(edited([&](json& j) { j.erase("version"); }), {"version", "missing"});
  // Unknown fields anywhere (the former LibTorch reader ignored them).
  expect_input_error(edited([&](json& j) { j["weights"][w]["group"] = 64; }), {"group", "unknown"});
  expect_input_error(edited([&](json& j) { j["inputs"]["head"]["foo"] = 1; }), {"foo", "unknown"});
  expect_input_error(edited([&](json& j) { j["extra"] = 1; }), {"extra", "unknown"});
  expect_input_error(edited([&](json& j) { j["extras"]["attention"]["probs"]["base"] = 2; }),
                 {"extras.attention.probs.base", "unknown"});
  expect_input_error(edited([&](json& j) { j["extras"]["attention"]["blocks"]["1"]["q"]["bits"] = 8; }),
                 {"blocks['1'].q.bits", "unknown"});
  expect_input_error(edited([&](json& j) { j["extras"]["attn_probs"] = json::object(); }),
                 {"unknown extras key 'attn_probs'"});
  // Values.
  expect_input_error(edited([&](json& j) { j["version"] = 2; }), {"version", "got 2"});
  expect_input_error(edited([&](json& j) { j["weights"][w]["bits"] = 17; }), {"bits", "got 17"});
  expect_input_error(edited([&](json& j) { j["weights"][w]["bits"] = 8.5; }), {"bits", "integer"});
  expect_input_error(edited([&](json& j) { j["weights"][w]["symmetric"] = 1; }), {"symmetric"});
  expect_input_error(edited([&](json& j) { j["inputs"]["blocks.0.attn.qkv"]["scale"] = 0.0; }),
                 {"scale", "> 0"});
  expect_input_error(edited([&](json& j) { j["inputs"]["blocks.0.attn.qkv"]["scale"] = 1e39; }),
                 {"scale", "finite float"});
  expect_input_error(edited([&](json& j) { j["inputs"]["blocks.0.attn.qkv"]["zero_point"] = 128; }),
                 {"zero_point", "[-128, 127]", "got 128"});
  expect_input_error(edited([&](json& j) {
                   j["inputs"]["head"]["dynamic"] = false;
                   j["inputs"]["head"]["scale"] = 0.5;
                   j["inputs"]["head"]["zero_point"] = 1;
                 }),
                 {"zero_point", "0 (symmetric)"});
  expect_input_error(edited([&](json& j) { j["inputs"]["head"]["scale"] = 0.5; }),
                 {"inputs['head']", "dynamic input"});
  expect_input_error(edited([&](json& j) { j["extras"]["attention"]["probs"]["quantizer"] = "log10"; }),
                 {"quantizer", "log10"});
  for (const char* key : {"01", "+1", "x", "", "12345678"}) {
    expect_input_error(edited([&](json& j) { j["extras"]["attention"]["blocks"][key] = json::object(); }),
                   {"decimal block index"});
  }
  expect_input_error(edited([&](json& j) { j["extras"]["attention"]["blocks"]["1"].erase("v"); }),
                 {"blocks['1'].v", "missing"});
  expect_input_error(edited([&](json& j) { j["weights"] = json::array(); }), {"weights", "object"});
}

}  // namespace
}  // namespace vitopt::io
