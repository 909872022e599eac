// Every advertised compression path, end to end through the `vitopt` binary on one briefly trained
// vit-tiny-test (Fashion-MNIST subset, trained once for the suite): infer on known images, QAT
// with STE and LSQ, prune --method sensitivity, the bit sweep, and mixed precision under a size
// budget. Each test checks the behaviour itself, not just an exit code.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <memory>
#include <set>

#include "cli_run.h"
#include "core/file_util.h"
#include "data/dataset.h"
#include "data/image_decode.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using vitopt::testing::CliRun;
using vitopt::testing::vitopt_cli;

nlohmann::json json_of(const CliRun& r) {
  // --json prints the result on stdout; progress and notes go to stderr (merged): take the JSON.
  const auto start = r.out.find_first_of("{[");
  return nlohmann::json::parse(r.out.substr(start == std::string::npos ? 0 : start));
}

class AdvertisedPaths : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists("/usr/share/datasets/fashion-mnist")) return;
    dir_ = std::make_unique<vitopt::testing::TempDir>();
    const auto r = vitopt_cli(
        "train --preset vit-tiny-test --data fashion-mnist --limit 6000 --val-limit 500 "
        "--epochs 2 --batch-size 64 --lr 0.003 --warmup-epochs 0.2 --crop-padding 0 --threads 2 "
        "--workers 1 --seed 1 --quiet --out " + (*dir_ / "train").string());
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "Fashion-MNIST is not installed (dataset-fashion-mnist)";
  }
  static std::string model() { return (*dir_ / "train" / "best.safetensors").string(); }
  static fs::path dir() { return dir_->path(); }
  static std::unique_ptr<vitopt::testing::TempDir> dir_;
};
std::unique_ptr<vitopt::testing::TempDir> AdvertisedPaths::dir_;

// Known images: the first 30 Fashion-MNIST test images written as PNG files; the model trained
// for seconds gets most of them right, a broken decode/preprocess path gets about 10%.
TEST_F(AdvertisedPaths, InferPredictsKnownImages) {
  namespace data = vitopt::data;
  auto test = data::open_dataset(data::parse_dataset_spec("fashion-mnist"), data::Split::Test);
  std::string files;
  std::vector<int> labels;
  for (size_t i = 0; i < 30; ++i) {
    const auto png = dir() / fmt::format("test{:02}.png", i);
    data::write_png(png, test->image(i));
    files += fmt::format(" {}", png.string());
    labels.push_back(test->label(i));
  }
  const auto names = test->class_names();
  for (const char* engine : {"torch", "runtime"}) {
    const auto r = vitopt_cli(fmt::format("infer --engine {} --model {} --json{}", engine, model(), files));
    ASSERT_EQ(r.code, 0) << r.out;
    const auto j = json_of(r);
    ASSERT_EQ(j.size(), 30u);
    int correct = 0;
    for (size_t i = 0; i < 30; ++i) {
      const auto& top = j[i]["top"][0];
      correct += top["class"].get<int>() == labels[i];
      EXPECT_EQ(top["name"], names[static_cast<size_t>(top["class"].get<int>())]);
    }
    EXPECT_GE(correct, 18) << engine << ": " << correct << "/30 right";
  }
}

TEST_F(AdvertisedPaths, QatWithSteAndLsqFineTunes) {
  const auto base = "quantize --model " + model() +
                    " --data fashion-mnist --wbits 4 --abits 8 --calib-images 128 --limit 300 "
                    "--qat-images 512 --qat-lr 0.0005 --threads 2 --workers 1 --json --out ";
  const auto ptq = vitopt_cli("quantize --model " + model() +
                              " --data fashion-mnist --wbits 4 --abits 8 --calib-images 128 "
                              "--no-eval --threads 2 --json --out " + (dir() / "ptq.safetensors").string());
  ASSERT_EQ(ptq.code, 0) << ptq.out;
  const auto ste = vitopt_cli(base + (dir() / "ste.safetensors").string() + " --qat-epochs 1");
  ASSERT_EQ(ste.code, 0) << ste.out;
  const auto lsq =
      vitopt_cli(base + (dir() / "lsq.safetensors").string() + " --qat-epochs 1 --lsq");
  ASSERT_EQ(lsq.code, 0) << lsq.out;
  const auto js = json_of(ste), jl = json_of(lsq);
  EXPECT_FALSE(js["qat"]["lsq"].get<bool>());
  EXPECT_TRUE(jl["qat"]["lsq"].get<bool>());
  for (const auto* j : {&js, &jl}) {
    EXPECT_EQ((*j)["qat"]["history"].size(), 1u);
    EXPECT_GT((*j)["top1"].get<double>(), 0.3) << j->dump();  // accuracy reported, and sane
  }
  // QAT changed the weights; LSQ (learned step sizes) differs from STE (fixed scales).
  const auto p = vitopt::core::read_file_bytes(dir() / "ptq.safetensors");
  const auto s = vitopt::core::read_file_bytes(dir() / "ste.safetensors");
  const auto l = vitopt::core::read_file_bytes(dir() / "lsq.safetensors");
  EXPECT_NE(p, s);
  EXPECT_NE(s, l);
  // LSQ learned the weight scales: some stored scale differs from STE's (which keeps PTQ's).
  const auto fs_ste = vitopt::io::SafeTensorsFile::load(dir() / "ste.safetensors");
  const auto fs_lsq = vitopt::io::SafeTensorsFile::load(dir() / "lsq.safetensors");
  const auto fs_ptq = vitopt::io::SafeTensorsFile::load(dir() / "ptq.safetensors");
  int scales = 0, ste_same = 0, lsq_moved = 0;
  for (const auto& name : fs_ptq.names()) {
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".scale") != 0) continue;
    ++scales;
    ste_same += fs_ptq.read_f32(name) == fs_ste.read_f32(name);
    lsq_moved += fs_ptq.read_f32(name) != fs_lsq.read_f32(name);
  }
  ASSERT_GT(scales, 0);
  EXPECT_EQ(ste_same, scales) << "STE must keep the calibrated weight scales";
  EXPECT_GT(lsq_moved, 0) << "LSQ must learn step sizes";
}

TEST_F(AdvertisedPaths, PruneBySensitivityUsesGradients) {
  auto run = [&](const std::string& method, const std::string& name) {
    return vitopt_cli("prune --model " + model() + " --method " + method +
                      " --sparsity 0.5 --finetune-epochs 0 --data fashion-mnist --calib-images 128 "
                      "--eval-limit 300 --threads 2 --workers 1 --json --out " +
                      (dir() / name).string());
  };
  const auto sens = run("sensitivity", "sens.safetensors");
  ASSERT_EQ(sens.code, 0) << sens.out;
  const auto glob = run("global", "glob.safetensors");
  ASSERT_EQ(glob.code, 0) << glob.out;
  const auto js = json_of(sens), jg = json_of(glob);
  EXPECT_NEAR(js["pruned"]["sparsity"].get<double>(), 0.5, 0.01) << js["pruned"].dump();
  EXPECT_GT(js["pruned"]["accuracy"]["top1"].get<double>(), 0.1);
  // Half the weights gone moves the predictions (KL to the dense model on training images).
  EXPECT_GT(js["pruned"]["kl"].get<double>(), 0.0);
  // |w * dL/dw| ranks differently from |w|: the zero patterns differ.
  EXPECT_NE(vitopt::core::read_file_bytes(dir() / "sens.safetensors"),
            vitopt::core::read_file_bytes(dir() / "glob.safetensors"));
  // No speed claim for dense storage of zeros.
  EXPECT_EQ(js["speed"]["verdict"], "not measured");
  EXPECT_EQ(vitopt_cli("prune --model " + model() + " --method sensitivity --sparsity 0.5 "
                       "--finetune-epochs 0 --eval-limit 100 --calib-images 64 --threads 2 --out " +
                       (dir() / "s2.safetensors").string())
                .out.find(" ms -> "),
            std::string::npos);
}

TEST_F(AdvertisedPaths, BitSweepReportsEveryWidth) {
  const auto out = dir() / "sweep";
  const auto r = vitopt_cli("quantize --model " + model() +
                            " --data fashion-mnist --sweep 3,8 --calib-images 128 --limit 300 "
                            "--threads 2 --workers 1 --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = json_of(r);
  ASSERT_EQ(j["widths"].size(), 2u);
  const auto& w3 = j["widths"][0];
  const auto& w8 = j["widths"][1];
  EXPECT_EQ(w3["bits"], 3);
  EXPECT_EQ(w8["bits"], 8);
  EXPECT_LT(w3["bytes"].get<int64_t>(), w8["bytes"].get<int64_t>());  // 3-bit packs smaller
  // 8 bits is near-lossless; 3 bits may not be.
  EXPECT_NEAR(w8["top1"].get<double>(), j["top1_fp32"].get<double>(), 0.03);
  for (const char* f : {"w3a3.safetensors", "w8a8.safetensors", "sweep.md", "histograms.json",
                        "accuracy_vs_bits.png", "activations.png", "eval/metrics.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
}

TEST_F(AdvertisedPaths, MixedPrecisionMeetsTheSizeBudget) {
  // Budget between the all-4-bit and the all-8-bit file sizes, so bits must be mixed.
  auto size_at = [&](int bits) {
    const auto f = dir() / fmt::format("u{}.safetensors", bits);
    const auto r = vitopt_cli(fmt::format("quantize --model {} --wbits {} --abits 8 "
                                          "--calib-images 64 --no-eval --threads 2 --out {}",
                                          model(), bits, f.string()));
    EXPECT_EQ(r.code, 0) << r.out;
    return static_cast<double>(fs::file_size(f));
  };
  const double budget_mb = (size_at(4) + size_at(8)) / 2 / 1e6;
  const auto f = dir() / "mixed.safetensors";
  const auto r = vitopt_cli(fmt::format("quantize --model {} --abits 8 --size-budget-mb {} "
                                        "--mp-bits 4,8 --calib-images 128 --limit 300 --threads 2 "
                                        "--workers 1 --json --out {}",
                                        model(), budget_mb, f.string()));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = json_of(r);
  EXPECT_LE(static_cast<double>(fs::file_size(f)), budget_mb * 1e6);  // budget met
  ASSERT_TRUE(j.contains("top1")) << "accuracy reported";
  EXPECT_GT(j["top1"].get<double>(), 0.3);
  std::set<int> bits;
  for (const auto& [layer, b] : j["mixed_precision"]["bits"].items()) bits.insert(b.get<int>());
  EXPECT_EQ(bits, (std::set<int>{4, 8})) << j["mixed_precision"]["bits"].dump();
}

}  // namespace
