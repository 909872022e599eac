// Thread set-up shared by every entry point. Debian's LibTorch runs element-wise ops on libgomp's
// OpenMP pool and matmuls on OpenBLAS's own pool; libgomp's idle workers spin by default and steal
// the cores from OpenBLAS (DeiT-Tiny batch 1: 146 ms spinning vs 47 ms passive). libgomp reads
// OMP_WAIT_POLICY only when it loads, so the fix has to happen before main: we re-exec once.
#pragma once

#include <string>

namespace vitopt::core {

// Call first thing in main(). Fixes what can only be fixed before the libraries load, then
// re-executes /proc/self/exe with the same argv (once; VITOPT_NO_REEXEC stops it):
//  - OMP_WAIT_POLICY=PASSIVE if unset (spinning OpenMP workers starve OpenBLAS's threads);
//  - OPENBLAS_CORETYPE if unset and OpenBLAS picked kernels weaker than the CPU supports
//    (Debian's 0.3.21 does not know Sapphire Rapids and falls back to SSE3 "Prescott": 5x slower).
// Returns normally when the environment is already right or the re-exec is impossible.
void ensure_thread_environment(int argc, char** argv);

// OpenBLAS's kernel family in this process ("SkylakeX", "Haswell", ...), or "" if not OpenBLAS.
std::string openblas_core();
// The core type OpenBLAS should use on this CPU when its own choice is a weaker fallback, else "".
std::string better_openblas_core();

// Number of cores this process may run on (sched_getaffinity), at least 1.
int available_cores();

// Sets OpenBLAS's pool size (through dlsym, so nothing breaks when another BLAS is loaded) and
// OpenMP's. LibTorch's intra-op count is set by the torch layer on top of this.
void set_native_threads(int n);

// Resolved path of the library providing sgemm_ in this process (Debian's libblas.so.3 is an
// alternatives symlink; this follows it, e.g. ".../openblas-pthread/libblas.so.3"), or "".
std::string blas_library_name();

}  // namespace vitopt::core
