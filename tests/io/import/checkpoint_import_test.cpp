// timm / Hugging Face checkpoint import against independent PyTorch reference models: the fixture
// script (tests/fixtures/make_vit_fixture.py, Debian's /usr/bin/python3) writes checkpoints in
// the layouts timm and HF save, with the config.json they write next to them, plus an input and
// its logits. Each is converted, run on the vitopt runtime and compared; refused layouts must be
// refused by name; converted fp32 files must load back (strictly) into the reference model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "io/checkpoint_convert.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "vitopt/runtime.h"

namespace vitopt::io {
namespace {

namespace fs = std::filesystem;

class CheckpointImport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1"), 0)
        << "/usr/bin/python3 cannot import torch: run scripts/install-deps.sh (python3-torch)";
    dir_ = new vitopt::testing::TempDir();
    const std::string cmd =
        "/usr/bin/python3 '" + script().string() + "' '" + dir_->path().string() + "' >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path script() {
    return vitopt::testing::source_dir() / "tests/fixtures/make_vit_fixture.py";
  }
  static fs::path cased(const std::string& name) { return dir_->path() / "import" / name; }

  static std::vector<float> floats(const fs::path& file, const std::string& name) {
    return SafeTensorsFile::load(file).read_f32(name);
  }

  // Max |runtime logits - reference logits| of the converted checkpoint.
  static float diff_after_import(const std::string& name, const ImportHints& hints = {}) {
    const auto file = SafeTensorsFile::load(cased(name) / "model.safetensors");
    auto bytes = convert_checkpoint_bytes(file, hints);
    core::write_file_atomic(cased(name) / "vitopt.safetensors", bytes.data(), bytes.size());
    runtime::RuntimeOptions o;
    o.threads = 2;
    auto engine = runtime::Engine::load_bytes(std::move(bytes), name, o);
    const auto x = floats(cased(name) / "input.safetensors", "x");
    const auto want = floats(cased(name) / "logits.safetensors", "logits");
    std::vector<float> got(want.size());
    engine->run(x.data(), static_cast<int>(want.size() / 10), got.data());
    float d = 0;
    for (size_t i = 0; i < got.size(); ++i) d = std::max(d, std::abs(got[i] - want[i]));
    std::printf("[import] %-20s max |diff| %.3g\n", name.c_str(), d);
    return d;
  }

  static std::string refusal(const std::string& name, const ImportHints& hints = {}) {
    try {
      convert_checkpoint(SafeTensorsFile::load(cased(name) / "model.safetensors"), hints);
    } catch (const core::InputError& e) {
      return e.what();
    }
    return "";
  }

  static nlohmann::json config_of(const std::string& name) {
    const auto f = SafeTensorsFile::load(cased(name) / "vitopt.safetensors");
    return nlohmann::json::parse(*f.metadata_value("vitopt.config"));
  }

  static vitopt::testing::TempDir* dir_;
};

vitopt::testing::TempDir* CheckpointImport::dir_ = nullptr;

TEST_F(CheckpointImport, HeadsComeFromConfigJsonNotAGuess) {
  // 4 heads at dim 128: the old importer read C/64 = 2 heads without a word.
  EXPECT_LE(diff_after_import("timm_heads4_dim128"), 1e-4f);
  EXPECT_EQ(config_of("timm_heads4_dim128")["num_heads"], 4);
  // A named timm architecture fixes the heads (vit_tiny: 3 at dim 192); preprocessing from
  // pretrained_cfg.
  EXPECT_LE(diff_after_import("timm_arch_name"), 1e-4f);
  EXPECT_EQ(config_of("timm_arch_name")["num_heads"], 3);
  EXPECT_EQ(config_of("timm_arch_name")["preprocess"]["mean"],
            nlohmann::json::array({0.5, 0.5, 0.5}));
}

TEST_F(CheckpointImport, NoConfigMeansRefusalOrExplicitHeads) {
  const std::string msg = refusal("timm_no_config");
  EXPECT_NE(msg.find("number of attention heads is not recorded"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--import-heads"), std::string::npos) << msg;
  ImportHints four;
  four.num_heads = 4;
  EXPECT_LE(diff_after_import("timm_no_config", four), 1e-4f);
  ImportHints two;  // negative control: a wrong head count changes the logits
  two.num_heads = 2;
  EXPECT_GT(diff_after_import("timm_no_config", two), 1e-3f);
  // A hint that contradicts config.json is refused.
  const std::string clash = refusal("timm_heads4_dim128", two);
  EXPECT_NE(clash.find("disagrees"), std::string::npos) << clash;
}

TEST_F(CheckpointImport, LayerScaleFoldedAndAveragePooling) {
  EXPECT_LE(diff_after_import("timm_layer_scale"), 1e-4f);
  EXPECT_LE(diff_after_import("timm_avg_no_fc_norm"), 1e-4f);
  EXPECT_EQ(config_of("timm_avg_no_fc_norm")["pool"], "avg");
}

TEST_F(CheckpointImport, HuggingFaceViTNames) {
  EXPECT_LE(diff_after_import("hf_vit"), 1e-4f);
  const auto c = config_of("hf_vit");
  EXPECT_EQ(c["num_heads"], 3);
  EXPECT_DOUBLE_EQ(c["ln_eps"].get<double>(), 1e-12);
  const auto f = SafeTensorsFile::load(cased("hf_vit") / "vitopt.safetensors");
  ASSERT_NE(f.metadata_value("vitopt.class_names"), nullptr);
  EXPECT_EQ(nlohmann::json::parse(*f.metadata_value("vitopt.class_names"))[9], "class9");
}

// timm's other layouts: fc_norm after average pooling; no class token with register tokens and
// positions on the patches only; a class token with registers (DINOv2-style, token pooling).
TEST_F(CheckpointImport, FcNormNoClassTokenAndRegisterLayouts) {
  EXPECT_LE(diff_after_import("timm_avg_fc_norm"), 1e-4f);
  auto c = config_of("timm_avg_fc_norm");
  EXPECT_EQ(c["pool"], "avg");
  EXPECT_EQ(c["fc_norm"], true);
  EXPECT_LE(diff_after_import("timm_no_cls_reg"), 1e-4f);
  c = config_of("timm_no_cls_reg");
  EXPECT_EQ(c["class_token"], false);
  EXPECT_EQ(c["reg_tokens"], 4);
  EXPECT_EQ(c["no_embed_class"], true);
  EXPECT_EQ(c.value("fc_norm", false), false);
  EXPECT_LE(diff_after_import("timm_cls_reg_token"), 1e-4f);
  c = config_of("timm_cls_reg_token");
  EXPECT_EQ(c["pool"], "token");
  EXPECT_EQ(c["reg_tokens"], 2);
  EXPECT_EQ(c.value("class_token", true), true);
  // The same file without its config.json: registers, positions and pooling read from the
  // tensors (the row count says no_embed_class; no class token means average pooling).
  const auto file = SafeTensorsFile::load(cased("timm_no_cls_reg") / "model.safetensors");
  ImportHints heads;
  heads.num_heads = 2;
  heads.config_json = dir_->path() / "no-such-config.json";
  const auto bare = convert_checkpoint(file, heads);
  const auto bc = nlohmann::json::parse(*bare.metadata_value("vitopt.config"));
  EXPECT_EQ(bc["reg_tokens"], 4);
  EXPECT_EQ(bc["no_embed_class"], true);
  EXPECT_EQ(bc["pool"], "avg");
}

// Layouts vitopt's ViT cannot run are refused by name, never imported approximately.
TEST_F(CheckpointImport, UnsupportedLayoutsRefusedByName) {
  const auto src = SafeTensorsFile::load(cased("timm_heads4_dim128") / "model.safetensors");
  auto with_extra = [&](const std::string& extra, const std::string& drop) {
    SafeTensorsWriter w;
    for (const auto& name : src.names()) {
      if (name == drop) continue;
      const auto& info = src.info(name);
      w.add(name, info.dtype, info.shape, src.data(name), info.nbytes);
    }
    const std::vector<float> v(128, 1.0f);
    if (!extra.empty()) w.add_f32(extra, {128}, v.data());
    const auto path = cased("timm_heads4_dim128") / "edited.safetensors";
    w.write(path);
    try {
      convert_checkpoint(SafeTensorsFile::load(path), {});
    } catch (const core::InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string msg = with_extra("blocks.0.attn.q_norm.weight", "");
  EXPECT_NE(msg.find("qk-norm"), std::string::npos) << msg;
  msg = with_extra("fc_norm.weight", "");  // both final norms
  EXPECT_NE(msg.find("exactly one final LayerNorm"), std::string::npos) << msg;
  msg = with_extra("", "blocks.1.mlp.fc1.weight");
  EXPECT_NE(msg.find("blocks.1.mlp.fc1.weight"), std::string::npos) << msg;
}

// A config.json with a field of the wrong type is refused naming the file and the field (these
// ended in bare JSON exceptions before fuzz_checkpoint_config found them).
TEST_F(CheckpointImport, BadlyTypedConfigFieldsAreRefusedByName) {
  const auto file = SafeTensorsFile::load(cased("timm_no_config") / "model.safetensors");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"num_attention_heads": "four"})", "num_attention_heads"},
      {R"({"model_type": 7})", "model_type"},
      {R"({"model_type": "vit", "layer_norm_eps": "small"})", "layer_norm_eps"},
      {R"({"model_type": "vit", "num_attention_heads": 4, "id2label": {"x": "cat"}})", "id2label"},
      {R"({"model_type": "vit", "num_attention_heads": 4, "id2label": {"0": 1}})", "id2label.0"},
      {R"({"model_args": {"num_heads": 4.5}})", "model_args.num_heads"},
      {R"({"model_args": {"num_heads": 99999999999}})", "model_args.num_heads"},
      {R"({"model_args": {"num_heads": 4}, "pretrained_cfg": {"mean": [0.5, "x"]}})",
       "pretrained_cfg.mean[]"},
      {R"({"model_args": {"num_heads": 4}, "pretrained_cfg": {"label_names": [1, 2]}})",
       "pretrained_cfg.label_names[]"}};
  const auto config = dir_->path() / "bad_config.json";
  ImportHints hints;
  hints.config_json = config;
  for (const auto& [text, field] : cases) {
    core::write_file_atomic(config, text);
    vitopt::testing::expect_input_error([&] { convert_checkpoint(file, hints); },
                                        {config.string(), "'" + field + "'"});
  }
}

TEST_F(CheckpointImport, VitoptFilesLoadBackIntoTheReference) {
  for (const char* name : {"timm_heads4_dim128", "timm_avg_no_fc_norm", "hf_vit",
                           "timm_avg_fc_norm", "timm_no_cls_reg", "timm_cls_reg_token"}) {
    SCOPED_TRACE(name);
    diff_after_import(name);  // writes vitopt.safetensors
    const fs::path out = cased(name) / "reference_logits.safetensors";
    const std::string cmd = "/usr/bin/python3 '" + script().string() + "' --reference '" +
                            (cased(name) / "vitopt.safetensors").string() + "' " + name + " '" +
                            (cased(name) / "input.safetensors").string() + "' '" + out.string() +
                            "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const auto got = floats(out, "logits"),
               want = floats(cased(name) / "logits.safetensors", "logits");
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f) << i;
  }
}

}  // namespace
}  // namespace vitopt::io
