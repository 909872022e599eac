// Recipe parsing under mutation, the recipes' fuzz test: the recipes in configs/ are mutated many
// times (seeded, so every run tries the same inputs) by byte flips, deletions, duplications and
// splices of YAML syntax and of keys; every result must parse or be refused with an InputError.
// Anything else (a yaml-cpp or JSON exception, a crash) is a bug, reported with the input. (The
// LibTorch-free parsers run under libFuzzer in the sanitizer build, tests/fuzz/; the recipe reader
// is built with the jobs' LibTorch request types, so it is exercised here instead.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "pipeline/recipe.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

// Pieces of YAML that reach the parser's corners: flow and block collections, anchors, tags,
// huge / negative / non-finite numbers, and keys of every section.
const std::vector<std::string> kSplices = {"{",
                                           "}",
                                           "[",
                                           "]",
                                           ": ",
                                           "- ",
                                           "\n",
                                           "\n  ",
                                           "&a ",
                                           "*a",
                                           "!!int ",
                                           "!!map ",
                                           "? ",
                                           "|",
                                           ">",
                                           "\"",
                                           "'",
                                           "#",
                                           ",",
                                           "~",
                                           "null",
                                           "true",
                                           "-1",
                                           "0",
                                           "1e309",
                                           "-1e309",
                                           ".nan",
                                           ".inf",
                                           "99999999999999999999",
                                           "0x10",
                                           "[a, b]",
                                           "{a: 1}",
                                           "[[1]]",
                                           "{[1]: 2}",
                                           "stages:",
                                           "train:",
                                           "prune:",
                                           "quantize:",
                                           "epochs:",
                                           "model:",
                                           "eval:",
                                           "search:",
                                           "circuits:",
                                           "name: x",
                                           "budget:",
                                           "wbits:",
                                           "method:",
                                           "finetune_epochs:",
                                           "preset:",
                                           "data:",
                                           "seed:",
                                           "<<: *a"};

std::string mutate(std::string text, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t at = pick(text.size() + 1);
    switch (rng() % 5) {
      case 0:  // flip a byte
        if (at < text.size()) text[at] = static_cast<char>(rng() % 256);
        break;
      case 1:  // delete a run
        text.erase(std::min(at, text.size()), pick(16) + 1);
        break;
      case 2:  // duplicate a run
        if (at < text.size()) text.insert(at, text.substr(at, pick(64) + 1));
        break;
      default:  // splice in YAML syntax or a key
        text.insert(std::min(at, text.size()), kSplices[pick(kSplices.size())]);
    }
  }
  return text;
}

// Mutations per recipe: 1500 in the test run; $VITOPT_RECIPE_MUTATIONS for a longer local run.
int mutations_per_recipe() {
  const char* n = std::getenv("VITOPT_RECIPE_MUTATIONS");
  return n != nullptr ? std::max(1, std::atoi(n)) : 1500;
}

TEST(RecipeMutation, EveryMutatedRecipeParsesOrIsAnInputError) {
  std::mt19937_64 rng(20261202);
  const int per_recipe = mutations_per_recipe();
  int parsed = 0, refused = 0;
  for (const char* name : {"default.yaml", "circuits.yaml", "full.yaml", "search.yaml"}) {
    const auto original = core::read_file_text(vitopt::testing::source_dir() / "configs" / name);
    ASSERT_NO_THROW(parse_recipe(original, name)) << name;  // the seeds themselves are valid
    for (int i = 0; i < per_recipe; ++i) {
      const auto text = mutate(original, rng);
      try {
        parse_recipe(text, name);
        ++parsed;
      } catch (const core::InputError&) {
        ++refused;
      } catch (const std::exception& e) {
        FAIL() << name << " mutation " << i << ": " << e.what() << "\n--- input ---\n" << text;
      }
    }
  }
  // Both outcomes occur: the mutations reach past the YAML syntax into the recipe's fields.
  EXPECT_GT(parsed, per_recipe / 15);
  EXPECT_GT(refused, per_recipe / 15);
  std::printf("[recipe mutations] %d parsed, %d refused\n", parsed, refused);
}

}  // namespace
}  // namespace vitopt::pipeline
