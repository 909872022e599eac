// `vitopt circuits` as a user runs it: one slimmed model, circuit JSON and picture per threshold;
// bad values refused as bad input (exit 2) naming the flag.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_run.h"

namespace {

using vitopt::testing::vitopt_cli;

TEST(CircuitsCli, AcdcWritesAModelCircuitAndPicturePerThreshold) {
  vitopt::testing::TempDir tmp;
  const auto m = (tmp / "m.safetensors").string();
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m).code, 0);
  const auto out = tmp / "c";
  const auto r = vitopt_cli("circuits --model " + m +
                            " --method acdc --threshold 0,1000 --data synthetic "
                            "--analysis-batches 1 --analysis-batch-size 16 --eval-limit 32 "
                            "--threads 1 --json --out " +
                            out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  ASSERT_EQ(j["settings"].size(), 2u);
  // Threshold 1000 removes every head and neuron: only the embedding, norm and head remain.
  EXPECT_EQ(j["settings"][1]["kept_heads"].get<int>(), 0);
  EXPECT_LT(j["settings"][1]["slimmed"]["params"].get<int64_t>(),
            j["settings"][0]["slimmed"]["params"].get<int64_t>());
  for (const char* f : {"acdc_threshold_0.safetensors", "acdc_threshold_1000.safetensors",
                        "acdc_threshold_0.json", "acdc_threshold_0.dot", "circuits.json"})
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
  // The slimmed model is an ordinary model file.
  EXPECT_EQ(vitopt_cli("info --model " + (out / "acdc_threshold_1000.safetensors").string()).code,
            0);
}

TEST(CircuitsCli, BadValuesAreRefusedNamingTheFlag) {
  vitopt::testing::TempDir tmp;
  const auto m = (tmp / "m.safetensors").string();
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m).code, 0);
  const std::string base = "circuits --model " + m + " --out " + (tmp / "c").string();
  auto expect_bad = [&](const std::string& args, const std::string& needle) {
    const auto r = vitopt_cli(base + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  };
  expect_bad(" --method acdc --threshold -0.5", "--threshold");
  expect_bad(" --method eap-ig --keep-ratio 0", "--keep-ratio");
  expect_bad(" --method eap-ig --keep-ratio 0.5 --level wires", "--level");
  expect_bad(" --method eap --keep-ratio 0.5", "--use-task-loss");
  expect_bad(" --method acdc --threshold 0.1 --ablation noise", "--ablation");
}

}  // namespace
