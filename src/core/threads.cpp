#include "core/threads.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace vitopt::core {

void ensure_thread_environment(int argc, char** argv) {
  (void)argc;
  if (std::getenv("VITOPT_NO_REEXEC") != nullptr) return;
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::setenv("VITOPT_NO_REEXEC", "1", 1);  // never loop, even if exec'ing changes nothing
  ::execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the spinning default rather than die.
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

const char* blas_library_name() {
  void* sym = ::dlsym(RTLD_DEFAULT, "sgemm_");
  if (sym == nullptr) return "";
  Dl_info info;
  if (::dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

}  // namespace vitopt::core
