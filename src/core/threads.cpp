#include "core/threads.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>
#include <filesystem>
#include <vector>

namespace vitopt::core {

std::string openblas_core() {
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (fn == nullptr) return "";
  const char* name = fn();
  return name ? name : "";
}

std::string better_openblas_core() {
  std::string core = openblas_core();
  if (core.empty()) return "";
  std::transform(core.begin(), core.end(), core.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // Kernel families older than AVX2: what OpenBLAS falls back to for CPUs it does not know.
  static const std::set<std::string> kPreAvx2 = {"prescott", "core2",  "penryn",    "dunnington",
                                                 "nehalem",  "atom",   "sandybridge", "bulldozer",
                                                 "piledriver", "steamroller", "excavator",
                                                 "barcelona", "opteron", "katmai", "northwood"};
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 && (kPreAvx2.count(core) != 0 || core == "haswell" || core == "zen")) return "SkylakeX";
  if (avx2 && kPreAvx2.count(core) != 0) return "Haswell";
  return "";
}

void ensure_thread_environment(int argc, char** argv) {
  (void)argc;
  if (std::getenv("VITOPT_NO_REEXEC") != nullptr) return;
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string better = better_openblas_core();
    if (!better.empty()) {
      ::setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
      changed = true;
    }
  }
  if (!changed) return;
  ::setenv("VITOPT_NO_REEXEC", "1", 1);  // never loop, even if exec'ing changes nothing
  ::execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the slower defaults rather than die.
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_native_threads(int n) {
  if (n < 1) n = available_cores();
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(n);
  if (auto fn = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) fn(n);
}

std::string blas_library_name() {
  void* sym = ::dlsym(RTLD_DEFAULT, "sgemm_");
  if (sym == nullptr) return "";
  Dl_info info;
  if (::dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "";
  std::error_code ec;
  const auto resolved = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : resolved.string();
}

}  // namespace vitopt::core
