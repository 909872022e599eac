// Crashes survived: `vitopt train` is killed with SIGKILL at random moments and in the middle of
// writing its checkpoint (VITOPT_TEST_KILL_IN_WRITE, see core/file_util.cpp), then continued with
// --resume until it finishes. The final and best models must be bit-identical to an uninterrupted
// run with the same seed, the metrics log equal up to timings, and no temp file left behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "core/file_util.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  bool killed = false;  // ended by SIGKILL (ours or the write hook's)
  int code = -1;        // exit code when it exited
};

// Runs vitopt with `args` (space-separated, no quoting), output to `log`. kill_in_write > 0 sets
// the mid-write hook; kill_after_ms > 0 sends SIGKILL after that long (if still running).
Outcome run_vitopt(const std::string& args, const fs::path& log, int kill_in_write,
                   int kill_after_ms) {
  std::vector<std::string> argv_s = {vitopt::testing::vitopt_binary()};
  std::istringstream in(args);
  for (std::string a; in >> a;) argv_s.push_back(a);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (kill_in_write > 0) ::setenv("VITOPT_TEST_KILL_IN_WRITE", std::to_string(kill_in_write).c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (kill_after_ms > 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_after_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid, &status, WNOHANG) == pid) goto done;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid, SIGKILL);
  }
  ::waitpid(pid, &status, 0);
done:
  Outcome o;
  o.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

// metrics.jsonl without the fields that measure time.
std::vector<nlohmann::json> metrics_without_timing(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::istringstream in(vitopt::core::read_file_text(file));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("train_seconds");
    j.erase("train_images_per_s");
    out.push_back(j);
  }
  return out;
}

TEST(CrashResume, KilledTrainingResumesToBitIdenticalWeights) {
  vitopt::testing::TempDir tmp;
  const std::string common =
      "train --preset vit-tiny-test --data synthetic --limit 192 --val-limit 64 --batch-size 32 "
      "--epochs 3 --checkpoint-every 2 --threads 1 --workers 1 --seed 7 --quiet --out ";
  const auto ref = tmp / "reference", crash = tmp / "crashed";
  const auto log = tmp / "log.txt";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_vitopt(common + ref.string(), log, 0, 0).code, 0) << vitopt::core::read_file_text(log);
  const auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - t0).count();

  // Kill points: inside the 2nd..7th atomic write of successive runs (the first checkpoints,
  // a best model, the metrics log), then at random times, then run to the end.
  std::mt19937 rng(22);
  int kills = 0, runs = 0;
  auto attempt = [&](int kill_in_write, int kill_after_ms) {
    const bool have_ckpt = fs::exists(crash / "checkpoint.safetensors");
    const auto o = run_vitopt(common + crash.string() + (have_ckpt ? " --resume" : ""), log,
                              kill_in_write, kill_after_ms);
    ++runs;
    kills += o.killed;
    if (!o.killed) {
      EXPECT_EQ(o.code, 0) << "run " << runs << ":\n" << vitopt::core::read_file_text(log);
    }
    return o;
  };
  for (int n = 2; n <= 7; ++n) attempt(n, 0);
  for (int i = 0; i < 4; ++i)
    attempt(0, std::uniform_int_distribution<int>(
                   100, static_cast<int>(std::max<int64_t>(200, full_ms)))(rng));
  for (int i = 0; i < 10 && attempt(0, 0).killed; ++i) {
  }
  EXPECT_GE(kills, 6) << "the mid-write kill hook did not fire";

  for (const char* f : {"model.safetensors", "best.safetensors"}) {
    ASSERT_TRUE(fs::exists(crash / f)) << f;
    EXPECT_TRUE(vitopt::core::read_file_bytes(ref / f) == vitopt::core::read_file_bytes(crash / f))
        << f << " differs from the uninterrupted run after " << kills << " kills";
  }
  EXPECT_EQ(metrics_without_timing(ref / "metrics.jsonl"),
            metrics_without_timing(crash / "metrics.jsonl"));
  for (const auto& e : fs::directory_iterator(crash))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos)
        << "temp file left: " << e.path();
}

}  // namespace
