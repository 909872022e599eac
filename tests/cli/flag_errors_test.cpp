// Every flag validation error is bad input: exit code 2 and one readable line naming the flag and
// the accepted values (README's promise), across commands and kinds of mistakes.
#include <gtest/gtest.h>

#include "cli_run.h"

namespace {

using vitopt::testing::vitopt_cli;

// The run failed as bad input, said `expect`, and printed no 300-digit bound.
void expect_bad_flag(const std::string& args, const std::string& expect) {
  const auto r = vitopt_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
  EXPECT_NE(r.out.find("vitopt: error:"), std::string::npos) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(expect), std::string::npos) << args << "\n" << r.out;
  EXPECT_EQ(r.out.find("17976931348623157"), std::string::npos) << args << "\n" << r.out;
  EXPECT_EQ(r.out.find("0.000000"), std::string::npos) << args << "\n" << r.out;
  EXPECT_LT(r.out.size(), 400u) << args << "\n" << r.out;
}

TEST(FlagErrors, NegativeAndZeroValuesExit2WithReadableBounds) {
  vitopt::testing::TempDir tmp;
  const std::string out = " --out " + (tmp / "o").string();
  expect_bad_flag("train --epochs -1" + out, "--epochs: expected a number > 0, got '-1'");
  expect_bad_flag("train --epochs 0" + out, "--epochs: expected a number > 0, got '0'");
  expect_bad_flag("train --wd -0.5" + out, "--wd: expected a number >= 0, got '-0.5'");
  expect_bad_flag("train --label-smoothing 3" + out,
                  "--label-smoothing: expected a number in [0, 0.999], got '3'");
  expect_bad_flag("train --threads -2" + out, "--threads: expected a number >= 0, got '-2'");
  expect_bad_flag("init --dim 0 --out " + (tmp / "m").string(),
                  "--dim: expected a number > 0, got '0'");
  expect_bad_flag("prune --model /nonexistent/m.safetensors --out x.safetensors",
                  "/nonexistent/m.safetensors");
}

TEST(FlagErrors, UnknownMissingAndMalformedFlagsExit2) {
  vitopt::testing::TempDir tmp;
  expect_bad_flag("train --no-such-flag --out " + (tmp / "o").string(), "--no-such-flag");
  expect_bad_flag("train --epochs", "--epochs");                 // value missing
  expect_bad_flag("train --epochs abc --out x", "abc");          // not a number
  expect_bad_flag("train --epochs 2", "--out");                  // required flag missing
  expect_bad_flag("no-such-command", "no-such-command");         // unknown sub-command
}

TEST(FlagErrors, HelpAndVersionStillExit0) {
  auto r = vitopt_cli("train --help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--epochs"), std::string::npos);
  r = vitopt_cli("--version");
  EXPECT_EQ(r.code, 0) << r.out;
}

}  // namespace
