// The training loop on tiny models: exact resume after an interruption, checkpoint contents,
// NaN guard, and an accuracy bar on real Fashion-MNIST data.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "core/error.h"
#include "core/file_util.h"
#include "data/dataset.h"
#include "io/presets.h"
#include "io/safetensors.h"
#include "model/model_file.h"
#include "test_util.h"
#include "train/torch_env.h"
#include "train/train_fixtures.h"

namespace vitopt::train {
namespace {

using testing::synthetic;
using testing::tiny_model;

TrainOptions tiny_options(const std::filesystem::path& out) {
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  o.lr = 2e-3;
  o.warmup_epochs = 0.5;
  o.workers = 2;
  o.seed = 7;
  o.quiet = true;
  o.out_dir = out;
  return o;
}

TEST(Trainer, ResumeGivesTheSameWeightsAsAnUninterruptedRun) {
  configure_threads(1);  // one thread: bit-reproducible reductions
  vitopt::testing::TempDir tmp;
  auto train_set = synthetic(96, 1);  // 6 steps per epoch, 12 in all
  auto val_set = synthetic(32, 2);

  auto straight = tiny_model(5);
  const auto full = train_model(straight, train_set, val_set, tiny_options(tmp / "straight"));
  ASSERT_TRUE(full.completed);

  // Interrupted mid-epoch 1 (after 4 steps), then again in epoch 2, then finished.
  auto interrupted = tiny_model(5);
  auto opts = tiny_options(tmp / "resumed");
  opts.stop_after_steps = 4;
  EXPECT_FALSE(train_model(interrupted, train_set, val_set, opts).completed);
  auto second = tiny_model(99);  // different init: everything must come from the checkpoint
  opts.resume = true;
  opts.stop_after_steps = 5;
  EXPECT_FALSE(train_model(second, train_set, val_set, opts).completed);
  auto third = tiny_model(123);
  opts.stop_after_steps = 0;
  const auto resumed = train_model(third, train_set, val_set, opts);
  ASSERT_TRUE(resumed.completed);

  auto a = straight->named_parameters();
  auto b = third->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a)
    EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key() << " differs after resume";
  EXPECT_EQ(full.history.size(), resumed.history.size());
  EXPECT_EQ(full.history.back()["val_top1"], resumed.history.back()["val_top1"]);
  configure_threads(0);
}

TEST(Trainer, WritesRunFolderAndLoadableModels) {
  vitopt::testing::TempDir tmp;
  auto vit = tiny_model(1);
  auto opts = tiny_options(tmp.path());
  opts.epochs = 1;
  const auto r = train_model(vit, synthetic(64, 3), synthetic(32, 4), opts);
  for (const char* f : {"checkpoint.safetensors", "best.safetensors", "model.safetensors",
                        "metrics.jsonl", "train_config.json"})
    EXPECT_TRUE(std::filesystem::exists(tmp / f)) << f;
  const auto log = core::read_file_text(tmp / "metrics.jsonl");
  EXPECT_NE(log.find("\"val_top1\""), std::string::npos);
  auto reloaded = model::load_model(tmp / "model.safetensors");
  reloaded->eval();
  vit->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 1, 28, 28});
  EXPECT_TRUE(torch::equal(vit->forward(x), reloaded->forward(x)));
  EXPECT_EQ(r.best_epoch, 1);
}

TEST(Trainer, ResumeWithDifferentOptionsIsRefused) {
  vitopt::testing::TempDir tmp;
  auto vit = tiny_model(1);
  auto opts = tiny_options(tmp.path());
  opts.stop_after_steps = 2;
  train_model(vit, synthetic(64, 3), nullptr, opts);
  opts.resume = true;
  opts.lr = 5e-3;
  try {
    train_model(vit, synthetic(64, 3), nullptr, opts);
    FAIL() << "expected InputError";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'lr'"), std::string::npos) << e.what();
  }
}

// Rewrites the checkpoint's recorded model config with `edit` applied to each block, keeping
// every tensor and all other metadata as they were.
void rewrite_checkpoint_blocks(const std::filesystem::path& path,
                               const std::function<void(nlohmann::json&)>& edit) {
  const auto file = io::SafeTensorsFile::load(path);
  io::SafeTensorsWriter w;
  for (const auto& name : file.names()) {
    const auto& info = file.info(name);
    w.add(name, info.dtype, info.shape, file.data(name), info.nbytes);
  }
  for (const auto& [key, value] : file.metadata()) {
    if (key != "vitopt.trainer_state") {
      w.set_metadata(key, value);
      continue;
    }
    auto state = nlohmann::json::parse(value);
    for (auto& block : state["fingerprint"]["model"]["blocks"]) edit(block);
    w.set_metadata(key, state.dump());
  }
  w.write(path);
}

TEST(Trainer, ResumesACheckpointWhoseModelIsSpelledTheOlderWay) {
  // A checkpoint written before the per-branch sharing fields records each block with
  // "shared_with": -1; it is the same architecture and must resume.
  vitopt::testing::TempDir tmp;
  auto interrupted_run = [&](const std::filesystem::path& dir) {
    auto vit = tiny_model(1);
    auto opts = tiny_options(dir);
    opts.stop_after_steps = 2;
    EXPECT_FALSE(train_model(vit, synthetic(64, 3), nullptr, opts).completed);
    opts.resume = true;
    opts.stop_after_steps = 0;
    return opts;
  };
  const auto legacy = interrupted_run(tmp / "legacy");
  rewrite_checkpoint_blocks(legacy.out_dir / "checkpoint.safetensors",
                            [](nlohmann::json& b) { b["shared_with"] = -1; });
  auto resumed = tiny_model(2);
  EXPECT_TRUE(train_model(resumed, synthetic(64, 3), nullptr, legacy).completed);

  // A genuinely different architecture in the checkpoint is still refused, naming 'model'.
  const auto other = interrupted_run(tmp / "other");
  rewrite_checkpoint_blocks(other.out_dir / "checkpoint.safetensors",
                            [](nlohmann::json& b) { b["mlp_dim"] = b["mlp_dim"].get<int>() * 2; });
  try {
    train_model(resumed, synthetic(64, 3), nullptr, other);
    FAIL() << "expected InputError";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'model'"), std::string::npos) << e.what();
  }
}

TEST(Trainer, DivergenceStopsWithClearErrorAndKeepsCheckpoint) {
  vitopt::testing::TempDir tmp;
  auto vit = tiny_model(1);
  auto opts = tiny_options(tmp.path());
  opts.epochs = 3;
  opts.lr = 1e30;  // explodes within a few steps
  opts.warmup_epochs = 0;
  opts.grad_clip = 0;
  opts.weight_decay = 0;
  opts.checkpoint_every_steps = 1;
  try {
    train_model(vit, synthetic(64, 3), nullptr, opts);
    FAIL() << "expected the NaN guard to stop training";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::exists(tmp / "checkpoint.safetensors"));
}

TEST(Trainer, RejectsBadOptions) {
  vitopt::testing::TempDir tmp;
  auto vit = tiny_model(1);
  auto opts = tiny_options(tmp.path());
  opts.label_smoothing = 1.5;
  EXPECT_THROW(train_model(vit, synthetic(64, 3), nullptr, opts), core::InputError);
  opts = tiny_options(tmp.path());
  opts.batch_size = 1000;  // more than the dataset with drop_last
  EXPECT_THROW(train_model(vit, synthetic(64, 3), nullptr, opts), core::InputError);
}

// Real data: a 2-block toy ViT on 6000 Fashion-MNIST images for 3 epochs must clearly learn
// (chance is 10%; this setup reaches ~72% here).
TEST(Trainer, LearnsFashionMnist) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist"))
    FAIL() << "Fashion-MNIST missing: run scripts/install-deps.sh (dataset-fashion-mnist)";
  vitopt::testing::TempDir tmp;
  auto train_set = data::limit_dataset(
      data::open_dataset(data::parse_dataset_spec("fashion-mnist"), data::Split::Train), 6000);
  auto test_set = data::limit_dataset(
      data::open_dataset(data::parse_dataset_spec("fashion-mnist"), data::Split::Test), 1000);
  auto cfg = io::preset("vit-tiny-test");
  cfg.preprocess.mean = train_set->default_mean();
  cfg.preprocess.std = train_set->default_std();
  model::ViT vit(cfg);
  vit->init_weights(0);
  auto opts = tiny_options(tmp.path());
  opts.batch_size = 64;
  opts.lr = 5e-3;
  opts.label_smoothing = 0;
  opts.crop_padding = 0;
  opts.epochs = 3;
  const auto r = train_model(vit, train_set, test_set, opts);
  EXPECT_GT(r.final_top1, 0.62) << "tiny ViT failed to learn Fashion-MNIST";
}

}  // namespace
}  // namespace vitopt::train
