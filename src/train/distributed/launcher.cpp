// launch_workers: fork/exec per local rank, a polling wait loop that forwards signals, and the
// fail-as-a-whole policy (see launcher.h).
#include "train/distributed/launcher.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/threads.h"

extern char** environ;  // POSIX: the process environment (unistd.h declares it only sometimes)

namespace vitopt::train::dist {
namespace {

volatile std::sig_atomic_t g_signal = 0;  // last signal received by the launcher

extern "C" void on_signal(int sig) { g_signal = sig; }

struct Worker {
  pid_t pid = -1;
  int local_rank = 0;
  bool running = false;
  int exit_code = 0;
};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
  return fmt::format("exited with code {}", exit_code_of(status));
}

pid_t start_worker(const LaunchSpec& spec, int local_rank, int threads) {
  const WorldSpec& n = spec.node;
  const int rank = n.node_rank * n.local_world_size + local_rank;
  std::vector<std::pair<std::string, std::string>> env = {
      {"MASTER_ADDR", n.master_addr},
      {"MASTER_PORT", std::to_string(n.master_port)},
      {"WORLD_SIZE", std::to_string(n.world_size)},
      {"RANK", std::to_string(rank)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(n.local_world_size)},
      {"GROUP_RANK", std::to_string(n.node_rank)},
      {"VITOPT_DIST_TIMEOUT", fmt::format("{}", n.timeout_s)},
      {"VITOPT_THREADS", std::to_string(threads)},
      {"OMP_NUM_THREADS", std::to_string(threads)},
      {"OPENBLAS_NUM_THREADS", std::to_string(threads)}};
  // Everything the child needs is built here: after fork() in a process that may run threads
  // (LibTorch's pools), the child must not allocate or take locks before exec.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    const std::string name = kv.substr(0, kv.find('='));
    const bool replaced =
        std::any_of(env.begin(), env.end(), [&](const auto& item) { return item.first == name; });
    if (!replaced) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& kv : env_strings) envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string exec_error = "vitopt launch: cannot run " + spec.argv.front() + "\n";
  const pid_t pid = ::fork();
  if (pid < 0) core::throw_internal("launch: fork failed: {}", std::strerror(errno));
  if (pid == 0) {  // child: async-signal-safe calls only until exec
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::execve(args[0], args.data(), envp.data());
    [[maybe_unused]] const auto written = ::write(2, exec_error.data(), exec_error.size());
    ::_exit(127);
  }
  return pid;
}

void signal_all(std::vector<Worker>& workers, int sig) {
  for (auto& w : workers)
    if (w.running) ::kill(w.pid, sig);
}

}  // namespace

std::string self_executable() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) core::throw_internal("launch: cannot resolve /proc/self/exe: {}", ec.message());
  return p.string();
}

int launch_workers(const LaunchSpec& spec) {
  const WorldSpec& n = spec.node;
  if (spec.argv.empty()) core::throw_input("launch: no command to run (give it after --)");
  if (n.local_world_size < 1)
    core::throw_input("--nproc-per-node: expected >= 1, got {}", n.local_world_size);
  if (spec.threads_per_worker < 0)
    core::throw_input("--threads: expected >= 0 (0: split the cores), got {}",
                      spec.threads_per_worker);
  const int threads = spec.threads_per_worker > 0
                          ? spec.threads_per_worker
                          : std::max(1, core::available_cores() / n.local_world_size);
  if (!spec.quiet)
    fmt::print(stderr,
               "vitopt launch: node {} of {}: {} workers (ranks {}..{} of {}), {} threads each, "
               "rendezvous {}:{}\n",
               n.node_rank, n.nnodes, n.local_world_size, n.node_rank * n.local_world_size,
               (n.node_rank + 1) * n.local_world_size - 1, n.world_size, threads, n.master_addr,
               n.master_port);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {};
  struct sigaction old_term {};
  struct sigaction old_hup {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGHUP, &sa, &old_hup);
  g_signal = 0;

  std::vector<Worker> workers(static_cast<size_t>(n.local_world_size));
  for (int r = 0; r < n.local_world_size; ++r) {
    workers[static_cast<size_t>(r)].local_rank = r;
    workers[static_cast<size_t>(r)].pid = start_worker(spec, r, threads);
    workers[static_cast<size_t>(r)].running = true;
  }
  using Clock = std::chrono::steady_clock;
  int result = 0;
  bool stopping = false;        // we asked the workers to stop (failure or signal)
  Clock::time_point kill_at{};  // when SIGKILL follows SIGTERM
  int running = n.local_world_size;
  while (running > 0) {
    if (const int sig = g_signal; sig != 0) {
      g_signal = 0;
      if (!spec.quiet)
        fmt::print(stderr, "vitopt launch: got signal {}, passing it to the workers\n", sig);
      signal_all(workers, sig);
      if (!stopping) {
        stopping = true;
        kill_at =
            Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(spec.grace_s * 1000));
        if (result == 0) result = 128 + sig;
      }
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (auto& w : workers) {
        if (w.pid != pid || !w.running) continue;
        w.running = false;
        --running;
        w.exit_code = exit_code_of(status);
        if (w.exit_code != 0 && !stopping) {
          fmt::print(stderr, "vitopt launch: worker {} (rank {}) {}; stopping the other workers\n",
                     w.local_rank, n.node_rank * n.local_world_size + w.local_rank,
                     describe(status));
          result = w.exit_code;
          stopping = true;
          signal_all(workers, SIGTERM);
          kill_at =
              Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(spec.grace_s * 1000));
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR && errno != ECHILD) break;
    if (stopping && Clock::now() >= kill_at) signal_all(workers, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  return result;
}

}  // namespace vitopt::train::dist
