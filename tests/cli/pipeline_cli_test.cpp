// `vitopt pipeline` as processes: a second pipeline on a busy run folder stops at once (lock), a
// stale lock is taken over, and a pipeline killed with SIGKILL inside and between stages, then
// resumed, ends with the same model files, byte for byte, as an uninterrupted run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "core/file_util.h"
#include "test_util.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

// A tiny recipe with every stage kind, a chain, and mid-epoch checkpoints to be killed in.
const char* kRecipe = R"(
name: tiny
data: synthetic
threads: 1
model: {preset: vit-tiny-test}
train: {epochs: 2, batch_size: 16, limit: 96, val_limit: 32, workers: 1, checkpoint_every_steps: 2}
eval: {limit: 32, engine: runtime}
quantize:
  - {name: hn-w8a8, from: prune/hn, wbits: 8, abits: 8, granularity: tensor, calib_images: 16}
prune:
  - {name: hn, methods: [heads, neurons], amount: 0.5, calib_images: 16, finetune_epochs: 1, finetune_limit: 128}
distill:
  - {name: st, student: vit-tiny-test, modes: logit, epochs: 2, limit: 64, val_limit: 32, batch_size: 16}
)";

const std::vector<std::string> kModels = {
    "train/best.safetensors", "train/model.safetensors", "prune/hn.safetensors",
    "quantize/hn-w8a8.safetensors", "distill/st/model.safetensors"};

struct Proc {
  pid_t pid = -1;
  fs::path log;
};

// Starts `vitopt pipeline <args>` with stdout and stderr in `log`.
Proc start(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv = {(vitopt::testing::build_dir() / "bin" / "vitopt").string(), "pipeline"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargs;
  for (auto& a : argv) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  Proc p{-1, log};
  const int rc = posix_spawn(&p.pid, cargs[0], &fa, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0);
  return p;
}

int wait_exit(const Proc& p) {
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls until `ready` or the process exits; SIGKILLs it if still running. True if it was killed.
bool kill_when(const Proc& p, const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(p.pid, &status, WNOHANG) == p.pid) return false;  // finished first
    if (ready()) {
      ::kill(p.pid, SIGKILL);
      ::waitpid(p.pid, &status, 0);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(p.pid, SIGKILL);
  ::waitpid(p.pid, nullptr, 0);
  return true;
}

std::string text(const fs::path& p) { return fs::exists(p) ? vitopt::core::read_file_text(p) : ""; }

bool has(const fs::path& p, const std::string& what) { return text(p).find(what) != std::string::npos; }

TEST(PipelineProcess, KilledInsideAndBetweenStagesThenResumedEqualsUninterrupted) {
  vitopt::testing::TempDir tmp;
  const auto recipe = tmp / "tiny.yaml";
  vitopt::core::write_file_atomic(recipe, std::string(kRecipe));
  // Both runs use the same folder (quantized files record their source model's path).
  const auto ref = tmp / "ref", run = tmp / "run";
  Proc p = start({recipe.string(), "--out", run.string(), "--quiet"}, tmp / "ref.log");
  ASSERT_EQ(wait_exit(p), 0) << text(p.log);
  fs::rename(run, ref);

  int kills = 0;
  // Inside training: right after its first mid-epoch checkpoint.
  p = start({recipe.string(), "--out", run.string(), "--quiet"}, tmp / "k1.log");
  kills += kill_when(p, [&] { return fs::exists(run / "train" / "checkpoint.safetensors"); });
  // Between stages: as soon as the prune stage is recorded done.
  p = start({recipe.string(), "--out", run.string(), "--quiet"}, tmp / "k2.log");
  kills += kill_when(p, [&] { return has(run / "stages" / "prune-hn.json", "\"done\""); });
  // Inside distillation: once its first checkpoint exists.
  p = start({recipe.string(), "--out", run.string(), "--quiet"}, tmp / "k3.log");
  kills += kill_when(p, [&] { return fs::exists(run / "distill" / "st" / "checkpoint.safetensors"); });
  EXPECT_GE(kills, 2) << "the pipeline finished before the kills could land";
  p = start({recipe.string(), "--out", run.string()}, tmp / "resume.log");
  ASSERT_EQ(wait_exit(p), 0) << text(p.log);
  for (const auto& m : kModels) {
    ASSERT_TRUE(fs::exists(ref / m)) << m;
    ASSERT_TRUE(fs::exists(run / m)) << m;
    EXPECT_TRUE(vitopt::core::read_file_bytes(ref / m) == vitopt::core::read_file_bytes(run / m))
        << m << " differs from the uninterrupted run";
  }
  // The resumed run took over the lock the killed one left behind.
  EXPECT_TRUE(has(p.log, "no longer running")) << text(p.log);
}

TEST(PipelineProcess, SecondPipelineOnABusyRunFolderStopsAtOnce) {
  vitopt::testing::TempDir tmp;
  const auto recipe = tmp / "tiny.yaml";
  vitopt::core::write_file_atomic(recipe, std::string(kRecipe));
  const auto run = tmp / "run";
  // A long first pipeline (many epochs); killed once the second one has been refused.
  Proc first = start({recipe.string(), "--out", run.string(), "--quiet", "--set", "train.epochs=500"},
                     tmp / "first.log");
  const std::string holder = "pid " + std::to_string(first.pid);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!(has(run / "pipeline.lock", holder) && fs::exists(run / "recipe.yaml")) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(has(run / "pipeline.lock", holder)) << text(first.log);
  const auto recipe_before = text(run / "recipe.yaml");

  const auto t0 = std::chrono::steady_clock::now();
  Proc second = start({recipe.string(), "--out", run.string(), "--set", "name=other"}, tmp / "second.log");
  const int code = wait_exit(second);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(code, 2) << text(second.log);
  EXPECT_TRUE(has(second.log, "is in use by another pipeline (" + holder)) << text(second.log);
  EXPECT_LT(seconds, 20.0);  // at once: no training, no data loading
  EXPECT_EQ(text(run / "recipe.yaml"), recipe_before);  // nothing overwritten
  EXPECT_FALSE(has(run / "recipe.yaml", "name=other"));

  ::kill(first.pid, SIGKILL);
  wait_exit(first);
  // The lock file still names the dead pid; the next pipeline takes it over and says so.
  Proc third = start({recipe.string(), "--out", run.string(), "--mode", "train", "--set",
                      "train.epochs=1"}, tmp / "third.log");
  EXPECT_EQ(wait_exit(third), 0) << text(third.log);
  EXPECT_TRUE(has(third.log, "left by " + holder + " (no longer running)")) << text(third.log);
}

}  // namespace
