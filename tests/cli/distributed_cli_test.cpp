// Data-parallel runs of the `vitopt` binary on loopback, as a user starts them: a torchrun-style
// environment per worker, `vitopt launch`, a worker killed mid-epoch (the other must fail within
// --dist-timeout, never hang), one-process resume from the two-process checkpoint, and the
// fine-tuning of prune (with a sweep), factorize, share, circuits and search across two processes
// against one. A build without c10d/Gloo skips
// those and checks that `vitopt launch`, --nproc-per-node and a torchrun environment are refused
// with a message.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "io/safetensors.h"
#include "test_util.h"

namespace {

// Float summation order alone (1 vs 2 GEMM threads) moves these short AdamW runs ~3e-4 relative
// (tests/train/distributed_test.cpp measures it); a data-parallel fault moves them by O(1).
constexpr double kSameTraining = 3e-3;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Defined by tests/CMakeLists.txt from the train layer's VITOPT_DISTRIBUTED property.
#ifndef VITOPT_HAS_DISTRIBUTED
#define VITOPT_HAS_DISTRIBUTED 1
#endif
constexpr bool kHasDistributed = VITOPT_HAS_DISTRIBUTED != 0;

std::string vitopt_bin() { return (vitopt::testing::build_dir() / "bin" / "vitopt").string(); }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Starts `args` (args[0] = program) with extra environment variables; output to `log`.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Exit code of `pid` (128 + signal if killed); -1 if still running after `limit_s` (then killed).
int wait_for(pid_t pid, double limit_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(limit_s);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

int run(const std::vector<std::string>& args, const fs::path& log, double limit_s = 120) {
  return wait_for(spawn(args, {}, log), limit_s);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string word;
  for (char c : s) {
    if (c == ' ') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

// `vitopt launch` of `args` (a vitopt command line without the program) in two processes of one
// thread each, on a free loopback port.
std::vector<std::string> in_two_processes(const std::string& args) {
  std::vector<std::string> launched = {vitopt_bin(),
                                       "launch",
                                       "--nproc-per-node",
                                       "2",
                                       "--threads",
                                       "1",
                                       "--dist-timeout",
                                       "30",
                                       "--master",
                                       "127.0.0.1:" + std::to_string(free_port()),
                                       "--"};
  const auto words = split(args);
  launched.insert(launched.end(), words.begin(), words.end());
  return launched;
}

std::vector<std::string> in_one_process(const std::string& args) {
  auto words = split(args);
  words.insert(words.begin(), vitopt_bin());
  return words;
}

// The tiny test model (`vitopt init --preset vit-tiny-test`, plus `extra` flags) in `dir`.
std::string init_tiny_model(const fs::path& dir, const std::string& extra = "") {
  const auto model = (dir / "dense.safetensors").string();
  EXPECT_EQ(
      run(in_one_process("init --preset vit-tiny-test --seed 4 --quiet --out " + model + extra),
          dir / "init.log"),
      0)
      << read_text(dir / "init.log");
  return model;
}

// `args` followed by `one` in one process and by `two` in two processes: both must succeed.
void run_in_one_and_two(const std::string& args, const fs::path& one, const fs::path& two,
                        const fs::path& logs) {
  const auto log1 = logs / (one.filename().string() + ".log");
  const auto log2 = logs / (two.filename().string() + ".log");
  ASSERT_EQ(run(in_one_process(args + one.string()), log1), 0) << read_text(log1);
  ASSERT_EQ(run(in_two_processes(args + two.string()), log2), 0) << read_text(log2);
}

// Largest per-tensor ||a - b|| / ||b|| over the float tensors of two model files.
double max_relative_diff(const fs::path& a, const fs::path& b) {
  const auto fa = vitopt::io::SafeTensorsFile::load(a), fb = vitopt::io::SafeTensorsFile::load(b);
  EXPECT_EQ(fa.names(), fb.names());
  double worst = 0;
  for (const auto& name : fb.names()) {
    const auto x = fa.read_f32(name), y = fb.read_f32(name);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      diff += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      norm += double(y[i]) * y[i];
    }
    worst = std::max(worst, std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12));
  }
  return worst;
}

TEST(DistributedCli, LaunchSetsTheEnvironmentAndFailsAsAWhole) {
  if (!kHasDistributed) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  vitopt::testing::TempDir tmp;
  const std::string port = std::to_string(free_port());
  // Rank 1 records its environment and fails; rank 0 would sleep for a minute.
  const std::string script =
      "echo $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR "
      "$MASTER_PORT $VITOPT_THREADS > " +
      (tmp / "env.$RANK").string() + "; test $RANK = 1 && exit 3; sleep 60";
  const auto start = Clock::now();
  const int code = run({vitopt_bin(), "launch", "--nproc-per-node", "2", "--threads", "1",
                        "--master", "127.0.0.1:" + port, "--", "/bin/sh", "-c", script},
                       tmp / "launch.log", 50);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(code, 3) << read_text(tmp / "launch.log");
  EXPECT_LT(seconds, 30) << "the sleeping worker must be stopped, not waited for";
  EXPECT_EQ(read_text(tmp / "env.1"), "1 2 1 2 127.0.0.1 " + port + " 1\n");
  EXPECT_NE(read_text(tmp / "launch.log").find("rank 1) exited with code 3"), std::string::npos)
      << read_text(tmp / "launch.log");
}

TEST(DistributedCli, KilledWorkerStopsTheOtherAndOneProcessResumes) {
  if (!kHasDistributed) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  vitopt::testing::TempDir tmp;
  const std::string common =
      "train --preset vit-tiny-test --data synthetic --limit 96 --no-val --batch-size 16 "
      "--epochs 30 --warmup-epochs 1 --threads 1 --workers 1 --seed 3 --quiet";
  auto args = [&](const std::string& extra) {
    return split(vitopt_bin() + " " + common + " " + extra);
  };
  ASSERT_EQ(run(args("--out " + (tmp / "straight").string()), tmp / "straight.log"), 0)
      << read_text(tmp / "straight.log");

  // Two workers started the torchrun way (environment only), checkpointing every step.
  const std::string port = std::to_string(free_port());
  const auto out = (tmp / "dist").string();
  auto env = [&](int rank) {
    return std::vector<std::string>{"RANK=" + std::to_string(rank), "WORLD_SIZE=2",
                                    "LOCAL_RANK=" + std::to_string(rank), "MASTER_ADDR=127.0.0.1",
                                    "MASTER_PORT=" + port};
  };
  const auto worker_args = args("--checkpoint-every 1 --dist-timeout 20 --out " + out);
  const pid_t r0 = spawn(worker_args, env(0), tmp / "r0.log");
  const pid_t r1 = spawn(worker_args, env(1), tmp / "r1.log");
  // Kill rank 1 once rank 0 has checkpointed a few steps (mid-epoch: 6 steps an epoch).
  const auto ckpt = fs::path(out) / "checkpoint.safetensors";
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!fs::exists(ckpt) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(fs::exists(ckpt)) << read_text(tmp / "r0.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ::kill(r1, SIGKILL);
  const auto killed_at = Clock::now();
  EXPECT_EQ(wait_for(r1, 10), 128 + SIGKILL);
  const int code0 = wait_for(r0, 40);
  const double seconds = std::chrono::duration<double>(Clock::now() - killed_at).count();
  EXPECT_NE(code0, 0) << read_text(tmp / "r0.log");
  EXPECT_NE(code0, -1) << "rank 0 hung after its peer died";
  EXPECT_LT(seconds, 20 + 5) << "rank 0 must stop within --dist-timeout";
  EXPECT_NE(read_text(tmp / "r0.log").find("distributed: rank 0 of 2"), std::string::npos)
      << read_text(tmp / "r0.log");
  EXPECT_FALSE(fs::exists(fs::path(out) / "model.safetensors")) << "the run must not have finished";

  // One process resumes the two-process checkpoint and ends where the straight run ended.
  ASSERT_EQ(run(args("--resume --out " + out), tmp / "resume.log"), 0)
      << read_text(tmp / "resume.log");
  EXPECT_LE(max_relative_diff(fs::path(out) / "model.safetensors",
                              tmp / "straight" / "model.safetensors"),
            kSameTraining);
}

TEST(DistributedCli, PruneFineTuningInTwoProcessesMatchesOne) {
  if (!kHasDistributed) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  vitopt::testing::TempDir tmp;
  const auto model = init_tiny_model(tmp.path());
  // With a sweep: each amount fine-tunes in both processes while rank 0 measures in between.
  ASSERT_NO_FATAL_FAILURE(
      run_in_one_and_two("prune --model " + model +
                             " --method heads --ratio 0.5 --sweep 0.25 --finetune-epochs 2 "
                             "--data synthetic --limit 64 --batch-size 16 --no-measure --threads 1 "
                             "--workers 1 --seed 2 --quiet --out ",
                         tmp / "one.safetensors", tmp / "two.safetensors", tmp.path()));
  EXPECT_LE(max_relative_diff(tmp / "two.safetensors", tmp / "one.safetensors"), kSameTraining);
  EXPECT_LT(fs::file_size(tmp / "two.safetensors"), fs::file_size(model))
      << "half the heads must be gone";
  const auto swept = fs::path("sweep") / "a0.25.safetensors";
  EXPECT_LE(max_relative_diff(tmp / "two_prune" / swept, tmp / "one_prune" / swept), kSameTraining);
}

// factorize and share fine-tune like prune: two processes end where one does.
TEST(DistributedCli, FactorizeAndShareFineTuningInTwoProcessesMatchOne) {
  if (!kHasDistributed) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  vitopt::testing::TempDir tmp;
  const auto model = init_tiny_model(tmp.path(), " --depth 4");
  const std::string common =
      " --finetune-epochs 2 --data synthetic --limit 64 --batch-size 16 --no-measure --threads 1 "
      "--workers 1 --seed 2 --quiet --out ";
  // --keep-slower: the ranks must not depend on timings, which differ between the two runs.
  const std::vector<std::pair<std::string, std::string>> jobs = {
      {"factorize", "factorize --model " + model + " --rank-ratio 0.5 --keep-slower --distill"},
      {"share", "share --model " + model + " --groups auto --num-groups 2"}};
  for (const auto& [name, args] : jobs) {
    const auto one = tmp / (name + "-one.safetensors"), two = tmp / (name + "-two.safetensors");
    ASSERT_NO_FATAL_FAILURE(run_in_one_and_two(args + common, one, two, tmp.path()));
    EXPECT_LE(max_relative_diff(two, one), kSameTraining) << name;
    EXPECT_LT(fs::file_size(two), fs::file_size(model)) << name;
  }
}

// circuits: rank 0 discovers, both processes fine-tune the slimmed model: it ends where one
// process's does.
TEST(DistributedCli, CircuitFineTuningInTwoProcessesMatchesOne) {
  if (!kHasDistributed) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  vitopt::testing::TempDir tmp;
  const auto model = init_tiny_model(tmp.path());
  ASSERT_NO_FATAL_FAILURE(run_in_one_and_two(
      "circuits --model " + model +
          " --method eap-ig --keep-ratio 0.5 --analysis-batches 1 --analysis-batch-size 16 "
          "--finetune-epochs 2 --data synthetic --limit 64 --batch-size 16 --no-measure "
          "--threads 1 --workers 1 --seed 2 --quiet --out ",
      tmp / "one", tmp / "two", tmp.path()));
  const auto file = "eap-ig_keep_0.5.safetensors";
  EXPECT_LE(max_relative_diff(tmp / "two" / file, tmp / "one" / file), kSameTraining);
  EXPECT_LT(fs::file_size(tmp / "two" / file), fs::file_size(model)) << "half the nodes go";
  EXPECT_TRUE(fs::exists(tmp / "two" / "circuits.json"));
}

// search: both processes train the supernet and fine-tune the delivered model, rank 0 alone
// searches. A space of one genome (every gene at the model's own value: the space always holds the
// model itself) makes the returned candidate independent of held-out ties and latency noise, so
// its fine-tuned weights must end where one process's do.
TEST(DistributedCli, SearchInTwoProcessesDeliversWhatOneDoes) {
  if (!kHasDistributed) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  vitopt::testing::TempDir tmp;
  const auto model = init_tiny_model(tmp.path());
  std::ofstream(tmp / "space.yaml") << "blocks:\n  drop_attention: false\n  drop_mlp: false\n"
                                       "  heads: [2]\n  mlp_width: {step: 64, min_ratio: 1}\n"
                                       "  rank_ratio: [1.0]\n  weight_bits: [32]\n"
                                       "  input_bits: [32]\n  share: false\n  merge_r: [0]\n"
                                       "model:\n  resolution: [1.0]\n";
  ASSERT_NO_FATAL_FAILURE(run_in_one_and_two(
      "search --model " + model + " --space " + (tmp / "space.yaml").string() +
          " --population 4 --generations 2 --calib-images 16 --holdout-images 32"
          " --latency-runs 3 --no-evaluate --no-deliver-singles --supernet-epochs 1"
          " --finetune-epochs 2 --data synthetic --limit 64 --batch-size 16 --threads 1"
          " --workers 1 --seed 2 --quiet --out ",
      tmp / "one", tmp / "two", tmp.path()));
  const auto one = nlohmann::json::parse(read_text(tmp / "one" / "search.json"));
  const auto two = nlohmann::json::parse(read_text(tmp / "two" / "search.json"));
  ASSERT_TRUE(two["returned"][0].contains("model")) << two["returned"][0].dump();
  EXPECT_TRUE(two["returned"][0].contains("finetune")) << "the delivered model is fine-tuned";
  EXPECT_EQ(two["evaluated"], 1) << "a space of one genome";
  ASSERT_EQ(two["returned"][0]["key"], one["returned"][0]["key"]);
  EXPECT_LE(max_relative_diff(tmp / "two" / "best.safetensors", tmp / "one" / "best.safetensors"),
            kSameTraining);
  EXPECT_TRUE(fs::exists(tmp / "two" / "supernet.safetensors"));
}

TEST(DistributedCli, BuildWithoutGlooSaysDistributedTrainingIsUnavailable) {
  if (kHasDistributed) GTEST_SKIP() << "this build has c10d/Gloo";
  vitopt::testing::TempDir tmp;
  const auto expect_refused = [&](const std::string& name, int code) {
    const auto log = read_text(tmp / (name + ".log"));
    EXPECT_EQ(code, 2) << log;  // bad input, not a crash
    EXPECT_NE(log.find("data-parallel training is unavailable in this build"), std::string::npos)
        << log;
  };
  expect_refused("launch", run({vitopt_bin(), "launch", "--nproc-per-node", "2", "--", "/bin/true"},
                               tmp / "launch.log"));
  const auto train = split(vitopt_bin() +
                           " train --preset vit-tiny-test --data synthetic --limit 32 "
                           "--no-val --batch-size 16 --epochs 1 --threads 1 --workers 1 --quiet");
  auto flags = train;
  for (const auto& a : {"--nproc-per-node", "2", "--out"}) flags.emplace_back(a);
  flags.push_back((tmp / "flags").string());
  expect_refused("flags", run(flags, tmp / "flags.log"));
  auto env_run = train;
  env_run.push_back("--out");
  env_run.push_back((tmp / "env").string());
  expect_refused("env", wait_for(spawn(env_run,
                                       {"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                                        "MASTER_PORT=" + std::to_string(free_port())},
                                       tmp / "env.log"),
                                 60));
  EXPECT_FALSE(fs::exists(tmp / "flags" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp / "env" / "model.safetensors"));
}

}  // namespace
