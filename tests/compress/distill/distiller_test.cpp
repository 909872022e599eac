// The Distiller on tiny models: the combined loss equals its hand-assembled terms, a student that
// is a copy of its teacher has zero distillation loss, feature projections have the right shapes
// and learn, a few steps lower the KD loss, the teacher cache reproduces the live teacher, bad
// input errors, and a tiny end-to-end run_distill writes its comparison.
#include "compress/distill/distiller.h"

#include <gtest/gtest.h>

#include "compress/distill/distill_job.h"
#include "compress/distill/kd_losses.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "data/dataset.h"
#include "export/model_writer.h"
#include "io/presets.h"
#include "model/model_file.h"
#include "test_util.h"
#include "train/data_bridge.h"
#include "train/torch_env.h"

namespace vitopt::distill {
namespace {

namespace F = torch::nn::functional;

std::shared_ptr<data::Dataset> synthetic(size_t count, uint64_t seed) {
  data::DatasetSpec spec;
  spec.kind = "synthetic";
  spec.synthetic_count = count;
  spec.seed = seed;
  return data::open_dataset(spec, data::Split::Train);
}

// A teacher wider and deeper than vit-tiny-test (C 48, 4 heads, 4 blocks), with its head scaled
// up so its predictions are confident (a random ViT's logits are nearly uniform).
model::ViT tiny_teacher(uint64_t seed) {
  auto c = io::preset("vit-tiny-test");
  c.name = "tiny-teacher";
  c.embed_dim = 48;
  c.num_heads = 4;
  c.depth = 4;
  c.head_dim = 0;
  c.blocks.clear();
  model::ViT t(c);
  t->init_weights(seed);
  torch::NoGradGuard no_grad;
  t->head->weight.mul_(100);
  return t;
}

model::ViT tiny_student(uint64_t seed, bool token = false) {
  auto c = io::preset("vit-tiny-test");
  c.distill_token = token;
  model::ViT s(c);
  s->init_weights(seed);
  return s;
}

// The first 32 images of `set` as the model sees them (B, 1, 28, 28), and their labels.
std::pair<torch::Tensor, torch::Tensor> first_batch(std::shared_ptr<const data::Dataset> set,
                                                    const io::ViTConfig& c) {
  data::LoaderOptions lo;
  lo.batch_size = 32;
  lo.workers = 0;
  lo.transform = train::eval_transform(c);
  data::DataLoader loader(std::move(set), lo);
  data::Batch b;
  loader.next(b);
  return {train::batch_images(b, torch::kCPU).clone(), train::batch_labels(b, torch::kCPU).clone()};
}

torch::Tensor batch_x(int64_t B, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({B, 1, 28, 28});
}

TEST(Distiller, LogitModeIsTheAlphaMixOfCrossEntropyAndKd) {
  auto teacher = tiny_teacher(1);
  auto student = tiny_student(2);
  DistillSettings s;
  s.alpha = 0.3;
  s.temperature = 2.5;
  s.label_smoothing = 0;
  Distiller d(teacher, student->config(), {Mode::Logit}, s, 0, 0);
  const auto x = batch_x(6, 3);
  const auto y = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kLong);
  const auto parts = d.compute(student, x, y, nullptr);
  torch::NoGradGuard no_grad;
  const auto sl = student->forward(x), tl = teacher->forward(x);
  const double ce = F::cross_entropy(sl, y).item<double>();
  const double kd = kd_logit_loss(sl, tl, 2.5).item<double>();
  EXPECT_NEAR(parts.ce.item<double>(), ce, 1e-5);
  EXPECT_NEAR(parts.kd.item<double>(), kd, 1e-5);
  EXPECT_NEAR(parts.total.item<double>(), 0.7 * ce + 0.3 * kd, 1e-5);
  EXPECT_GT(kd, 0.01);  // the scaled-up teacher disagrees with a fresh student
}

TEST(Distiller, StudentAtAnotherSideGetsTheTeacherOnResizedImages) {
  // The architecture search's resolution gene: a 21x21 student learns from a 28x28 teacher, which
  // sees the same images resized (bilinear) to its side.
  auto teacher = tiny_teacher(1);
  auto c = io::preset("vit-tiny-test");
  c.image_size = 21;
  model::ViT student(c);
  student->init_weights(2);
  DistillSettings s;
  s.alpha = 1.0;
  s.temperature = 2.0;
  Distiller d(teacher, student->config(), {Mode::Logit}, s, 0, 0);
  torch::manual_seed(4);
  const auto x = torch::randn({5, 1, 21, 21});
  const auto y = torch::tensor({0, 1, 2, 3, 4}, torch::kLong);
  const auto parts = d.compute(student, x, y, nullptr);
  torch::NoGradGuard no_grad;
  const auto up = F::interpolate(x, F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{28, 28})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
  const double kd = kd_logit_loss(student->forward(x), teacher->forward(up), 2.0).item<double>();
  EXPECT_NEAR(parts.kd.item<double>(), kd, 1e-5);
  EXPECT_NEAR(parts.total.item<double>(), kd, 1e-5);
  // Other channels still cannot be matched.
  auto rgb = io::preset("vit-tiny-test");
  rgb.in_channels = 3;
  rgb.normalize("rgb");
  EXPECT_THROW(Distiller(teacher, rgb, {Mode::Logit}, s, 0, 0), core::InputError);
  // Token-wise terms need the same patch grid (3x3 against 4x4 here).
  EXPECT_THROW(Distiller(teacher, student->config(), {Mode::Logit, Mode::Feature}, s, 0, 0),
               core::InputError);
}

TEST(Distiller, TokenModeSupervisesTheDistillationHeadWithTeacherArgmax) {
  auto teacher = tiny_teacher(1);
  auto student = tiny_student(2, /*token=*/true);
  DistillSettings s;
  s.label_smoothing = 0;
  Distiller d(teacher, student->config(), {Mode::Token}, s, 0, 0);
  const auto x = batch_x(4, 5);
  const auto y = torch::tensor({1, 1, 2, 2}, torch::kLong);
  const auto parts = d.compute(student, x, y, nullptr);
  torch::NoGradGuard no_grad;
  auto [cls, dist] = student->forward_heads(x);
  const auto target = teacher->forward(x).argmax(1);
  const double expected = 0.5 * F::cross_entropy(cls, y).item<double>() +
                          0.5 * F::cross_entropy(dist, target).item<double>();
  EXPECT_NEAR(parts.total.item<double>(), expected, 1e-5);
  // Accuracy is measured on the average of both heads, as at inference.
  EXPECT_TRUE(torch::allclose(parts.logits, (cls + dist) / 2, 1e-5, 1e-6));
}

TEST(Distiller, StudentIdenticalToTeacherHasZeroFeatureAndAttentionLoss) {
  auto teacher = tiny_student(4);
  auto student = tiny_student(4);
  DistillSettings s;
  Distiller d(teacher, student->config(), {Mode::Logit, Mode::Feature, Mode::Attention}, s, 0, 0);
  EXPECT_TRUE(d.projection_parameters().empty());  // same width: no projection
  const auto parts = d.compute(student, batch_x(3, 6), torch::tensor({0, 1, 2}), nullptr);
  EXPECT_NEAR(parts.kd.item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(parts.feature.item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(parts.attention.item<double>(), 0.0, 1e-6);
}

TEST(Distiller, FeatureProjectionsMapStudentWidthToTeacherWidthAndLearn) {
  train::configure_threads(1);
  auto teacher = tiny_teacher(1);   // depth 4, C 48, 4 heads
  auto student = tiny_student(2);   // depth 2, C 32, 2 heads
  DistillSettings s;
  Distiller d(teacher, student->config(), {Mode::Feature, Mode::Attention}, s, 0, 9);
  // Depth 2 -> 4 spreads evenly, the last block onto the last.
  EXPECT_EQ(d.layer_map(), (std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}));
  const auto params = d.projection_parameters();
  ASSERT_EQ(params.size(), 4u);  // weight + bias per pair
  EXPECT_EQ(params[0].second.sizes(), (std::vector<int64_t>{48, 32}));
  EXPECT_EQ(params[1].second.sizes(), (std::vector<int64_t>{48}));
  const auto x = batch_x(4, 8);
  const auto y = torch::tensor({0, 1, 2, 3});
  auto parts = d.compute(student, x, y, nullptr);
  ASSERT_TRUE(parts.feature.defined() && parts.attention.defined());
  EXPECT_GT(parts.feature.item<double>(), 0.0);
  EXPECT_GT(parts.attention.item<double>(), 0.0);  // 4 teacher heads averaged into 2
  parts.total.backward();
  EXPECT_GT(params[0].second.grad().abs().sum().item<double>(), 0.0);
  // Plain gradient steps on the projections alone lower the feature loss.
  const double before = parts.feature.item<double>();
  for (int step = 0; step < 20; ++step) {
    for (auto& [name, p] : d.projection_parameters()) p.mutable_grad().reset();
    auto f = d.compute(student, x, y, nullptr).feature;
    f.backward();
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : d.projection_parameters()) p.sub_(0.5 * p.grad());
  }
  EXPECT_LT(d.compute(student, x, y, nullptr).feature.item<double>(), before);
}

TEST(Distiller, AFewTrainingStepsLowerTheKdLoss) {
  train::configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto teacher = tiny_teacher(1);
  auto student = tiny_student(2);
  auto train_set = synthetic(64, 1);
  DistillSettings s;
  s.alpha = 0.9;
  Distiller d(teacher, student->config(), {Mode::Logit}, s, train_set->size(), 0);
  const auto [x, y] = first_batch(train_set, student->config());
  const double before = d.compute(student, x, y, nullptr).kd.item<double>();
  train::TrainOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.warmup_epochs = 0;
  o.crop_padding = 0;
  o.workers = 1;
  o.quiet = true;
  o.out_dir = tmp / "run";
  d.install(o);
  const auto r = train::train_model(student, train_set, nullptr, o);
  ASSERT_TRUE(r.completed);
  const double after = d.compute(student, x, y, nullptr).kd.item<double>();
  EXPECT_LT(after, 0.9 * before) << "before " << before << " after " << after;
}

TEST(Distiller, CachedTeacherGivesTheSameLossesAsTheLiveTeacher) {
  train::configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto train_set = synthetic(48, 3);
  std::vector<nlohmann::json> histories;
  std::vector<int64_t> forwards, hits;
  for (bool cache : {false, true}) {
    auto teacher = tiny_teacher(1);
    auto student = tiny_student(2);
    DistillSettings s;
    s.cache_teacher = cache;
    Distiller d(teacher, student->config(), {Mode::Logit}, s, train_set->size(), 0);
    train::TrainOptions o;
    o.epochs = 3;
    o.batch_size = 16;
    o.crop_padding = 0;
    o.workers = 1;
    o.seed = 5;
    o.quiet = true;
    o.out_dir = tmp / (cache ? "cache" : "live");
    d.install(o);
    const auto r = train::train_model(student, train_set, nullptr, o);
    histories.push_back(r.history);
    forwards.push_back(d.teacher_forwards());
    hits.push_back(d.cache_hits());
  }
  EXPECT_EQ(forwards[0], 9);  // 3 batches x 3 epochs
  EXPECT_EQ(forwards[1], 3);  // only the first epoch runs the teacher
  EXPECT_EQ(hits[1], 6);
  for (int e = 0; e < 3; ++e)
    EXPECT_NEAR(histories[0][e]["train_loss"].get<double>(),
                histories[1][e]["train_loss"].get<double>(), 1e-5)
        << "epoch " << e + 1;
}

TEST(Distiller, BadInputErrors) {
  EXPECT_THROW(parse_modes("logit,distance"), core::InputError);
  EXPECT_THROW(parse_modes("none,logit"), core::InputError);
  EXPECT_EQ(parse_modes("attention, logit"), (std::set<Mode>{Mode::Logit, Mode::Attention}));
  EXPECT_TRUE(parse_modes("none").empty());
  EXPECT_EQ(modes_name({Mode::Logit, Mode::Attention}), "logit+attention");
  EXPECT_THROW(parse_layer_map("0-1"), core::InputError);
  EXPECT_EQ(parse_layer_map("0:1, 1:3"), (std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}));

  auto teacher = tiny_teacher(1);
  const auto tc = teacher->config();
  const auto sc = tiny_student(2)->config();
  DistillSettings s;
  s.alpha = 1.5;
  EXPECT_THROW(validate({Mode::Logit}, s, sc, &tc), core::InputError);
  s.alpha = -0.1;
  EXPECT_THROW(validate({Mode::Logit}, s, sc, &tc), core::InputError);
  s.alpha = 1.0;
  EXPECT_NO_THROW(validate({Mode::Logit}, s, sc, &tc));
  EXPECT_THROW(validate({Mode::Token}, s, sc, &tc), core::InputError);  // no distill token
  EXPECT_THROW(validate({Mode::Logit, Mode::Hard}, s, sc, &tc), core::InputError);
  EXPECT_THROW(validate({Mode::Logit}, s, sc, nullptr), core::InputError);  // no teacher
  s.layer_map = {{0, 4}};  // teacher has blocks 0..3
  EXPECT_THROW(validate({Mode::Feature}, s, sc, &tc), core::InputError);
  s.layer_map.clear();
  s.cache_teacher = true;
  auto other = tc;
  other.num_classes = 7;
  EXPECT_THROW(validate({Mode::Logit}, DistillSettings{}, sc, &other), core::InputError);

  // The cache needs augmentation off.
  Distiller d(teacher, sc, {Mode::Logit}, s, 16, 0);
  train::TrainOptions o;
  o.crop_padding = 2;
  EXPECT_THROW(d.install(o), core::InputError);
}

TEST(DistillJob, TinyRunTrainsEachModeSetAndWritesTheComparison) {
  train::configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto teacher = tiny_teacher(1);
  exporter::save_model(teacher, tmp / "teacher.safetensors");
  DistillRequest req;
  req.teacher = tmp / "teacher.safetensors";
  req.student = "vit-tiny-test";
  req.runs = {"none", "token", "logit,attention"};
  req.data = "synthetic";
  req.limit = 32;
  req.val_limit = 32;
  req.eval_limit = 32;
  req.latency_runs = 2;
  req.options.epochs = 1;
  req.options.batch_size = 16;
  req.options.workers = 1;
  req.options.quiet = true;
  req.threads = 1;
  req.out_dir = tmp / "out";
  const auto summary = run_distill(req);
  ASSERT_EQ(summary["runs"].size(), 3u);
  EXPECT_EQ(summary["runs"][1]["name"], "token");
  EXPECT_TRUE(summary["runs"][1]["distill_token"].get<bool>());
  EXPECT_EQ(summary["runs"][0]["teacher_forwards"], 0);
  EXPECT_EQ(summary["runs"][2]["teacher_forwards"], 2);
  for (const auto& r : summary["runs"]) {
    EXPECT_TRUE(r["completed"].get<bool>());
    EXPECT_TRUE(std::filesystem::exists(r["model"].get<std::string>()));
    // Interleaved timing is always recorded; a speed-up figure only beyond the noise.
    const auto& speed = r["speed_vs_teacher"];
    EXPECT_GT(speed["student_ms"].get<double>(), 0.0);
    EXPECT_TRUE(speed["verdict"] == "tie" || r.contains("speedup_vs_teacher")) << speed.dump();
  }
  EXPECT_TRUE(summary["teacher"].contains("top1"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "out" / "compare.md"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "out" / "token" / "run.json"));
  const auto saved = core::json_parse(core::read_file_text(tmp / "out" / "distill.json"), "distill.json");
  EXPECT_EQ(saved["runs"].size(), 3u);
  // A token-mode student file keeps its distillation token.
  EXPECT_TRUE(model::load_model(summary["runs"][1]["model"].get<std::string>())
                  ->config().distill_token);
}

}  // namespace
}  // namespace vitopt::distill
