// ViTConfig: JSON round trip of every field, normalize() errors naming the field, strict field
// types, and the analytic MAC/parameter counts checked by hand for vit-tiny-test. Every preset is
// checked in presets_test.cpp.
#include "io/vit_config.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>

#include "core/error.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "test_util.h"

namespace vitopt::io {

using nlohmann::json;
namespace {

using vitopt::testing::expect_input_error;

ViTConfig unusual_config() {
  ViTConfig c;
  c.name = "odd";
  c.image_size = 32;
  c.in_channels = 3;
  c.patch_size = 8;
  c.embed_dim = 48;
  c.depth = 3;
  c.num_heads = 4;
  c.head_dim = 16;
  c.mlp_dim = 100;
  c.num_classes = 7;
  c.qkv_bias = false;
  c.distill_token = true;
  c.pool = "token";
  c.ln_eps = 1e-5;
  c.preprocess.mean = {0.1f, 0.2f, 0.3f};
  c.preprocess.std = {0.4f, 0.5f, 0.6f};
  c.preprocess.interpolation = "bicubic";
  c.preprocess.crop_pct = 0.9f;
  c.blocks.resize(3);
  c.blocks[0].num_heads = 2;
  c.blocks[0].kept_heads = {3, 1};
  c.blocks[0].mlp_dim = 40;
  c.blocks[0].qkv_rank = 5;
  c.blocks[0].proj_rank = 6;
  c.blocks[0].fc1_rank = 7;
  c.blocks[0].fc2_rank = 8;
  c.blocks[1].skip_attn = true;
  c.blocks[1].skip_mlp = true;
  c.blocks[2] = c.blocks[0];
  c.blocks[2].kept_heads = {0, 2};
  c.blocks[2].attn_shared_with = 0;
  c.blocks[2].mlp_shared_with = 0;
  c.blocks[2].delta_rank = 3;
  return c;
}

TEST(ViTConfig, JsonRoundTripKeepsEveryField) {
  ViTConfig c = unusual_config();
  c.normalize("test");
  const json j = json::parse(c.to_json().dump());
  for (const char* key : {"name", "image_size", "in_channels", "patch_size", "embed_dim", "depth",
                          "num_heads", "head_dim", "mlp_dim", "num_classes", "qkv_bias",
                          "distill_token", "pool", "ln_eps", "blocks", "preprocess"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  ViTConfig r = ViTConfig::from_json(j, "test");
  EXPECT_EQ(r.name, c.name);
  EXPECT_EQ(r.image_size, c.image_size);
  EXPECT_EQ(r.in_channels, c.in_channels);
  EXPECT_EQ(r.patch_size, c.patch_size);
  EXPECT_EQ(r.embed_dim, c.embed_dim);
  EXPECT_EQ(r.depth, c.depth);
  EXPECT_EQ(r.num_heads, c.num_heads);
  EXPECT_EQ(r.head_dim, c.head_dim);
  EXPECT_EQ(r.mlp_dim, c.mlp_dim);
  EXPECT_EQ(r.num_classes, c.num_classes);
  EXPECT_EQ(r.qkv_bias, c.qkv_bias);
  EXPECT_EQ(r.distill_token, c.distill_token);
  EXPECT_EQ(r.pool, c.pool);
  EXPECT_DOUBLE_EQ(r.ln_eps, c.ln_eps);
  ASSERT_EQ(r.blocks.size(), c.blocks.size());
  for (size_t b = 0; b < c.blocks.size(); ++b) EXPECT_EQ(r.blocks[b], c.blocks[b]) << b;
  EXPECT_EQ(r.preprocess.mean, c.preprocess.mean);
  EXPECT_EQ(r.preprocess.std, c.preprocess.std);
  EXPECT_EQ(r.preprocess.interpolation, c.preprocess.interpolation);
  EXPECT_FLOAT_EQ(r.preprocess.crop_pct, c.preprocess.crop_pct);
  EXPECT_EQ(r.to_json(), c.to_json());
  r.normalize("again");  // idempotent
  EXPECT_EQ(r.to_json(), c.to_json());
}

TEST(ViTConfig, NormalizeFillsDefaults) {
  ViTConfig c;
  c.embed_dim = 96;
  c.num_heads = 3;
  c.mlp_dim = 200;
  c.depth = 4;
  c.normalize();
  EXPECT_EQ(c.head_dim, 32);
  ASSERT_EQ(c.blocks.size(), 4u);
  EXPECT_EQ(c.block_heads(2), 3);
  EXPECT_EQ(c.block_mlp(3), 200);
  EXPECT_EQ(c.block_attn_dim(1), 96);
  EXPECT_EQ(c.num_tokens(), 50);  // 7 * 7 patches + cls
}

TEST(ViTConfig, NormalizeErrorsNameTheField) {
  auto bad = [](const std::function<void(ViTConfig&)>& edit) {
    return [edit] {
      ViTConfig c;
      edit(c);
      c.normalize("my.json");
    };
  };
  expect_input_error(bad([](ViTConfig& c) { c.embed_dim = 100, c.num_heads = 3; }),
                     {"my.json", "num_heads", "divisor of embed_dim 100", "got 3"});
  expect_input_error(bad([](ViTConfig& c) { c.patch_size = 5; }),
                     {"my.json", "patch_size", "image_size 28", "got 5"});
  expect_input_error(bad([](ViTConfig& c) { c.depth = -1; }), {"depth", "got -1"});
  expect_input_error(bad([](ViTConfig& c) { c.image_size = 0; }), {"image_size", "got 0"});
  expect_input_error(bad([](ViTConfig& c) { c.mlp_dim = -4; }), {"mlp_dim", "got -4"});
  expect_input_error(bad([](ViTConfig& c) { c.head_dim = -2; }), {"head_dim", "got -2"});
  expect_input_error(bad([](ViTConfig& c) { c.num_classes = 0; }), {"num_classes"});
  expect_input_error(bad([](ViTConfig& c) { c.pool = "max"; }), {"pool", "max"});
  expect_input_error(bad([](ViTConfig& c) { c.ln_eps = 0; }), {"ln_eps"});
  expect_input_error(bad([](ViTConfig& c) { c.distill_token = true, c.pool = "avg"; }), {"pool"});
  expect_input_error(bad([](ViTConfig& c) { c.class_token = false; }),
                     {"my.json", "pool", "\"avg\" when class_token is false"});
  expect_input_error(bad([](ViTConfig& c) { c.class_token = false, c.distill_token = true; }),
                     {"pool"});  // token pool for the distillation head, avg without class token
  expect_input_error(bad([](ViTConfig& c) { c.reg_tokens = 300; }), {"reg_tokens", "got 300"});
  expect_input_error(bad([](ViTConfig& c) { c.reg_tokens = -1; }), {"reg_tokens", "got -1"});
  expect_input_error(bad([](ViTConfig& c) { c.blocks.resize(2); }),
                     {"blocks", "6 entries", "got 2"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.preprocess.mean = {0.1f, 0.2f};
                     }),
                     {"preprocess.mean", "1 values"});
  expect_input_error(bad([](ViTConfig& c) { c.preprocess.std = {0.0f}; }), {"preprocess.std"});
  expect_input_error(bad([](ViTConfig& c) { c.preprocess.crop_pct = 1.5f; }),
                     {"preprocess.crop_pct"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[3].num_heads = -1;
                     }),
                     {"blocks[3].num_heads", "got -1"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[2].attn_shared_with = 2;
                     }),
                     {"blocks[2].attn_shared_with", "earlier block"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[1].mlp_dim = 10;
                       c.blocks[2].mlp_shared_with = 1;
                     }),
                     {"blocks[2].mlp_shared_with", "same mlp_dim"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[1].attn_shared_with = 0;
                       c.blocks[2].attn_shared_with = 1;  // a chain: 1 is not an owner
                     }),
                     {"blocks[2].attn_shared_with", "its own weights"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[0].skip_attn = true;
                       c.blocks[2].attn_shared_with = 0;
                     }),
                     {"blocks[2].attn_shared_with", "neither skipped"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[2].delta_rank = 2;  // shares nothing
                     }),
                     {"blocks[2].delta_rank", "shares no weights"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[2].mlp_shared_with = 0;
                       c.blocks[2].delta_rank = 129;  // fc1 (256, 128): smallest side 128
                     }),
                     {"blocks[2].delta_rank", "[1, 128]", "got 129"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[0].fc1_rank = 1000;
                     }),
                     {"blocks[0].fc1_rank", "got 1000"});
  expect_input_error(bad([](ViTConfig& c) {
                       c.blocks.resize(6);
                       c.blocks[0].kept_heads = {0, 0, 1, 2};
                     }),
                     {"blocks[0].kept_heads", "distinct"});
}

TEST(ViTConfig, FromJsonErrorsNameTheField) {
  expect_input_error(
      [] {
        ViTConfig::from_json(json{{"mlp_dims", 4}}, "cfg.json");
      },
      {"cfg.json", "mlp_dims", "unknown"});
  expect_input_error(
      [] {
        ViTConfig::from_json(json{{"depth", "six"}}, "cfg.json");
      },
      {"cfg.json", "depth", "six"});
  expect_input_error(
      [] {
        ViTConfig::from_json(json{{"blocks", json::array({{{"skip_mlp", 3.5}}})}}, "c.json");
      },
      {"blocks[0]", "skip_mlp"});
  expect_input_error(
      [] {
        ViTConfig::from_json(json{{"preprocess", {{"meen", 1}}}}, "c.json");
      },
      {"preprocess.meen"});
  // Strict types: no float, string or out-of-range number reaches an int field.
  for (const json& bad : {json(3.5), json("6"), json(1e300), json(int64_t{1} << 40), json(true)}) {
    expect_input_error([&] { ViTConfig::from_json(json{{"depth", bad}}, "c.json"); },
                       {"c.json", "depth"});
  }
  expect_input_error([] { ViTConfig::from_json(json{{"qkv_bias", 1}}, "c.json"); }, {"qkv_bias"});
  expect_input_error(
      [] { ViTConfig::from_json(json{{"blocks", json::array({{{"kept_heads", {0, 1.5}}}})}}, "c"); },
      {"blocks[0].kept_heads[1]"});
  expect_input_error([] { ViTConfig::from_json(json{{"blocks", json::array({{{"heads", 2}}})}}, "c"); },
                     {"blocks[0].heads", "unknown"});
  expect_input_error([] { ViTConfig::from_json(json{{"preprocess", {{"std", {1e60}}}}}, "c"); },
                     {"preprocess.std[0]", "float range"});
  expect_input_error([] { ViTConfig::from_json(json::array(), "c.json"); }, {"c.json", "object"});
}

TEST(ViTConfig, OlderWholeBlockSharingIsRefusedAndUnsharedStillReads) {
  // Older files wrote "shared_with" on every block: -1 still reads, a whole-block share does not.
  const ViTConfig plain = ViTConfig::from_json(
      json{{"depth", 2}, {"blocks", json::array({{{"shared_with", -1}}, {{"shared_with", -1}}})}},
      "old");
  EXPECT_EQ(plain.blocks[1].attn_shared_with, -1);
  expect_input_error(
      [] {
        ViTConfig::from_json(
            json{{"depth", 2}, {"blocks", json::array({json::object(), {{"shared_with", 0}}})}},
            "old.json");
      },
      {"old.json", "blocks[1].shared_with", "vitopt share"});
  // Sharing fields are written only when set (older readers then refuse such a file).
  ViTConfig c = preset("vit-tiny-test");
  c.normalize("c");
  EXPECT_FALSE(c.to_json()["blocks"][1].contains("attn_shared_with"));
  c.blocks[1].mlp_shared_with = 0;
  EXPECT_EQ(c.to_json()["blocks"][1]["mlp_shared_with"], 0);
}

TEST(ViTConfig, SizeLimitsKeepArithmeticInRange) {
  auto bad = [](const std::function<void(ViTConfig&)>& edit) {
    return [edit] {
      ViTConfig c;
      edit(c);
      c.normalize("limits");
    };
  };
  expect_input_error(bad([](ViTConfig& c) { c.image_size = 8192, c.patch_size = 8192; }),
                     {"image_size", "4096"});
  expect_input_error(bad([](ViTConfig& c) { c.image_size = 2048, c.patch_size = 2; }),
                     {"tokens"});
  expect_input_error(bad([](ViTConfig& c) { c.embed_dim = 16384, c.num_heads = 1024, c.head_dim = 512; }),
                     {"qkv weight"});
  expect_input_error(bad([](ViTConfig& c) { c.ln_eps = std::numeric_limits<double>::infinity(); }),
                     {"ln_eps"});
}

TEST(ViTConfig, CountsByHandForTinyTest) {
  const ViTConfig c = preset("vit-tiny-test");  // 28/7 -> 16 patches, N 17, C 32, H 2, D 16, M 64
  // patch conv 16*32*49; per block qkv 17*32*96, q@k^T and attn@v 2*2*17*17*16, proj 17*32*32,
  // fc1 + fc2 2*17*32*64; head 32*10.
  const int64_t block = 17 * 32 * 96 + 2 * 2 * 17 * 17 * 16 + 17 * 32 * 32 + 2 * 17 * 32 * 64;
  EXPECT_EQ(count_macs(c), 16 * 32 * 49 + 2 * block + 32 * 10);
  EXPECT_EQ(count_macs(c), 340928);
  // patch 32*49+32, cls 32, pos 17*32, block (2 norms 128, qkv 3168, proj 1056, fc1 2112,
  // fc2 2080), final norm 64, head 330.
  EXPECT_EQ(count_params(c), 1600 + 32 + 544 + 2 * 8544 + 64 + 330);

  ViTConfig s = c;
  s.blocks[1].skip_mlp = true;
  EXPECT_EQ(count_params(s), count_params(c) - 64 - 2112 - 2080);
  EXPECT_EQ(count_macs(s), count_macs(c) - 2 * 17 * 32 * 64);
  ViTConfig r = c;
  r.blocks[0].fc1_rank = 4;  // (64, 4) x (4, 32) instead of (64, 32)
  EXPECT_EQ(count_params(r), count_params(c) - 64 * 32 + 4 * (64 + 32));
  EXPECT_EQ(count_macs(r), count_macs(c) - 17 * 64 * 32 + 17 * 4 * (64 + 32));
  // Block 1 shares block 0's attention weights with a rank-2 delta: it keeps norm1 (64) and the
  // biases (96 + 32), drops qkv (96, 32) and proj (32, 32), adds 2 * (32 + 96) + 2 * (32 + 32).
  ViTConfig sh = c;
  sh.blocks[1].attn_shared_with = 0;
  sh.blocks[1].delta_rank = 2;
  EXPECT_EQ(count_params(sh), count_params(c) - 96 * 32 - 32 * 32 + 2 * (32 + 96) + 2 * (32 + 32));
  EXPECT_EQ(count_macs(sh), count_macs(c) + 17 * 2 * (32 + 96 + 32 + 32));
}

// timm layouts: registers add tokens (and their own parameters), positions on the patches only
// drop the prefix rows of pos_embed, no class token drops one token and its parameter.
TEST(ViTConfig, TimmLayoutsCountTokensAndParamsByHand) {
  const ViTConfig c = preset("vit-tiny-test");  // 16 patches + cls
  ViTConfig regs = c;
  regs.reg_tokens = 4;
  regs.no_embed_class = true;
  regs.fc_norm = true;
  regs.normalize("regs");
  EXPECT_EQ(regs.num_prefix_tokens(), 5);
  EXPECT_EQ(regs.num_tokens(), 21);
  EXPECT_EQ(regs.pos_embed_tokens(), 16);
  // + 4 register tokens * 32, pos_embed 16 rows instead of 17; fc_norm has norm's 64.
  EXPECT_EQ(count_params(regs), count_params(c) + 4 * 32 - 32);
  ViTConfig gap = c;
  gap.class_token = false;
  gap.pool = "avg";
  gap.normalize("gap");
  EXPECT_EQ(gap.num_tokens(), 16);
  EXPECT_EQ(count_params(gap), count_params(c) - 32 - 32);  // cls and its position
  // JSON: the new fields are written only when set, and read back.
  EXPECT_FALSE(c.to_json().contains("reg_tokens"));
  const ViTConfig back = ViTConfig::from_json(json::parse(regs.to_json().dump()), "regs");
  EXPECT_EQ(back.reg_tokens, 4);
  EXPECT_TRUE(back.no_embed_class);
  EXPECT_TRUE(back.fc_norm);
  EXPECT_TRUE(back.class_token);
  EXPECT_FALSE(ViTConfig::from_json(json::parse(gap.to_json().dump()), "gap").class_token);
}

}  // namespace
}  // namespace vitopt::io
