// read_model_header: one test per decision where the two former readers disagreed (version
// required, scheme fields required, unknown fields refused, one precision rule, kept_heads kept)
// plus the header rules both needed (quant names against the config, class names, imports).
// Files are built here with SafeTensorsWriter, so nothing depends on LibTorch.
#include "io/model_header.h"

#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "io/metadata_keys.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "io/tensor_layout.h"
#include "test_util.h"

namespace vitopt::io {
namespace {

using vitopt::testing::expect_input_error;
using nlohmann::json;
using Meta = std::map<std::string, std::string>;

// A file with zero-filled fp32 tensors of `c`'s layout and the given metadata (tensor data is
// not the header reader's business; tensors only matter for imports).
SafeTensorsFile file_of(const ViTConfig& c, const Meta& meta, const std::string& name = "m.safetensors") {
  SafeTensorsWriter w;
  for (const TensorLayout& t : model_tensors(c)) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    w.add_f32(t.name, t.shape, zeros.data());
  }
  for (const auto& [k, v] : meta) w.set_metadata(k, v);
  return SafeTensorsFile::parse(w.serialize(), name);
}

Meta vitopt_meta(const ViTConfig& c) {
  return {{kFormatKey, kFormatValue},
          {kFormatVersionKey, std::to_string(kFormatVersion)},
          {kConfigKey, c.to_json().dump()}};
}

ViTConfig tiny() { return preset("vit-tiny-test"); }

TEST(ModelHeader, ReadsEverythingAVitoptFileStores) {
  ViTConfig c = tiny();
  c.blocks[0].num_heads = 1;
  c.blocks[0].kept_heads = {1};  // bookkeeping the former runtime writer dropped
  c.blocks[1].mlp_dim = 40;
  Meta meta = vitopt_meta(c);
  meta[kClassNamesKey] = json({"a", "b"}).dump();
  meta[kQuantSourceKey] = "fp32.safetensors";  // informational keys are ignored
  const ModelHeader h = read_model_header(file_of(c, meta), {});
  EXPECT_EQ(h.config.to_json(), c.to_json());
  EXPECT_EQ(h.config.blocks[0].kept_heads, std::vector<int>{1});
  EXPECT_EQ(h.class_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h.format_version, kFormatVersion);
  EXPECT_FALSE(h.imported);
  EXPECT_FALSE(h.quant.has_value());
  EXPECT_EQ(h.precision, "fp32");
  EXPECT_EQ(h.preprocess().mean, c.preprocess.mean);
}

// Decision 1: a vitopt file must state its format version (the runtime used to accept none).
TEST(ModelHeader, VersionIsRequiredAndChecked) {
  const ViTConfig c = tiny();
  Meta meta = vitopt_meta(c);
  meta.erase(kFormatVersionKey);
  expect_input_error([&] { read_model_header(file_of(c, meta)); },
                 {"m.safetensors", "vitopt.format_version", "got nothing"});
  meta[kFormatVersionKey] = "2";
  expect_input_error([&] { read_model_header(file_of(c, meta)); },
                 {"vitopt.format_version", "expected \"1\"", "got \"2\""});
  // vitopt keys without the config: a damaged vitopt file, not a timm checkpoint.
  for (const char* key : {kFormatVersionKey, kQuantKey, kClassNamesKey}) {
    Meta m = {{key, key == kClassNamesKey ? "[]" : "1"}};
    expect_input_error([&] { read_model_header(file_of(c, m)); }, {key, "without 'vitopt.config'"});
  }
}

// Decision 3: unknown fields are refused everywhere, by every caller.
TEST(ModelHeader, UnknownConfigFieldsAreRefused) {
  const ViTConfig c = tiny();
  for (const auto& edit : std::vector<std::function<void(json&)>>{
           [](json& j) { j["mlp_ratio"] = 4; }, [](json& j) { j["blocks"][0]["heads"] = 2; },
           [](json& j) { j["preprocess"]["resize"] = 32; }}) {
    json j = c.to_json();
    edit(j);
    Meta meta = vitopt_meta(c);
    meta[kConfigKey] = j.dump();
    expect_input_error([&] { read_model_header(file_of(c, meta)); },
                   {"metadata 'vitopt.config'", "unknown field"});
  }
}

QuantSpec all_weights(const ViTConfig& c, int bits) {
  QuantSpec q;
  for (const auto& l : model_linears(c))
    for (const auto& w : l.weights) q.weights[w.name] = {bits, true, true};
  return q;
}

// Decision 2 (through the header): scheme fields are required for every caller.
TEST(ModelHeader, QuantSchemeFieldsAreRequired) {
  const ViTConfig c = tiny();
  json q = all_weights(c, 8).to_json();
  q["weights"]["head.weight"].erase("symmetric");
  Meta meta = vitopt_meta(c);
  meta[kQuantKey] = q.dump();
  expect_input_error([&] { read_model_header(file_of(c, meta)); },
                 {"metadata 'vitopt.quant'", "weights['head.weight'].symmetric", "missing"});
}

// Decision 4: one precision rule ("int6" for all-6-bit weights, where the runtime said "mixed").
TEST(ModelHeader, OnePrecisionRule) {
  const ViTConfig c = tiny();
  EXPECT_EQ(precision_label(std::nullopt), "fp32");
  EXPECT_EQ(precision_label(QuantSpec{}), "fp32");  // inputs only: weights stay fp32
  EXPECT_EQ(precision_label(all_weights(c, 6)), "int6");
  EXPECT_EQ(precision_label(all_weights(c, 8)), "int8");
  auto q = all_weights(c, 4);
  q.weights.erase("patch_embed.proj.weight");  // an fp32 patch embedding does not change it
  EXPECT_EQ(precision_label(q), "int4");
  q.weights["head.weight"].bits = 8;
  EXPECT_EQ(precision_label(q), "mixed");
  Meta meta = vitopt_meta(c);
  meta[kQuantKey] = all_weights(c, 6).to_json().dump();
  EXPECT_EQ(read_model_header(file_of(c, meta)).precision, "int6");
}

TEST(ModelHeader, QuantNamesAreCheckedAgainstTheConfig) {
  ViTConfig c = tiny();
  c.blocks[0].fc1_rank = 4;      // fc1 is low-rank: weight_u / weight_v, no .weight
  c.blocks[1].skip_attn = true;  // no attention in block 1
  c.normalize("t");
  auto header_with = [&](const QuantSpec& q) {
    Meta meta = vitopt_meta(c);
    meta[kQuantKey] = q.to_json().dump();
    return [meta, &c] { read_model_header(file_of(c, meta)); };
  };
  QuantSpec q;
  q.weights["blocks.0.mlp.fc1.weight_u"] = {8, true, true};  // a factor may be listed
  q.inputs["blocks.0.mlp.fc1"] = {8, false, true, 1.0f, 0};
  q.inputs["blocks.0.mlp.fc1.weight_u"] = {8, false, true, 1.0f, 0};  // second factor's input
  EXPECT_NO_THROW(header_with(q)());
  q.inputs["blocks.0.mlp.fc2.weight_u"] = {8, false, true, 1.0f, 0};  // fc2 is dense
  expect_input_error(header_with(q), {"inputs['blocks.0.mlp.fc2.weight_u']", "no Linear"});
  q.inputs.erase("blocks.0.mlp.fc2.weight_u");
  q.weights["blocks.0.mlp.fc1.weight"] = {8, true, true};
  expect_input_error(header_with(q), {"weights['blocks.0.mlp.fc1.weight']", "no Linear weight"});
  q.weights.erase("blocks.0.mlp.fc1.weight");
  q.inputs["blocks.1.attn.qkv"] = {8, false, true, 1.0f, 0};
  expect_input_error(header_with(q), {"inputs['blocks.1.attn.qkv']", "no Linear"});
  q.inputs.erase("blocks.1.attn.qkv");
  AttentionQuant a;
  a.blocks[1] = {};
  q.attention = a;
  expect_input_error(header_with(q), {"extras.attention.blocks['1']", "with an attention"});
  a.blocks.clear();
  a.blocks[2] = {};
  q.attention = a;
  expect_input_error(header_with(q), {"blocks['2']", "depth 2"});
}

TEST(ModelHeader, ClassNamesMustBeStrings) {
  const ViTConfig c = tiny();
  for (const char* bad : {"{\"a\": 1}", "[\"a\", 3]", "not json"}) {
    Meta meta = vitopt_meta(c);
    meta[kClassNamesKey] = bad;
    expect_input_error([&] { read_model_header(file_of(c, meta)); }, {"vitopt.class_names"});
  }
}

// A timm checkpoint (no metadata) imports with the config inferred from shapes; hints apply.
TEST(ModelHeader, ImportsTimmCheckpoints) {
  ViTConfig c = preset("deit-tiny");
  c.depth = 2;
  c.blocks.resize(2);
  c.blocks[1].mlp_dim = 500;  // a pruned timm-named file
  c.name = "imported";
  c.normalize("t");
  const auto file = file_of(c, {}, "timm.safetensors");
  // No config.json next to it and no hint: the heads are not guessed.
  expect_input_error([&] { read_model_header(file, {}); },
                     {"timm.safetensors", "attention heads is not recorded", "--import-heads"});
  ImportHints three;
  three.num_heads = 3;
  const ModelHeader h = read_model_header(file, three);
  EXPECT_TRUE(h.imported);
  EXPECT_EQ(h.format_version, 0);
  EXPECT_EQ(h.config.to_json(), c.to_json());  // ImageNet preprocessing for RGB
  EXPECT_EQ(count_params(h.config), count_params(c));
  ImportHints hints;
  hints.num_heads = 6;
  hints.mean = std::vector<float>{0.5f};
  const ModelHeader h6 = read_model_header(file, hints);
  EXPECT_EQ(h6.config.num_heads, 6);
  EXPECT_EQ(h6.config.head_dim, 32);
  EXPECT_EQ(h6.preprocess().mean, (std::vector<float>{0.5f, 0.5f, 0.5f}));
  hints.num_heads = 5;
  expect_input_error([&] { read_model_header(file, hints); }, {"timm.safetensors", "heads", "got 5"});
}

// tensor_bytes: what the writers store, tensor by tensor, for fp32 and quantized layouts.
TEST(ModelCounts, TensorBytesMatchTheLayout) {
  ViTConfig c = tiny();
  c.distill_token = true;
  c.normalize("t");
  EXPECT_EQ(tensor_bytes(c), 4 * count_params(c));
  QuantSpec q;
  q.weights["head.weight"] = {4, false, true};          // (10, 32): 10*16 + 40 + 40
  q.weights["blocks.0.mlp.fc1.weight"] = {12, true, false};  // (64, 32): 2*2048 + 4
  EXPECT_EQ(tensor_bytes(c, q),
            4 * (count_params(c) - 10 * 32 - 64 * 32) + (160 + 40 + 40) + (4096 + 4));
  EXPECT_EQ(quantized_weight_bytes(3, 5, {4, false, true}), 3 * 3 + 12 + 12);
}

}  // namespace
}  // namespace vitopt::io
