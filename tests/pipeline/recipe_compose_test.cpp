// Recipes that compose: `from:` chains (cycles and unknown stages refused), --set overrides (paths,
// typing, lists, unknown keys), --mode/--only selection, stage fingerprints and the run lock.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/file_util.h"
#include "pipeline/compress_stages.h"
#include "pipeline/overrides.h"
#include "pipeline/recipe.h"
#include "pipeline/run_lock.h"
#include "pipeline/stage_plan.h"
#include "pipeline/stage_state.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const core::InputError& e) {
    return e.what();
  }
  return "";
}
#define EXPECT_ERROR_HAS(call, text)                                          \
  do {                                                                        \
    const std::string msg_ = error_of([&] { (void)(call); });                 \
    EXPECT_NE(msg_.find(text), std::string::npos) << "error was: " << msg_;   \
  } while (0)

const char* kChain = R"(
name: chain
data: synthetic
model: {preset: vit-tiny-test}
quantize:
  - {name: q-of-pruned, from: prune/hn, wbits: 8, abits: 8}
  - {name: q-base, wbits: 8, abits: 8}
prune:
  - {name: hn, methods: [heads, neurons], amount: 0.5}
distill:
  - {name: st, from: prune/hn, student: vit-tiny-test}
)";

std::vector<std::string> ids(const std::vector<StageNode>& plan) {
  std::vector<std::string> out;
  for (const auto& n : plan) out.push_back(n.id);
  return out;
}

std::vector<std::string> plan_ids(const std::string& yaml) {
  const auto r = parse_recipe(yaml, "r.yaml");
  return ids(plan_stages(compress_stage_nodes(r), r.from_model, "r.yaml"));
}

TEST(RecipeFrom, ChainRunsAfterItsInputOtherwiseRecipeOrder) {
  const auto r = parse_recipe(kChain, "r.yaml");
  EXPECT_EQ(r.quantize[0].from, "prune/hn");
  EXPECT_EQ(r.prune[0].request.methods, (std::vector<std::string>{"heads", "neurons"}));
  const auto plan = plan_stages(compress_stage_nodes(r), r.from_model, "r.yaml");
  EXPECT_EQ(ids(plan), (std::vector<std::string>{"train", "prune/hn", "quantize/q-of-pruned",
                                                 "quantize/q-base", "distill/st", "eval"}));
  EXPECT_EQ(plan[2].input_stage, "prune/hn");
  EXPECT_EQ(plan[3].input_stage, "train");  // no `from`: the trained baseline
  EXPECT_EQ(plan[4].input_stage, "prune/hn");
}

TEST(RecipeFrom, StartsFromAModelFileWithoutTraining) {
  const auto r = parse_recipe("from: /m/base.safetensors\nprune: [{name: p, amount: 0.3}]\n"
                              "quantize: [{name: q, from: /m/other.safetensors}]\n", "r.yaml");
  EXPECT_EQ(r.from_model, "/m/base.safetensors");
  const auto plan = plan_stages(compress_stage_nodes(r), r.from_model, "r.yaml");
  EXPECT_EQ(ids(plan), (std::vector<std::string>{"quantize/q", "prune/p", "eval"}));
  EXPECT_EQ(plan[0].input_file, "/m/other.safetensors");
  EXPECT_EQ(plan[1].input_file, "/m/base.safetensors");
  EXPECT_TRUE(plan[1].input_stage.empty());
}

TEST(RecipeFrom, RefusesCyclesUnknownStagesAndTrainWithoutTraining) {
  EXPECT_ERROR_HAS(plan_ids("quantize: [{name: a, from: prune/b}]\nprune: [{name: b, from: quantize/a}]\n"),
                   "cycle: quantize/a <- prune/b <- quantize/a");
  EXPECT_ERROR_HAS(plan_ids("prune: [{name: b, from: prune/b}]\n"), "cannot start from itself");
  const auto unknown = error_of([] { plan_ids("quantize: [{name: a, from: prune/nope}]\n"); });
  EXPECT_NE(unknown.find("'prune/nope': no such stage"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("quantize/a"), std::string::npos) << unknown;  // names the stages there are
  EXPECT_ERROR_HAS(plan_ids("from: m.safetensors\nquantize: [{name: a, from: train}]\n"),
                   "no training stage");
}

TEST(Overrides, ParseRefusesMalformedText) {
  EXPECT_ERROR_HAS(parse_override("train.epochs"), "expected key.path=value");
  EXPECT_ERROR_HAS(parse_override("=3"), "expected key.path=value");
  EXPECT_ERROR_HAS(parse_override("train..epochs=3"), "empty key");
  const auto o = parse_override("prune.a.methods=[heads,neurons]");
  EXPECT_EQ(o.path, "prune.a.methods");
  EXPECT_EQ(o.value, "[heads,neurons]");
}

Recipe with_sets(const std::string& yaml, const std::vector<std::string>& sets) {
  std::vector<Override> o;
  for (const auto& s : sets) o.push_back(parse_override(s));
  return parse_recipe(yaml, "r.yaml", o);
}

TEST(Overrides, SetAnyValueTypedLikeTheFile) {
  const auto r = with_sets(kChain, {"train.epochs=5", "train.lr=0.01", "eval.limit=7",
                                    "prune.hn.amount=0.25", "prune.hn.methods=[heads]",
                                    "quantize.1.abits=none", "distill.st.modes=[logit]",
                                    "seed=9", "model.num_classes=4"});
  EXPECT_EQ(r.train.options.epochs, 5);
  EXPECT_DOUBLE_EQ(r.train.options.lr, 0.01);
  EXPECT_EQ(r.eval_limit, 7u);
  EXPECT_DOUBLE_EQ(r.prune[0].request.amount, 0.25);
  EXPECT_EQ(r.prune[0].request.methods, std::vector<std::string>{"heads"});
  EXPECT_FALSE(r.quantize[1].request.ptq.abits.has_value());  // by index: the second entry
  EXPECT_TRUE(r.quantize[0].request.ptq.abits.has_value());
  EXPECT_EQ(r.distill[0].request.runs, std::vector<std::string>{"logit"});
  EXPECT_EQ(r.seed, 9u);
  EXPECT_EQ(r.train.config.num_classes, 4);
  EXPECT_EQ(r.overrides.size(), 9u);
  // A stage's fingerprint section follows the override; the others stay as they were.
  const auto plain = parse_recipe(kChain, "r.yaml");
  EXPECT_NE(r.prune[0].canonical, plain.prune[0].canonical);
  EXPECT_EQ(r.quantize[0].canonical, plain.quantize[0].canonical);
  EXPECT_NE(r.train_canonical, plain.train_canonical);
}

TEST(Overrides, UnknownPathsAndWrongTypesNameTheSetAndTheValidKeys) {
  const auto unknown = error_of([] { with_sets(kChain, {"train.epochz=3"}); });
  EXPECT_NE(unknown.find("--set train.epochz=3"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("known here:"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("epochs"), std::string::npos) << unknown;
  EXPECT_ERROR_HAS(with_sets(kChain, {"trian.epochs=3"}), "--set trian.epochs=3");
  EXPECT_ERROR_HAS(with_sets(kChain, {"prune.nope.amount=0.3"}), "no entry named 'nope' (entries: hn)");
  EXPECT_ERROR_HAS(with_sets(kChain, {"prune.hn.ratios=[0.3,0.5]"}), "--set prune.hn.ratios=[0.3,0.5]");
  const auto typed = error_of([] { with_sets(kChain, {"train.epochs=many"}); });
  EXPECT_NE(typed.find("--set train.epochs=many"), std::string::npos) << typed;
  EXPECT_NE(typed.find("train.epochs"), std::string::npos) << typed;
  EXPECT_ERROR_HAS(with_sets(kChain, {"name.x=1"}), "is a single value");
  EXPECT_ERROR_HAS(with_sets(kChain, {"eval.limit=[1"}), "not valid YAML");
  // Wrong values in the file itself still name the file.
  EXPECT_ERROR_HAS(with_sets("train: {epochs: x}\n", {"seed=1"}), "r.yaml");
}

TEST(Overrides, FingerprintTextIgnoresStyleAndOrder) {
  const auto a = parse_recipe("prune: [{name: p, amount: 0.3, methods: global}]\n", "a.yaml");
  const auto b = parse_recipe("prune:\n  - methods: global   # comment\n    name: p\n    amount: 0.3\n",
                              "b.yaml");
  EXPECT_EQ(a.prune[0].canonical, b.prune[0].canonical);
  EXPECT_EQ(a.train_canonical, b.train_canonical);
}

TEST(Selection, ModesAndOnly) {
  const auto r = parse_recipe(kChain, "r.yaml");
  const auto plan = plan_stages(compress_stage_nodes(r), r.from_model, "r.yaml");
  using Set = std::set<std::string>;
  EXPECT_EQ(select_stages(plan, Mode::kTrain, {}), Set{"train"});
  EXPECT_EQ(select_stages(plan, Mode::kEvaluate, {}), Set{"eval"});
  EXPECT_EQ(select_stages(plan, Mode::kOptimize, {}),
            (Set{"prune/hn", "quantize/q-of-pruned", "quantize/q-base", "distill/st"}));
  EXPECT_EQ(select_stages(plan, Mode::kAll, {}).size(), 6u);
  EXPECT_EQ(select_stages(plan, Mode::kAll, {"quantize", "eval"}),
            (Set{"quantize/q-of-pruned", "quantize/q-base", "eval"}));
  EXPECT_EQ(select_stages(plan, Mode::kAll, {"hn", "distill/st"}), (Set{"prune/hn", "distill/st"}));
  EXPECT_EQ(select_stages(plan, Mode::kOptimize, {"prune/hn", "train"}), Set{"prune/hn"});
  EXPECT_ERROR_HAS(select_stages(plan, Mode::kTrain, {"prune"}), "selects nothing");
  EXPECT_ERROR_HAS(select_stages(plan, Mode::kAll, {"prune/zz"}), "no such stage");
  EXPECT_ERROR_HAS(parse_mode("fast"), "train, optimize, evaluate or all");
  const auto no_train = parse_recipe("from: m.safetensors\n", "r.yaml");
  const auto eval_only = plan_stages(compress_stage_nodes(no_train), no_train.from_model, "r.yaml");
  EXPECT_ERROR_HAS(select_stages(eval_only, Mode::kTrain, {}), "no such stage");
}

TEST(StageState, ReusedOnlyWhenEveryInputIsUnchanged) {
  vitopt::testing::TempDir tmp;
  const auto model = tmp / "m.safetensors";
  core::write_file_atomic(model, std::string("model bytes"));
  const auto input = tmp / "in.safetensors";
  core::write_file_atomic(input, std::string("input v1"));
  const Fingerprint fp{"section", file_digest(input), code_version()};
  StageStore store(tmp / "stages");
  std::string why;
  EXPECT_FALSE(store.reusable("prune/p", fp, why));  // never ran
  EXPECT_EQ(why, "");
  store.save("prune/p", {"running", fp, {}, {}, {}});
  EXPECT_FALSE(store.reusable("prune/p", fp, why));
  EXPECT_EQ(why, "it was interrupted");
  store.save("prune/p", {"done", fp, model, file_digest(model), {{"x", 1}}});
  const auto s = store.reusable("prune/p", fp, why);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->result["x"], 1);
  EXPECT_TRUE(std::filesystem::exists(tmp / "stages" / "prune-p.json"));

  Fingerprint changed = fp;
  changed.section = "other";
  EXPECT_FALSE(store.reusable("prune/p", changed, why));
  EXPECT_EQ(why, "its recipe section changed");
  core::write_file_atomic(input, std::string("input v2"));  // the upstream model changed
  changed = {"section", file_digest(input), code_version()};
  EXPECT_FALSE(store.reusable("prune/p", changed, why));
  EXPECT_EQ(why, "its input model changed");
  changed = fp;
  changed.code = "other-commit";
  EXPECT_FALSE(store.reusable("prune/p", changed, why));
  EXPECT_NE(why.find("the code changed"), std::string::npos);
  core::write_file_atomic(model, std::string("edited by hand"));
  EXPECT_FALSE(store.reusable("prune/p", fp, why));
  EXPECT_NE(why.find("was changed since"), std::string::npos);
  std::filesystem::remove(model);
  EXPECT_FALSE(store.reusable("prune/p", fp, why));
  EXPECT_NE(why.find("is gone"), std::string::npos);
}

TEST(StageState, DigestFollowsContentAndSize) {
  vitopt::testing::TempDir tmp;
  core::write_file_atomic(tmp / "a", std::string("abc"));
  core::write_file_atomic(tmp / "b", std::string("abd"));
  core::write_file_atomic(tmp / "c", std::string("abc"));
  EXPECT_NE(file_digest(tmp / "a"), file_digest(tmp / "b"));
  EXPECT_EQ(file_digest(tmp / "a"), file_digest(tmp / "c"));
  // FNV-1a 64 of "abc", from the published test vectors.
  EXPECT_EQ(file_digest(tmp / "a"), "fnv1a64:e71fa2190541574b:3");
  EXPECT_THROW(file_digest(tmp / "missing"), core::InputError);
}

TEST(RunLock, SecondHolderRefusedWithThePid) {
  vitopt::testing::TempDir tmp;
  {
    RunLock first(tmp.path());
    EXPECT_FALSE(first.taken_over_from());
    const auto msg = error_of([&] { RunLock second(tmp.path()); });
    EXPECT_NE(msg.find("in use by another pipeline (pid " + std::to_string(::getpid())), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("--out"), std::string::npos) << msg;
  }
  RunLock again(tmp.path());  // released on destruction, and no stale pid left behind
  EXPECT_FALSE(again.taken_over_from());
}

TEST(RunLock, StaleLockOfADeadProcessIsTakenOver) {
  vitopt::testing::TempDir tmp;
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // its pid now names no process
  core::write_file_atomic(tmp / "pipeline.lock",
                          "pid " + std::to_string(child) + "\nstarted 2026-01-01 00:00:00 UTC\n");
  RunLock lock(tmp.path());
  ASSERT_TRUE(lock.taken_over_from());
  EXPECT_EQ(*lock.taken_over_from(), child);
  EXPECT_NE(core::read_file_text(tmp / "pipeline.lock").find("pid " + std::to_string(::getpid())),
            std::string::npos);
}

}  // namespace
}  // namespace vitopt::pipeline
