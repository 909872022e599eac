// A full disk while `vitopt` writes a model, a checkpoint or a report, simulated with a file-size
// limit (bash `ulimit -f`, SIGXFSZ ignored so writes fail with EFBIG): a clear one-line error,
// a non-zero exit, and the previous file left byte-identical.
#include <gtest/gtest.h>

#include "cli_run.h"
#include "core/file_util.h"

namespace {

namespace fs = std::filesystem;
using vitopt::testing::CliRun;
using vitopt::testing::vitopt_cli;

// vitopt `args` under a per-file size limit of `kib` KiB.
CliRun vitopt_limited(int kib, const std::string& args) {
  const std::string inner = "ulimit -f " + std::to_string(kib) + "; trap '' XFSZ; exec " +
                            vitopt::testing::vitopt_binary() + " " + args;
  const std::string cmd = "bash -c \"" + inner + "\" 2>&1";
  CliRun r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void expect_disk_error(const CliRun& r, const fs::path& file) {
  EXPECT_EQ(r.code, 1) << r.out;  // the environment failed, not the input
  EXPECT_NE(r.out.find("vitopt: error: " + file.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("file-size limit"), std::string::npos) << r.out;
}

TEST(FullDisk, ModelFileKeepsThePreviousVersion) {
  vitopt::testing::TempDir tmp;
  const auto model = tmp / "m.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --seed 1 --quiet --out " + model.string()).code, 0);
  const auto before = vitopt::core::read_file_bytes(model);
  ASSERT_GT(before.size(), 8u * 1024);
  // vit-fmnist is ~1 MB: over a 64 KiB limit.
  const auto r = vitopt_limited(64, "init --preset vit-fmnist --seed 2 --quiet --out " + model.string());
  expect_disk_error(r, model);
  EXPECT_NE(r.out.find("previous file is intact"), std::string::npos) << r.out;
  EXPECT_EQ(vitopt::core::read_file_bytes(model), before);
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(FullDisk, CheckpointKeepsThePreviousVersion) {
  vitopt::testing::TempDir tmp;
  const auto run = tmp / "run";
  const std::string train =
      "train --preset vit-tiny-test --data synthetic --limit 64 --batch-size 16 --epochs 2 "
      "--no-val --checkpoint-every 1 --threads 1 --workers 1 --quiet --out " + run.string();
  ASSERT_EQ(vitopt_cli(train + " --stop-after-steps 2").code, 0);
  const auto ckpt = run / "checkpoint.safetensors";
  const auto before = vitopt::core::read_file_bytes(ckpt);
  // Room for train_config.json, not for a checkpoint (model + AdamW state).
  const int kib = static_cast<int>(before.size() / 1024 / 2);
  const auto r = vitopt_limited(kib, train + " --resume");
  expect_disk_error(r, ckpt);
  EXPECT_EQ(vitopt::core::read_file_bytes(ckpt), before);
  EXPECT_EQ(vitopt_cli(train + " --resume").code, 0) << "resumes once there is room again";
}

TEST(FullDisk, ReportKeepsThePreviousVersion) {
  vitopt::testing::TempDir tmp;
  const auto model = tmp / "m.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --seed 1 --quiet --out " + model.string()).code, 0);
  const std::string eval = "eval --model " + model.string() +
                           " --data synthetic --limit 32 --latency-runs 5 --threads 1 --quiet --out " +
                           (tmp / "report").string();
  ASSERT_EQ(vitopt_cli(eval).code, 0);
  const auto html = tmp / "report" / "report.html";
  const auto before = vitopt::core::read_file_bytes(html);
  // report.html embeds every figure (hundreds of KiB); metrics.json/csv and each PNG are smaller.
  const auto r = vitopt_limited(static_cast<int>(before.size() / 1024 / 2), eval);
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("vitopt: error:"), std::string::npos) << r.out;
  EXPECT_EQ(vitopt::core::read_file_bytes(html), before);
}

}  // namespace
