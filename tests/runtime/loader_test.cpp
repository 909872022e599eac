// Loader validation: valid fp32/quantized files load; each kind of damage is refused with an
// InputError that names the file and the offending tensor/field (checked by message substring).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <map>

#include "core/error.h"
#include "io/presets.h"
#include "io/safetensors.h"
#include "runtime/model_loader.h"
#include "runtime_test_util.h"
#include "test_util.h"
#include "vitopt/runtime.h"

namespace vitopt::runtime {
namespace {

struct Tensor {
  io::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
using Tensors = std::map<std::string, Tensor>;
using Meta = std::map<std::string, std::string>;

std::vector<uint8_t> rewrite(const std::vector<uint8_t>& bytes,
                             const std::function<void(Tensors&, Meta&)>& edit) {
  const auto f = io::SafeTensorsFile::parse(bytes, "orig");
  Tensors t;
  for (const auto& n : f.names()) {
    const auto& i = f.info(n);
    t[n] = {i.dtype, i.shape, std::vector<uint8_t>(f.data(n), f.data(n) + i.nbytes)};
  }
  Meta m = f.metadata();
  edit(t, m);
  io::SafeTensorsWriter w;
  for (const auto& [n, x] : t) w.add(n, x.dtype, x.shape, x.bytes.data(), x.bytes.size());
  for (const auto& [k, v] : m) w.set_metadata(k, v);
  return w.serialize();
}

RandomModelOptions tiny(int wbits = 0) {
  RandomModelOptions o;
  o.config = io::preset("vit-tiny-test");
  if (wbits) {
    o.weight_bits = wbits;
    o.input_bits = 8;
  }
  return o;
}

void expect_refused(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    (void)Engine::load_bytes(bytes, "bad.safetensors");
    ADD_FAILURE() << "loaded a damaged file; expected an error mentioning '" << needle << "'";
  } catch (const core::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST(Loader, ValidFilesLoadAndRoundTripThroughDisk) {
  vitopt::testing::TempDir dir;
  for (int bits : {0, 8, 4, 3, 12}) {
    auto o = tiny(bits);
    const auto path = dir / fmt::format("m{}.safetensors", bits);
    write_random_model(o, path);
    auto e = Engine::load(path);
    EXPECT_EQ(e->info().num_classes, 10);
    std::vector<float> x(28 * 28, 0.1f), y(10);
    e->run(x.data(), 1, y.data());
    for (float v : y) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(Loader, RefusesMissingWrongOrExtraTensors) {
  const auto good = random_model_bytes(tiny());
  expect_refused(rewrite(good, [](Tensors& t, Meta&) { t.erase("blocks.1.mlp.fc1.weight"); }),
                 "blocks.1.mlp.fc1.weight");
  expect_refused(rewrite(good, [](Tensors& t, Meta&) { t["blocks.0.norm1.bias"].shape = {8, 4}; }),
                 "blocks.0.norm1.bias");
  expect_refused(rewrite(good, [](Tensors& t, Meta&) { t["blocks.9.attn.qkv.weight"] = t["head.bias"]; }),
                 "unexpected tensor 'blocks.9.attn.qkv.weight'");
  expect_refused(rewrite(good, [](Tensors& t, Meta&) {
                   float nan = std::nanf("");
                   std::memcpy(t["pos_embed"].bytes.data() + 8, &nan, 4);
                 }),
                 "pos_embed");
  expect_refused(rewrite(good, [](Tensors& t, Meta&) { t["head.weight"].dtype = io::DType::I32; }),
                 "head.weight");
  expect_refused(rewrite(good, [](Tensors&, Meta& m) { m.erase("vitopt.config"); }), "vitopt.config");
  // assign(1, '2'), not = "2": GCC 12 reports a false -Wrestrict on the short literal.
  expect_refused(rewrite(good, [](Tensors&, Meta& m) { m["vitopt.format_version"].assign(1, '2'); }),
                 "format_version");
}

// timm's layouts: the tensors follow the config (cls_token only with a class token, reg_token
// (1, R, C), pos_embed of the patches only with no_embed_class, the final norm as "fc_norm"), and
// one from another layout is refused like any other unexpected or missing tensor.
TEST(Loader, TimmLayoutTensorsFollowTheConfig) {
  RandomModelOptions o = tiny();
  o.config.class_token = false;
  o.config.pool = "avg";
  o.config.reg_tokens = 3;
  o.config.no_embed_class = true;
  o.config.fc_norm = true;
  o.config.normalize("layout");
  const auto good = random_model_bytes(o);
  const LoadedModel m = load_model_data(io::SafeTensorsFile::parse(good, "layout"));
  const size_t C = static_cast<size_t>(m.config.embed_dim);
  EXPECT_TRUE(m.cls_token.empty());
  EXPECT_TRUE(m.dist_token.empty());
  EXPECT_EQ(m.reg_token.size(), 3 * C);
  EXPECT_EQ(m.pos_embed.size(), static_cast<size_t>(m.config.num_patches()) * C);
  EXPECT_EQ(m.norm.gamma.size(), C);
  std::vector<float> x(28 * 28, 0.1f), y(10);
  Engine::load_bytes(good, "layout")->run(x.data(), 1, y.data());
  for (float v : y) EXPECT_TRUE(std::isfinite(v));

  expect_refused(rewrite(good,
                         [](Tensors& t, Meta&) {
                           t["cls_token"] = {io::DType::F32, {1, 1, 32}, t["fc_norm.bias"].bytes};
                         }),
                 "unexpected tensor 'cls_token'");
  expect_refused(rewrite(good, [](Tensors& t, Meta&) { t.erase("reg_token"); }), "reg_token");
  expect_refused(rewrite(good,
                         [](Tensors& t, Meta&) {
                           t["reg_token"].shape = {1, 1, 96};
                         }),
                 "reg_token");
  expect_refused(rewrite(good,
                         [](Tensors& t, Meta&) {
                           t["norm.weight"] = t["fc_norm.weight"];
                           t.erase("fc_norm.weight");
                         }),
                 "fc_norm.weight");
  // A pos_embed with prefix rows (the other layout) has the wrong shape.
  auto embed_class = o;
  embed_class.config.no_embed_class = false;
  const auto with_prefix_pos = random_model_bytes(embed_class);
  expect_refused(rewrite(good,
                         [&](Tensors& t, Meta&) {
                           const auto f = io::SafeTensorsFile::parse(with_prefix_pos, "other");
                           const auto& i = f.info("pos_embed");
                           t["pos_embed"] = {i.dtype, i.shape,
                                             std::vector<uint8_t>(f.data("pos_embed"),
                                                                  f.data("pos_embed") + i.nbytes)};
                         }),
                 "pos_embed");
  // The classic layout (its final norm read as "norm"): a class token, pos_embed on every token.
  const LoadedModel classic =
      load_model_data(io::SafeTensorsFile::parse(random_model_bytes(tiny()), "tiny"));
  EXPECT_EQ(classic.cls_token.size(), C);
  EXPECT_TRUE(classic.reg_token.empty());
  EXPECT_EQ(classic.pos_embed.size(), static_cast<size_t>(classic.config.num_tokens()) * C);
}

TEST(Loader, RefusesBadConfigs) {
  const auto good = random_model_bytes(tiny());
  auto with_config = [&](const std::function<void(nlohmann::json&)>& edit) {
    return rewrite(good, [&](Tensors&, Meta& m) {
      auto j = nlohmann::json::parse(m["vitopt.config"]);
      edit(j);
      m["vitopt.config"] = j.dump();
    });
  };
  expect_refused(with_config([](nlohmann::json& j) { j["mlp_dims"] = 3; }), "mlp_dims");
  expect_refused(with_config([](nlohmann::json& j) { j["patch_size"] = 5; }), "patch_size");
  expect_refused(with_config([](nlohmann::json& j) { j["blocks"][1]["shared_with"] = 1; }), "shared_with");
  expect_refused(with_config([](nlohmann::json& j) { j["blocks"][1]["attn_shared_with"] = 1; }),
                 "attn_shared_with");
  expect_refused(with_config([](nlohmann::json& j) {
                   j["blocks"][1]["mlp_shared_with"] = 0;
                   j["blocks"][1]["delta_rank"] = 3;
                 }),
                 "blocks.1.mlp.fc1.delta_v");  // config and tensors disagree
  expect_refused(with_config([](nlohmann::json& j) { j["head_dim"] = 4096; }), "head_dim");
  expect_refused(with_config([](nlohmann::json& j) { j["blocks"][0]["mlp_dim"] = 65; }),
                 "blocks.0.mlp.fc1.weight");  // config and tensors disagree
}

TEST(Loader, RefusesBadQuantization) {
  const auto q8 = random_model_bytes(tiny(8));
  auto with_quant = [&](const std::vector<uint8_t>& base, const std::function<void(nlohmann::json&)>& edit) {
    return rewrite(base, [&](Tensors&, Meta& m) {
      auto j = nlohmann::json::parse(m["vitopt.quant"]);
      edit(j);
      m["vitopt.quant"] = j.dump();
    });
  };
  expect_refused(with_quant(q8, [](nlohmann::json& j) { j["extras"]["attn_probs"] = {{"bits", 8}}; }),
                 "extras key 'attn_probs'");
  // extras.attention is implemented: malformed entries are refused by field.
  const nlohmann::json attention = {
      {"bits", 8}, {"symmetric", true}, {"probs", {{"quantizer", "log2"}, {"bits", 4}}},
      {"blocks", {{"0", {{"q", {{"scale", 0.05}}}, {"k", {{"scale", 0.05}}}, {"v", {{"scale", 0.05}}}}}}}};
  EXPECT_NO_THROW(load_model_data(io::SafeTensorsFile::parse(
      with_quant(q8, [&](nlohmann::json& j) { j["extras"]["attention"] = attention; }), "ok")));
  expect_refused(with_quant(q8, [&](nlohmann::json& j) {
                   j["extras"]["attention"] = attention;
                   j["extras"]["attention"]["probs"]["quantizer"] = "log10";
                 }),
                 "quantizer");
  expect_refused(with_quant(q8, [&](nlohmann::json& j) {
                   j["extras"]["attention"] = attention;
                   j["extras"]["attention"]["blocks"]["7"] = attention["blocks"]["0"];
                 }),
                 "blocks['7']");
  expect_refused(with_quant(q8, [&](nlohmann::json& j) {
                   j["extras"]["attention"] = attention;
                   j["extras"]["attention"]["blocks"]["0"].erase("v");
                 }),
                 "blocks['0'].v'");
  expect_refused(with_quant(q8, [&](nlohmann::json& j) {
                   j["extras"]["attention"] = attention;
                   j["extras"]["attention"]["blocks"]["0"]["k"]["scale"] = 0.0;
                 }),
                 "scale");
  expect_refused(with_quant(q8, [](nlohmann::json& j) { j["weights"]["blocks.0.attn.qkv.weight"]["bits"] = 17; }),
                 "bits");
  expect_refused(with_quant(q8, [](nlohmann::json& j) { j["weights"]["blocks.0.attn.qkv.weight"]["bits"] = 4; }),
                 "blocks.0.attn.qkv.weight");  // I8 data declared as 4-bit -> dtype/shape error
  expect_refused(with_quant(q8, [](nlohmann::json& j) { j["inputs"]["blocks.0.attn.nope"] = j["inputs"]["head"]; }),
                 "blocks.0.attn.nope");
  expect_refused(with_quant(q8, [](nlohmann::json& j) { j["inputs"]["head"]["foo"] = 1; }), "foo");
  expect_refused(with_quant(q8, [](nlohmann::json& j) {
                   j["inputs"]["head"] = {{"bits", 8}, {"symmetric", false}, {"dynamic", false}, {"scale", -1.0}, {"zero_point", 0}};
                 }),
                 "scale");
  expect_refused(with_quant(q8, [](nlohmann::json& j) { j["version"] = 2; }), "version");
  // Symmetric 8-bit weights never use the code -128.
  expect_refused(rewrite(q8, [](Tensors& t, Meta&) { t["blocks.0.mlp.fc2.weight"].bytes[5] = 0x80; }),
                 "outside [-127, 127] for 8-bit symmetric");
  expect_refused(rewrite(q8, [](Tensors& t, Meta&) {
                   float z = 0.0f;
                   std::memcpy(t["head.weight.scale"].bytes.data(), &z, 4);
                 }),
                 "head.weight.scale");
  expect_refused(rewrite(q8, [](Tensors& t, Meta&) { t["head.weight.zero_point"] = t["head.bias"]; }),
                 "head.weight.zero_point");
  // 3-bit packed nibbles: a code past qmax, and a non-zero pad nibble (in = 49 is odd).
  auto o3 = tiny(3);
  const auto q3 = random_model_bytes(o3);
  expect_refused(rewrite(q3, [](Tensors& t, Meta&) { t["blocks.0.attn.qkv.weight"].bytes[0] = 0x07; }),
                 "outside [-3, 3] for 3-bit");
  expect_refused(rewrite(q3, [](Tensors& t, Meta&) {
                   auto& b = t["patch_embed.proj.weight"].bytes;  // (32, 25): in = 49 -> odd
                   b[24] = static_cast<uint8_t>(b[24] | 0x10);
                 }),
                 "pad nibble");
}

TEST(Loader, ParsesQuantizedTensorsExactly) {
  // 4-bit asymmetric per-tensor weights: unpacked codes equal what the writer quantized.
  auto o = tiny(4);
  o.weight_symmetric = false;
  o.per_channel = false;
  const auto bytes = random_model_bytes(o);
  const auto f = io::SafeTensorsFile::parse(bytes, "q4");
  const LoadedModel m = load_model_data(f);
  const LinearData& l = m.blocks[0].fc1[0];
  ASSERT_TRUE(l.wq.has_value());
  EXPECT_EQ(l.wq->bits, 4);
  EXPECT_FALSE(l.wq->symmetric);
  const uint8_t* raw = f.data("blocks.0.mlp.fc1.weight");
  const int half = (l.in + 1) / 2;
  for (int i = 0; i < l.in; ++i) {
    const int nib = i % 2 == 0 ? raw[i / 2] & 0xF : raw[i / 2] >> 4;
    EXPECT_EQ(l.q[static_cast<size_t>(i)], nib - 8);
  }
  (void)half;
  for (int r = 1; r < l.out; ++r) EXPECT_EQ(l.scale[static_cast<size_t>(r)], l.scale[0]);
  EXPECT_EQ(m.precision, "int4");
  ASSERT_TRUE(l.iq.has_value());
  EXPECT_TRUE(l.iq->dynamic);
}

}  // namespace
}  // namespace vitopt::runtime
