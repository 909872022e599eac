// `vitopt search` as a user runs it: a short search on a tiny model writes the front, every
// candidate, the single-technique table, the figure's script and a model within the budget that
// the runtime loads; `--json` is one JSON object; bad budgets, objectives and space files are
// refused (exit 2) naming the flag or file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "io/model_header.h"

namespace {

using vitopt::testing::vitopt_cli;

TEST(SearchCli, WritesTheFrontAndAModelWithinTheBudget) {
  vitopt::testing::TempDir tmp;
  const auto m = tmp / "m.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m.string()).code, 0);
  const auto out = tmp / "search";
  const auto r = vitopt_cli("search --model " + m.string() + " --out " + out.string() +
                            " --data synthetic --calib-images 16 --holdout-images 32 --population 4"
                            " --generations 2 --latency-runs 3 --budget params=70% --no-evaluate"
                            " --no-deliver-singles --threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  ASSERT_EQ(j["returned"].size(), 1u);
  const auto model = j["returned"][0]["model"].get<std::string>();
  const auto base = vitopt::io::read_model_header(m), got = vitopt::io::read_model_header(model);
  EXPECT_LE(j["returned"][0]["final_metrics"]["params"].get<double>(),
            0.7 * j["baseline"]["params"].get<double>());
  EXPECT_NE(got.config.to_json(), base.config.to_json());
  for (const char* f : {"arch_pareto_top1_latency-ms.csv", "candidates.csv",
                        "single_techniques.csv", "search_state.json", "search.json"})
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
  std::ifstream front(out / "arch_pareto_top1_latency-ms.csv");
  std::string header;
  std::getline(front, header);
  EXPECT_EQ(header.rfind("key,generation,top1,latency-ms", 0), 0u) << header;
  // Resuming the finished search evaluates nothing new and returns the same model.
  const auto again = vitopt_cli("search --model " + m.string() + " --out " + out.string() +
                                " --data synthetic --calib-images 16 --holdout-images 32"
                                " --population 4 --generations 2 --latency-runs 3"
                                " --budget params=70% --no-evaluate --no-deliver-singles"
                                " --threads 1 --json");
  ASSERT_EQ(again.code, 0) << again.out;
  const auto k = nlohmann::json::parse(again.out.substr(again.out.find('{')));
  EXPECT_EQ(k["evaluated"], j["evaluated"]);
  EXPECT_EQ(k["returned"][0]["key"], j["returned"][0]["key"]);
}

TEST(SearchCli, RefusesBadBudgetsObjectivesAndSpaces) {
  vitopt::testing::TempDir tmp;
  const auto m = tmp / "m.safetensors";
  ASSERT_EQ(vitopt_cli("init --preset vit-tiny-test --out " + m.string()).code, 0);
  const std::string base =
      "search --model " + m.string() + " --out " + (tmp / "o").string() + " --data synthetic ";
  const auto bad_space = tmp / "space.yaml";
  std::ofstream(bad_space) << "blocks:\n  heads: all\n  wieght_bits: [8]\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--budget watts=3", "--budget"},
      {"--budget params=-1", "--budget"},
      {"--objectives top1,speed", "--objectives"},
      {"--population 2", "--population"},
      {"--space " + bad_space.string(), "wieght_bits"},
  };
  for (const auto& [flags, expect] : cases) {
    const auto r = vitopt_cli(base + flags);
    EXPECT_EQ(r.code, 2) << flags << "\n" << r.out;
    EXPECT_NE(r.out.find(expect), std::string::npos) << flags << "\n" << r.out;
  }
}

}  // namespace
