// Attention alone, one training step (forward + backward), plain path (q*scale, matmul, softmax,
// matmul: the (B,H,N,N) probabilities kept for backward, as src/model/vit.cpp does) against
// model::fused_attention, at DeiT-Ti/S-like shapes B=64, N=197, D=64, H=3 and H=6.
// Time: one warm-up step per path, then 5 rounds alternating A/B (each round the mean of a few
// steps); prints the median and range. Memory: each path runs once in a forked child (fresh
// process, glibc told to mmap every large block so frees return to the OS); the child reports
// resident memory held after forward (what the graph keeps for backward, plus the output) and
// the peak during forward + backward, both as deltas over the resident size with only the
// inputs allocated (/proc/self/status VmRSS, VmHWM after resetting it via clear_refs).
// Legend: B batch, H heads, N tokens, D head dim.
// Run: fused_attention_bench [threads [B H N D]...] (default 2 threads, the two shapes above).
// Built as build/<preset>/bin/fused_attention_bench (bench/CMakeLists.txt).
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "model/fused_attention.h"

namespace {

using torch::Tensor;

constexpr int kRounds = 5;
constexpr int kStepsPerRound = 3;

struct Shape {
  int64_t B, H, N, D;
};

// q, k, v: (B, H, N, D) leaves, so the step times attention alone (in ViT they are strided
// views of the qkv output, and unpacking them back costs the same on both paths); the upstream
// gradient of the (B, H, N, D) output.
struct Inputs {
  Tensor q, k, v, grad;
  explicit Inputs(const Shape& s)
      : q(torch::randn({s.B, s.H, s.N, s.D}).requires_grad_()),
        k(torch::randn({s.B, s.H, s.N, s.D}).requires_grad_()),
        v(torch::randn({s.B, s.H, s.N, s.D}).requires_grad_()),
        grad(torch::randn({s.B, s.H, s.N, s.D})) {}
};

Tensor plain_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const auto attn = torch::matmul(q * scale, k.transpose(-2, -1)).softmax(-1);  // (B, H, N, N)
  return torch::matmul(attn, v);
}

Tensor forward(const Inputs& in, bool fused) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.size(-1)));
  return fused ? vitopt::model::fused_attention(in.q, in.k, in.v, scale)
               : plain_attention(in.q, in.k, in.v, scale);
}

void step(Inputs& in, bool fused) {
  for (auto* t : {&in.q, &in.k, &in.v}) t->mutable_grad() = Tensor();
  forward(in, fused).backward(in.grad);
}

// kB from a "Key:   123 kB" line of /proc/self/status.
double status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  return -1;
}

struct MemResult {
  double held_mib = 0, peak_mib = 0;
};

// In a fresh child: resident memory held after forward and peak over forward + backward, as
// deltas over the resident size with only the inputs allocated.
MemResult measure_memory(const Shape& s, bool fused, int threads) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, -1};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    // Fixed thresholds: every block >= 64 KiB is its own mapping and goes back on free, so RSS
    // tracks live tensors (glibc's default raises the threshold after big frees and keeps them).
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    torch::set_num_threads(threads);
    Inputs in(s);
    const double base = status_mib("VmRSS");
    std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
    MemResult r;
    {
      const auto out = forward(in, fused);
      r.held_mib = status_mib("VmRSS") - base;
      out.backward(in.grad);
    }
    r.peak_mib = status_mib("VmHWM") - base;
    if (write(fds[1], &r, sizeof r) != sizeof r) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  MemResult r{-1, -1};
  if (pid < 0 || read(fds[0], &r, sizeof r) != sizeof r) r = {-1, -1};
  close(fds[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return r;
}

// Bytes the fused node saves for backward (exact, from the node): all, and those not sharing
// storage with the inputs (k and v are kept as views when already contiguous).
std::pair<double, double> fused_saved_mib(const Shape& s) {
  Inputs in(s);
  double all = 0, fresh = 0;
  for (const auto& t : vitopt::model::fused_attention_saved(forward(in, true))) {
    if (!t.defined()) continue;
    const auto bytes = static_cast<double>(t.nbytes());
    all += bytes;
    bool alias = false;
    for (const auto* x : {&in.q, &in.k, &in.v}) alias = alias || t.is_alias_of(*x);
    if (!alias) fresh += bytes;
  }
  return {all / (1 << 20), fresh / (1 << 20)};
}

double step_ms(Inputs& in, bool fused) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kStepsPerRound; ++i) step(in, fused);
  const std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
  return dt.count() / kStepsPerRound;
}

void print_times(const char* name, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("  %-6s fwd+bwd  median %7.1f ms  range [%7.1f, %7.1f]\n", name, ms[ms.size() / 2],
              ms.front(), ms.back());
}

}  // namespace

int main(int argc, char** argv) {
  // Threads: 2 (the target machine's cores) unless given as the first argument.
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  torch::set_num_threads(threads);
  std::vector<Shape> shapes = {{64, 3, 197, 64}, {64, 6, 197, 64}};
  if (argc > 2) {  // other shapes: B H N D, repeated
    shapes.clear();
    for (int i = 2; i + 3 < argc; i += 4)
      shapes.push_back({std::atol(argv[i]), std::atol(argv[i + 1]), std::atol(argv[i + 2]),
                        std::atol(argv[i + 3])});
  }
  // Memory first, in children forked before this process runs any parallel region (a forked
  // child of a process with a live OpenMP pool can hang in its first parallel region).
  std::vector<std::pair<MemResult, MemResult>> mem;
  for (const auto& s : shapes) mem.emplace_back(measure_memory(s, false, threads), measure_memory(s, true, threads));

  torch::manual_seed(0);
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto& s = shapes[i];
    std::printf("B=%ld H=%ld N=%ld D=%ld, %d threads, %d rounds x %d steps\n",
                static_cast<long>(s.B), static_cast<long>(s.H), static_cast<long>(s.N),
                static_cast<long>(s.D), torch::get_num_threads(), kRounds, kStepsPerRound);
    Inputs in(s);
    step(in, false);  // warm-up: thread pool, allocator, BLAS buffers
    step(in, true);
    std::vector<double> plain_ms, fused_ms;
    for (int r = 0; r < kRounds; ++r) {
      plain_ms.push_back(step_ms(in, false));
      fused_ms.push_back(step_ms(in, true));
    }
    print_times("plain", plain_ms);
    print_times("fused", fused_ms);
    const double probs_mib = static_cast<double>(s.B * s.H * s.N * s.N) * 4 / (1 << 20);
    const auto [saved_all, saved_new] = fused_saved_mib(s);
    std::printf("  saved for backward: fused %.1f MiB (%.1f MiB not aliasing the inputs); plain >= "
                "%.1f MiB (the BHNN probs alone)\n", saved_all, saved_new, probs_mib);
    std::printf("  RSS held after forward: plain %.1f MiB, fused %.1f MiB\n", mem[i].first.held_mib,
                mem[i].second.held_mib);
    std::printf("  RSS peak fwd+bwd:       plain %.1f MiB, fused %.1f MiB\n", mem[i].first.peak_mib,
                mem[i].second.peak_mib);
  }
  return 0;
}
