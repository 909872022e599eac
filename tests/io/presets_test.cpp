// Every preset in the registry: a valid config (normalize idempotent), an exact JSON round trip,
// a description, unique names, and the figures of the known shapes (DeiT/ViT parameter counts as
// published by timm). Instantiated-module counts: tests/model/vit_test.cpp.
#include "io/presets.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "io/model_counts.h"

namespace vitopt::io {
namespace {

TEST(Presets, EveryPresetIsValidAndRoundTrips) {
  ASSERT_FALSE(presets().empty());
  std::set<std::string> names;
  for (const auto& entry : presets()) {
    SCOPED_TRACE(entry.name);
    EXPECT_TRUE(names.insert(entry.name).second) << "duplicate preset name";
    EXPECT_FALSE(entry.description.empty());
    EXPECT_EQ(entry.description.find('\n'), std::string::npos) << "one line";
    const ViTConfig c = preset(entry.name);
    EXPECT_EQ(c.name, entry.name);
    EXPECT_EQ(static_cast<int>(c.blocks.size()), c.depth);
    ViTConfig again = c;
    again.normalize("again");
    EXPECT_EQ(again.to_json(), c.to_json());
    const ViTConfig back = ViTConfig::from_json(nlohmann::json::parse(c.to_json().dump()), "rt");
    EXPECT_EQ(back.to_json(), c.to_json());
    EXPECT_EQ(back.blocks, c.blocks);
    EXPECT_EQ(back.preprocess, c.preprocess);
    EXPECT_GT(count_params(c), 0);
    EXPECT_GT(count_macs(c), count_params(c) - other_params(c));  // every block weight used >= once
  }
  EXPECT_EQ(preset_names().size(), presets().size());
}

TEST(Presets, KnownShapes) {
  const ViTConfig f = preset("vit-fmnist");
  EXPECT_EQ(f.image_size, 28);
  EXPECT_EQ(f.patch_size, 4);
  EXPECT_EQ(f.embed_dim, 128);
  EXPECT_EQ(f.depth, 6);
  EXPECT_EQ(f.num_heads, 4);
  EXPECT_EQ(f.mlp_dim, 256);
  EXPECT_FLOAT_EQ(f.preprocess.mean[0], 0.2860f);
  const ViTConfig d = preset("deit-tiny");
  EXPECT_EQ(d.num_tokens(), 197);
  EXPECT_EQ(d.head_dim, 64);
  EXPECT_FLOAT_EQ(d.preprocess.crop_pct, 0.875f);
  EXPECT_EQ(d.preprocess.std.size(), 3u);
  EXPECT_EQ(preset("vit-base-16").mlp_dim, 3072);
  const ViTConfig t = preset("vit-tiny-imagenet");  // 64x64x3, P 8, C 576, 6 x (6 heads, MLP 1536)
  EXPECT_EQ(t.num_tokens(), 65);
  EXPECT_EQ(t.head_dim, 96);
  EXPECT_EQ(t.num_classes, 200);
  EXPECT_EQ(count_params(t),
            18885512);  // by hand: 111168 + 576 + 37440 + 6 * 3103296 + 1152 + 115400
  // timm's published parameter counts (deit_tiny_patch16_224 5,717,416; deit_small 22,050,664;
  // vit_base_patch16_224 86,567,656).
  EXPECT_EQ(count_params(d), 5717416);
  EXPECT_EQ(count_params(preset("deit-small")), 22050664);
  EXPECT_EQ(count_params(preset("vit-base-16")), 86567656);
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  try {
    preset("deit-huge");
    FAIL() << "expected an InputError";
  } catch (const core::InputError& e) {
    const std::string what = e.what();
    for (const auto& name : preset_names()) EXPECT_NE(what.find(name), std::string::npos) << name;
    EXPECT_NE(what.find("deit-huge"), std::string::npos);
  }
}

}  // namespace
}  // namespace vitopt::io
