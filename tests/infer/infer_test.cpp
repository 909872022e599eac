// The runtime's command logic (src/infer) against hand-computed values and the engine itself:
// softmax top-k with ties, percentiles, batch-list parsing, preprocessing overrides, and accuracy
// over a dataset equal to the per-image argmax of engine runs done here.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/file_util.h"
#include "data/image_decode.h"
#include "data/synthetic_dataset.h"
#include "infer/accuracy.h"
#include "infer/classify.h"
#include "infer/latency.h"
#include "infer/predictions.h"
#include "io/presets.h"
#include "runtime/random_model.h"
#include "test_util.h"

namespace vitopt::infer {
namespace {

std::unique_ptr<runtime::Engine> tiny_engine(int classes = 10) {
  runtime::RandomModelOptions o;
  o.config = io::preset("vit-tiny-test");
  o.config.num_classes = classes;
  o.weight_std = 0.5f;  // spread the logits so the argmax is not a near tie
  runtime::RuntimeOptions ro;
  ro.threads = 1;
  return runtime::Engine::load_bytes(runtime::random_model_bytes(o), "tiny.safetensors", ro);
}

TEST(TopClasses, SoftmaxOrderAndTies) {
  // Row 0: logits ln1, ln2, ln3, ln2 -> probabilities 1/8, 2/8, 3/8, 2/8; the tie of classes 1
  // and 3 goes to the lower index. Row 1: all equal -> 1/4 each, classes in index order.
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), std::log(2.0f), 5, 5, 5,
                                     5};
  const auto top = top_classes(logits, 4, 3, {"a", "b"});
  ASSERT_EQ(top.size(), 2u);
  ASSERT_EQ(top[0].size(), 3u);
  EXPECT_EQ(top[0][0].cls, 2);
  EXPECT_NEAR(top[0][0].probability, 3.0 / 8, 1e-6);
  EXPECT_EQ(top[0][1].cls, 1);
  EXPECT_EQ(top[0][1].name, "b");
  EXPECT_EQ(top[0][2].cls, 3);
  EXPECT_EQ(top[0][2].name, "");  // fewer names than classes
  EXPECT_NEAR(top[0][2].probability, 2.0 / 8, 1e-6);
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(top[1][static_cast<size_t>(j)].cls, j);
    EXPECT_NEAR(top[1][static_cast<size_t>(j)].probability, 0.25, 1e-12);
  }
  EXPECT_EQ(top_classes(logits, 4, 10, {})[0].size(), 4u);   // k clamped to K
  EXPECT_THROW(top_classes(logits, 3, 1, {}), core::Error);  // 8 logits are not rows of 3
}

TEST(TopClasses, PrintsJsonAndText) {
  std::vector<ImagePrediction> p = {{"x.png", {{7, "Sneaker", 0.5}, {1, "", 0.25}}}};
  const auto j = predictions_json(p);
  EXPECT_EQ(j[0]["image"], "x.png");
  EXPECT_EQ(j[0]["top"][0]["class"], 7);
  EXPECT_EQ(j[0]["top"][1]["probability"], 0.25);
  EXPECT_EQ(predictions_text(p), "x.png\n    7   50.00%  Sneaker\n    1   25.00%  \n");
}

TEST(Latency, PercentilesInterpolate) {
  const Timing t = summarize({4, 1, 3, 2, 5});  // sorted 1..5
  EXPECT_DOUBLE_EQ(t.p50, 3);
  EXPECT_DOUBLE_EQ(t.p90, 4.6);  // pos 3.6: 4 + 0.6 * (5 - 4)
  EXPECT_DOUBLE_EQ(t.p99, 4.96);
  EXPECT_DOUBLE_EQ(t.mean, 3);
  EXPECT_DOUBLE_EQ(summarize({2}).p99, 2);
  int calls = 0;
  (void)time_runs(2, 3, [&] { ++calls; });
  EXPECT_EQ(calls, 5);
}

TEST(Latency, BatchList) {
  EXPECT_EQ(parse_batch_list("1,8,32"), (std::vector<int>{1, 8, 32}));
  for (const char* bad : {"", "1,", "0", "-1", "2x", "1,,2"})
    EXPECT_THROW(parse_batch_list(bad), core::InputError) << bad;
}

TEST(Latency, BenchRuntimeRecordsEveryBatch) {
  vitopt::testing::TempDir tmp;
  runtime::RandomModelOptions o;
  o.config = io::preset("vit-tiny-test");
  runtime::write_random_model(o, tmp / "m.safetensors");
  BenchOptions b;
  b.batches = {1, 3};
  b.runs = 2;
  b.warmup = 1;
  b.runtime.threads = 1;
  const auto out = bench_runtime((tmp / "m.safetensors").string(), b);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1]["batch"], 3);
  EXPECT_EQ(out[1]["engine"], "runtime");
  EXPECT_EQ(out[0]["precision"], "fp32");
  EXPECT_GT(out[0]["p50_ms"].get<double>(), 0.0);
}

TEST(Classify, FilesMatchDirectEngineRun) {
  vitopt::testing::TempDir tmp;
  auto engine = tiny_engine();
  const auto& info = engine->info();
  std::vector<std::string> files;
  for (int i = 0; i < 3; ++i) {
    data::Image img;
    img.height = img.width = info.image_size;
    img.channels = info.in_channels;
    for (int p = 0; p < img.height * img.width * img.channels; ++p)
      img.pixels.push_back(static_cast<uint8_t>((p * 37 + i * 91) % 256));
    files.push_back((tmp / ("img" + std::to_string(i) + ".png")).string());
    data::write_png(files.back(), img);
  }
  InferOptions opts;
  opts.top = 2;
  const auto got = classify_files(*engine, files, opts);
  // Reference: preprocess by hand (image already at model size: only normalization), run, argmax.
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < files.size(); ++i) {
    const auto img = data::load_image_file(files[i], info.in_channels);
    std::vector<float> x(img.pixels.size());
    for (size_t p = 0; p < x.size(); ++p)
      x[p] = (img.pixels[p] / 255.0f - info.mean[0]) / info.std[0];  // 1 channel: CHW == HWC
    std::vector<float> logits(static_cast<size_t>(info.num_classes));
    engine->run(x.data(), 1, logits.data());
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(got[i].image, files[i]);
    ASSERT_EQ(got[i].top.size(), 2u);
    EXPECT_EQ(got[i].top[0].cls, best);
    EXPECT_GE(got[i].top[0].probability, got[i].top[1].probability);
  }
}

TEST(Classify, MeanStdOverridesAreChecked) {
  auto engine = tiny_engine();
  InferOptions o;
  o.mean = {0.1f, 0.2f};  // the model has one channel
  EXPECT_THROW(eval_transform(engine->info(), o), core::InputError);
  o.mean = {0.25f};
  o.std = {2.0f};
  const auto t = eval_transform(engine->info(), o);
  EXPECT_EQ(t.mean, std::vector<float>{0.25f});
  EXPECT_EQ(t.std, std::vector<float>{2.0f});
  EXPECT_EQ(t.size, engine->info().image_size);
  EXPECT_FALSE(t.train);
}

TEST(Classify, ClassNamesFromTextFile) {
  vitopt::testing::TempDir tmp;
  core::write_file_atomic(tmp / "names.txt", std::string("cat\n\ndog\n"));
  EXPECT_EQ(class_names_from((tmp / "names.txt").string(), {"x"}),
            (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(class_names_from("", {"x"}), std::vector<std::string>{"x"});
}

TEST(Accuracy, EqualsPerImageArgmax) {
  auto engine = tiny_engine();
  const auto& info = engine->info();
  auto dataset =
      data::open_synthetic_dataset(info.image_size, info.in_channels, 10, 37, 5, data::Split::Test);
  AccuracyOptions o;
  o.batch_size = 8;  // 37 = 4 full batches + 5
  o.workers = 1;
  const auto r = runtime_accuracy(*engine, dataset, o);
  int64_t top1 = 0;
  std::vector<float> x(static_cast<size_t>(info.in_channels * info.image_size * info.image_size));
  std::mt19937_64 rng(0);
  const auto transform = eval_transform(info, {});
  for (size_t i = 0; i < dataset->size(); ++i) {
    data::apply_transform(dataset->image(i), transform, rng, x.data());
    std::vector<float> logits(static_cast<size_t>(info.num_classes));
    engine->run(x.data(), 1, logits.data());
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    top1 += best == dataset->label(i);
  }
  EXPECT_EQ(r.images, 37);
  EXPECT_EQ(r.top1_correct, top1);
  EXPECT_DOUBLE_EQ(r.top1, static_cast<double>(top1) / 37);
  EXPECT_GE(r.top5_correct, r.top1_correct);
  int64_t per_class_total = 0;
  for (auto n : r.per_class_images) per_class_total += n;
  EXPECT_EQ(per_class_total, 37);
  o.limit = 10;
  EXPECT_EQ(runtime_accuracy(*engine, dataset, o).images, 10);
}

TEST(Accuracy, RefusesMoreClassesThanTheModel) {
  auto engine = tiny_engine(3);
  auto dataset =
      data::open_synthetic_dataset(engine->info().image_size, 1, 10, 4, 1, data::Split::Test);
  EXPECT_THROW(runtime_accuracy(*engine, dataset, {}), core::InputError);
}

}  // namespace
}  // namespace vitopt::infer
