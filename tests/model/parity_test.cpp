// Parity with an independent PyTorch ViT: tests/fixtures/make_vit_fixture.py (run with Debian's
// /usr/bin/python3) writes timm-named weights without our metadata, an input and its logits; we
// import the weights (timm path), run eval forward and compare the logits.
#include <gtest/gtest.h>

#include <cstdlib>

#include "model/model_file.h"
#include "test_util.h"

namespace vitopt::model {
namespace {

struct Case {
  const char* name;
  int heads;
  int64_t tokens;
  bool distilled;
};

// Runs tests/fixtures/make_vit_fixture.py (Debian's /usr/bin/python3 with PyTorch) into `dir`.
void write_fixtures(const vitopt::testing::TempDir& dir) {
  ASSERT_EQ(std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1"), 0)
      << "/usr/bin/python3 cannot import torch: run scripts/install-deps.sh (python3-torch)";
  const auto script = vitopt::testing::source_dir() / "tests/fixtures/make_vit_fixture.py";
  const std::string cmd =
      "/usr/bin/python3 '" + script.string() + "' '" + dir.path().string() + "' >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "fixture script failed: " << cmd;
}

TEST(Parity, MatchesIndependentPyTorchViT) {
  vitopt::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(write_fixtures(dir));

  for (const Case& c : {Case{"fmnist_p4", 3, 50, false}, Case{"rgb224_p16", 2, 197, false},
                        Case{"distilled", 2, 18, true}}) {
    SCOPED_TRACE(c.name);
    const auto sub = dir.path() / c.name;
    io::ImportHints hints;
    hints.num_heads = c.heads;
    ViT model = load_model(sub / "model.safetensors", hints);
    EXPECT_EQ(model->config().num_tokens(), c.tokens);
    EXPECT_EQ(model->config().distill_token, c.distilled);
    EXPECT_EQ(model->config().num_heads, c.heads);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto x = read_tensor(io::SafeTensorsFile::load(sub / "input.safetensors"), "x");
    const auto want = read_tensor(io::SafeTensorsFile::load(sub / "logits.safetensors"), "logits");
    const auto got = model->forward(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    const float diff = (got - want).abs().max().item<float>();
    std::printf("[parity] %-10s max abs diff %.3g (logit std %.3f)\n", c.name, diff,
                want.std().item<float>());
    EXPECT_LE(diff, 1e-4f);
  }

  // Negative control: the comparison is sensitive (a wrong head count changes the logits).
  io::ImportHints one_head;
  one_head.num_heads = 1;
  ViT wrong = load_model(dir.path() / "fmnist_p4" / "model.safetensors", one_head);
  wrong->eval();
  torch::NoGradGuard no_grad;
  const auto sub = dir.path() / "fmnist_p4";
  const auto x = read_tensor(io::SafeTensorsFile::load(sub / "input.safetensors"), "x");
  const auto want = read_tensor(io::SafeTensorsFile::load(sub / "logits.safetensors"), "logits");
  EXPECT_GT((wrong->forward(x) - want).abs().max().item<float>(), 1e-3f);
}

// The checkpoint layouts `vitopt import` reads (timm names with config.json, HF names, layer
// scale, fc_norm, no class token, register tokens), loaded by the LibTorch loader directly: the
// same one conversion as the import, so every command reads them as the reference computes.
TEST(Parity, CheckpointLayoutsLoadFaithfullyIntoLibTorch) {
  vitopt::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(write_fixtures(dir));
  torch::NoGradGuard no_grad;
  for (const char* name :
       {"timm_heads4_dim128", "timm_layer_scale", "timm_avg_fc_norm", "timm_avg_no_fc_norm",
        "timm_no_cls_reg", "timm_cls_reg_token", "hf_vit"}) {
    SCOPED_TRACE(name);
    const auto sub = dir.path() / "import" / name;
    ViT model = load_model(sub / "model.safetensors");
    model->eval();
    const auto x = read_tensor(io::SafeTensorsFile::load(sub / "input.safetensors"), "x");
    const auto want = read_tensor(io::SafeTensorsFile::load(sub / "logits.safetensors"), "logits");
    const float diff = (model->forward(x) - want).abs().max().item<float>();
    std::printf("[parity] %-20s max abs diff %.3g\n", name, diff);
    EXPECT_LE(diff, 1e-4f);
  }
  // Without config.json or --import-heads the heads are unknown: refused, never guessed.
  vitopt::testing::expect_input_error(
      [&] { load_model(dir.path() / "import" / "timm_no_config" / "model.safetensors"); },
      {"number of attention heads is not recorded", "--import-heads"});
}

}  // namespace
}  // namespace vitopt::model
