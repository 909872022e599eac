// Model files: save -> load is bit-exact with the same logits; timm import (no metadata, F16/BF16);
// corrupt or mismatched files fail with InputErrors naming the tensor / field / version.
#include "model/model_file.h"

#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/presets.h"
#include "test_util.h"

namespace vitopt::model {
namespace {

using vitopt::testing::expect_input_error;
using vitopt::testing::TempDir;

ViT random_model(io::ViTConfig c, uint64_t seed) {
  ViT m(std::move(c));
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * 0.1);
  return m;
}

torch::Tensor input_for(const io::ViTConfig& c, int64_t batch) {
  auto gen = at::detail::createCPUGenerator(99);
  return torch::randn({batch, c.in_channels, c.image_size, c.image_size}, gen);
}

struct Variant {
  std::string drop{};                // tensor left out
  std::string reshape{};             // tensor written flattened
  std::string extra{};               // unexpected tensor added
  io::DType dtype = io::DType::F32;  // F32, F16 or BF16 (or I32 to be rejected)
  bool metadata = true;              // our config metadata (else: a timm checkpoint)
  std::string version = "1";
};

// Writes the model's tensors by hand with one thing changed.
void write_variant(ViT& m, const std::filesystem::path& path, const Variant& v) {
  io::SafeTensorsWriter w;
  for (const auto& item : m->named_parameters()) {
    if (item.key() == v.drop) continue;
    auto t = item.value().detach().contiguous();
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    if (item.key() == v.reshape) shape = {t.numel()};
    at::ScalarType st = v.dtype == io::DType::F16    ? torch::kHalf
                        : v.dtype == io::DType::BF16 ? torch::kBFloat16
                        : v.dtype == io::DType::I32  ? torch::kInt
                                                     : torch::kFloat;
    auto c = t.to(st).contiguous();
    w.add(item.key(), v.dtype, shape, c.data_ptr(), c.numel() * c.element_size());
  }
  if (!v.extra.empty()) {
    const float one = 1.0f;
    w.add_f32(v.extra, {1}, &one);
  }
  if (v.metadata) {
    w.set_metadata(io::kConfigKey, m->config().to_json().dump());
    w.set_metadata(io::kFormatVersionKey, v.version);
  }
  w.write(path);
}

TEST(ModelFile, SaveLoadIsBitExactWithSameLogits) {
  TempDir dir;
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.distill_token = true;
  c.blocks[1].mlp_dim = 40;
  c.blocks[0].skip_attn = true;
  c.preprocess.mean = {0.3f};
  ViT m = random_model(c, 1);
  exporter::save_model(m, dir / "m.safetensors", {{"vitopt.note", "hello"}});

  const auto file = io::SafeTensorsFile::load(dir / "m.safetensors");
  EXPECT_EQ(*file.metadata_value("format"), "pt");
  EXPECT_EQ(*file.metadata_value(io::kFormatVersionKey), "1");
  EXPECT_EQ(*file.metadata_value("vitopt.note"), "hello");
  EXPECT_EQ(file.info("blocks.1.mlp.fc1.weight").shape, (std::vector<int64_t>{40, 32}));
  EXPECT_EQ(file.info("blocks.1.mlp.fc1.weight").dtype, io::DType::F32);

  ViT r = load_model(dir / "m.safetensors");
  EXPECT_EQ(r->config().to_json(), m->config().to_json());
  auto want = m->named_parameters();
  ASSERT_EQ(r->named_parameters().size(), want.size());
  for (const auto& item : r->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), want[item.key()])) << item.key();
  }
  m->eval();
  r->eval();
  torch::NoGradGuard no_grad;
  const auto x = input_for(c, 2);
  EXPECT_TRUE(torch::equal(m->forward(x), r->forward(x)));
}

TEST(ModelFile, SaveAppliesPruningMask) {
  TempDir dir;
  ViT m = random_model(io::preset("vit-tiny-test"), 2);
  auto mask = torch::ones({64, 32});
  mask.slice(0, 0, 10).zero_();
  m->block(0).mlp->fc1->set_mask(mask);
  exporter::save_model(m, dir / "m.safetensors");
  ViT r = load_model(dir / "m.safetensors");
  EXPECT_EQ(r->block(0).mlp->fc1->weight.slice(0, 0, 10).abs().sum().item<float>(), 0.0f);
}

TEST(ModelFile, ImportsTimmCheckpointWithoutMetadata) {
  TempDir dir;
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.qkv_bias = false;
  ViT m = random_model(c, 3);
  write_variant(m, dir / "timm.safetensors", Variant{.metadata = false});

  io::ImportHints hints;
  hints.num_heads = 2;
  hints.mean = std::vector<float>{0.25f};
  hints.std = std::vector<float>{0.5f};
  ViT r = load_model(dir / "timm.safetensors", hints);
  const io::ViTConfig& rc = r->config();
  EXPECT_EQ(rc.image_size, 28);
  EXPECT_EQ(rc.in_channels, 1);
  EXPECT_EQ(rc.patch_size, 7);
  EXPECT_EQ(rc.embed_dim, 32);
  EXPECT_EQ(rc.depth, 2);
  EXPECT_EQ(rc.num_heads, 2);
  EXPECT_EQ(rc.mlp_dim, 64);
  EXPECT_EQ(rc.num_classes, 10);
  EXPECT_FALSE(rc.qkv_bias);
  EXPECT_FALSE(rc.distill_token);
  EXPECT_EQ(rc.preprocess.mean, std::vector<float>{0.25f});
  torch::NoGradGuard no_grad;
  const auto x = input_for(c, 2);
  EXPECT_TRUE(torch::equal(m->forward(x), r->forward(x)));

  // No hint and no config.json: the heads are not guessed (C / 64 was the old silent default).
  expect_input_error([&] { load_model(dir / "timm.safetensors"); },
                     {"timm.safetensors", "attention heads is not recorded", "--import-heads"});
  hints.num_heads = 5;
  expect_input_error([&] { load_model(dir / "timm.safetensors", hints); },
                     {"timm.safetensors", "heads", "embed_dim 32", "got 5"});
}

TEST(ModelFile, AcceptsHalfAndBFloat16) {
  TempDir dir;
  ViT m = random_model(io::preset("vit-tiny-test"), 4);
  for (auto [dt, st] :
       {std::pair{io::DType::F16, torch::kHalf}, std::pair{io::DType::BF16, torch::kBFloat16}}) {
    write_variant(m, dir / "h.safetensors", Variant{.dtype = dt});
    ViT r = load_model(dir / "h.safetensors");
    auto want = m->named_parameters();
    for (const auto& item : r->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), want[item.key()].to(st).to(torch::kFloat)))
          << item.key();
    }
  }
  write_variant(m, dir / "i.safetensors", Variant{.dtype = io::DType::I32});
  expect_input_error([&] { load_model(dir / "i.safetensors"); }, {"dtype", "I32"});
}

TEST(ModelFile, MismatchedFilesNameTheProblem) {
  TempDir dir;
  ViT m = random_model(io::preset("vit-tiny-test"), 5);
  const auto p = dir / "bad.safetensors";

  write_variant(m, p, Variant{.drop = "blocks.1.mlp.fc2.weight"});
  expect_input_error([&] { load_model(p); },
                     {"bad.safetensors", "blocks.1.mlp.fc2.weight", "missing", "[32, 64]"});

  write_variant(m, p, Variant{.reshape = "blocks.0.attn.qkv.weight"});
  expect_input_error([&] { load_model(p); },
                     {"blocks.0.attn.qkv.weight", "expected shape [96, 32]", "got [3072]"});

  write_variant(m, p, Variant{.extra = "blocks.0.attn.rel_pos"});
  expect_input_error([&] { load_model(p); }, {"unexpected", "blocks.0.attn.rel_pos"});

  write_variant(m, p, Variant{.version = "7"});
  expect_input_error([&] { load_model(p); },
                     {"bad.safetensors", "vitopt.format_version", "expected \"1\"", "got \"7\""});

  // A timm checkpoint without the position embedding cannot be imported.
  write_variant(m, p, Variant{.drop = "pos_embed", .metadata = false});
  expect_input_error([&] { load_model(p); }, {"pos_embed", "not found"});

  // Config metadata with a bad field.
  io::SafeTensorsWriter w;
  w.set_metadata(io::kConfigKey, R"({"embed_dim": 30, "num_heads": 4})");
  w.set_metadata(io::kFormatVersionKey, "1");
  w.write(p);
  expect_input_error([&] { load_model(p); }, {"bad.safetensors", "num_heads"});
}

TEST(ModelFile, PrefixedTensorsForCheckpoints) {
  ViT m = random_model(io::preset("vit-tiny-test"), 6);
  io::SafeTensorsWriter w;
  exporter::add_model_tensors(m, w, "model.");
  const float step = 3;
  w.add_f32("optimizer.step", {1}, &step);
  const auto file = io::SafeTensorsFile::parse(w.serialize(), "ckpt");
  EXPECT_TRUE(file.has("model.head.weight"));
  ViT r(io::preset("vit-tiny-test"));
  load_model_tensors(r, file, "model.");
  EXPECT_TRUE(torch::equal(r->head->weight, m->head->weight));
  EXPECT_TRUE(torch::equal(read_tensor(file, "model.pos_embed"), m->pos_embed));
}

}  // namespace
}  // namespace vitopt::model
