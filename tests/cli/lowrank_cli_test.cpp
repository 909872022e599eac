// `vitopt factorize` and `vitopt share` as a user runs them: a model in, a smaller model and a JSON
// report out; bad values refused as bad input (exit 2) naming the flag.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_run.h"

namespace {

using vitopt::testing::vitopt_cli;

std::string make_model(const vitopt::testing::TempDir& tmp) {
  const auto path = (tmp / "m.safetensors").string();
  const auto r = vitopt_cli("init --preset vit-tiny-test --depth 4 --out " + path);
  EXPECT_EQ(r.code, 0) << r.out;
  return path;
}

nlohmann::json json_of(const std::string& out) {
  const auto start = out.find('{');
  EXPECT_NE(start, std::string::npos) << out;
  return nlohmann::json::parse(out.substr(start));
}

TEST(LowRankCli, FactorizeAndShareWriteSmallerModels) {
  vitopt::testing::TempDir tmp;
  const auto m = make_model(tmp);
  auto r = vitopt_cli("factorize --model " + m +
                      " --rank-ratio 0.5 --keep-slower --data synthetic "
                      "--calib-images 16 --eval-limit 32 --json --threads 1 --out " +
                      (tmp / "f.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = json_of(r.out);
  EXPECT_LT(j["factorized"]["params"].get<int64_t>(), j["dense"]["params"].get<int64_t>());
  EXPECT_TRUE(j["speed"].contains("summary"));
  r = vitopt_cli("share --model " + m +
                 " --groups 0-1,2-3 --data synthetic --eval-limit 32 --json "
                 "--threads 1 --out " +
                 (tmp / "s.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.out;
  j = json_of(r.out);
  EXPECT_LT(j["shared"]["file_bytes"].get<int64_t>(), j["original"]["file_bytes"].get<int64_t>());
  EXPECT_LT(j["shared"]["runtime_memory"]["loaded_bytes"].get<int64_t>(),
            j["original"]["runtime_memory"]["loaded_bytes"].get<int64_t>());
}

TEST(LowRankCli, BadValuesAreRefusedNamingTheFlag) {
  vitopt::testing::TempDir tmp;
  const auto m = make_model(tmp);
  const std::string out = " --out " + (tmp / "x.safetensors").string();
  auto expect_bad = [&](const std::string& args, const std::string& needle) {
    const auto r = vitopt_cli(args + out);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  };
  expect_bad("factorize --model " + m + " --energy 1.5", "--energy");
  expect_bad("factorize --model " + m + " --layers qkv,patch", "patch");
  expect_bad("factorize --model " + m + " --param-budget lots", "--param-budget");
  expect_bad("factorize --model " + m + " --energy 0.9 --rank-ratio 0.5", "excludes");
  expect_bad("share --model " + m + " --groups 0-9", "--groups");
  expect_bad("share --model " + m + " --what ffn", "--what");
  expect_bad("share --model " + m + " --init median", "--init");
}

}  // namespace
