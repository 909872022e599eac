// `vitopt merge` as a user runs it: the schedule lands in the file with every tensor byte for
// byte unchanged (fp32 and quantized), the report counts fewer MACs, fine-tuning with merging on
// writes a trained file, `--merge-r` overrides in eval/bench/info and vitopt-rt, bad values are
// refused (exit 2) naming the flag, and a quantized file is not fine-tuned.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "io/model_header.h"
#include "io/safetensors.h"

namespace {

using vitopt::testing::vitopt_cli;

nlohmann::json json_of(const vitopt::testing::CliRun& r) {
  return nlohmann::json::parse(r.out.substr(r.out.find('{')));
}

void expect_same_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto fa = vitopt::io::SafeTensorsFile::load(a), fb = vitopt::io::SafeTensorsFile::load(b);
  ASSERT_EQ(fa.names(), fb.names());
  for (const auto& n : fa.names()) {
    ASSERT_EQ(fa.info(n).nbytes, fb.info(n).nbytes) << n;
    EXPECT_EQ(0, std::memcmp(fa.data(n), fb.data(n), fa.info(n).nbytes)) << n;
  }
}

TEST(MergeCli, SetsTheScheduleAndKeepsEveryTensor) {
  vitopt::testing::TempDir tmp;
  const auto m = tmp / "m.safetensors", out = tmp / "merged.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-fmnist --out " + m.string()).code, 0);
  const auto r = vitopt_cli("merge --model " + m.string() + " --r 8 --data synthetic --eval-limit 32 "
                            "--threads 1 --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = json_of(r);
  EXPECT_EQ(j["merged"]["tokens"], (std::vector<int>{50, 42, 34, 26, 18, 10, 6}));
  EXPECT_LT(j["merged"]["macs"].get<int64_t>(), j["original"]["macs"].get<int64_t>());
  EXPECT_TRUE(j["merged"].contains("accuracy"));
  EXPECT_TRUE(j.contains("speed"));
  expect_same_tensors(m, out);
  const auto header = vitopt::io::read_model_header(out);
  EXPECT_EQ(header.config.blocks[0].merge_r, 8);
  // The override computes the same as the stored schedule, on both engines.
  for (const char* engine : {"runtime", "torch"}) {
    const auto stored = vitopt_cli("eval --model " + out.string() + " --data synthetic --limit 32 "
                                   "--threads 1 --json --engine " + std::string(engine));
    const auto over = vitopt_cli("eval --model " + m.string() + " --data synthetic --limit 32 "
                                 "--threads 1 --json --merge-r 8 --engine " + std::string(engine));
    ASSERT_EQ(stored.code, 0) << stored.out;
    ASSERT_EQ(over.code, 0) << over.out;
    EXPECT_EQ(json_of(stored)["models"][0]["classification"]["top1"],
              json_of(over)["models"][0]["classification"]["top1"]) << engine;
  }
  const auto info = vitopt_cli("info --json --model " + m.string() + " --merge-r decreasing:8");
  ASSERT_EQ(info.code, 0) << info.out;
  EXPECT_LT(json_of(info)["tokens"].back().get<int>(), 50);
  const auto rt = (vitopt::testing::build_dir() / "bin" / "vitopt-rt").string();
  EXPECT_EQ(std::system((rt + " bench --model " + m.string() + " --merge-r 8 --runs 2 > /dev/null").c_str()), 0);
}

TEST(MergeCli, QuantizedFilesMergeExactlyButAreNotFineTuned) {
  vitopt::testing::TempDir tmp;
  const auto m = tmp / "m.safetensors", q = tmp / "q.safetensors", out = tmp / "qm.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m.string()).code, 0);
  ASSERT_EQ(vitopt_cli("quantize --model " + m.string() + " --wbits 8 --abits 8 --data synthetic "
                       "--calib-images 16 --no-eval --out " + q.string()).code, 0);
  const auto r = vitopt_cli("merge --model " + q.string() + " --r 2 --no-measure --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_tensors(q, out);
  const auto ft = vitopt_cli("merge --model " + q.string() + " --r 2 --finetune-epochs 1 --no-measure --out " +
                             (tmp / "x.safetensors").string());
  EXPECT_EQ(ft.code, 2) << ft.out;
  EXPECT_NE(ft.out.find("quantized"), std::string::npos) << ft.out;
}

TEST(MergeCli, FineTunesWithMergingOn) {
  vitopt::testing::TempDir tmp;
  const auto m = tmp / "m.safetensors", out = tmp / "ft.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m.string()).code, 0);
  const auto r = vitopt_cli("merge --model " + m.string() + " --r 4 --finetune-epochs 1 --limit 64 --batch-size 16 "
                            "--data synthetic --eval-limit 32 --threads 1 --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = json_of(r);
  EXPECT_TRUE(j.contains("before_finetune"));
  EXPECT_EQ(vitopt::io::read_model_header(out).config.blocks[1].merge_r, 4);
  // Trained: the weights moved.
  const auto a = vitopt::io::SafeTensorsFile::load(m), b = vitopt::io::SafeTensorsFile::load(out);
  EXPECT_NE(a.read_f32("head.weight"), b.read_f32("head.weight"));
}

TEST(MergeCli, BadValuesAreRefusedNamingTheFlag) {
  vitopt::testing::TempDir tmp;
  const auto m = (tmp / "m.safetensors").string();
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m).code, 0);
  auto expect_bad = [&](const std::string& args, const std::string& needle) {
    const auto r = vitopt_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  };
  const std::string merge = "merge --model " + m + " --no-measure --out " + (tmp / "o.safetensors").string();
  expect_bad(merge + " --r -3", "--r");
  expect_bad(merge + " --r 1,2,3", "one per block");
  expect_bad(merge + " --r fast", "--r");
  expect_bad(merge + " --r 2 --finetune-epochs -1", "--finetune-epochs");
  expect_bad("eval --model " + m + " --data synthetic --limit 8 --merge-r x", "--merge-r");
  expect_bad("bench --model " + m + " --runs 1 --merge-r 1,1,1", "--merge-r");
}

}  // namespace
