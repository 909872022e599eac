// Thread set-up shared by every entry point. Debian's LibTorch runs element-wise ops on libgomp's
// OpenMP pool and matmuls on OpenBLAS's own pool; libgomp's idle workers spin by default and steal
// the cores from OpenBLAS (DeiT-Tiny batch 1: 146 ms spinning vs 47 ms passive). libgomp reads
// OMP_WAIT_POLICY only when it loads, so the fix has to happen before main: we re-exec once.
#pragma once

namespace vitopt::core {

// Call first thing in main(). If OMP_WAIT_POLICY is unset (and VITOPT_NO_REEXEC is not), sets
// OMP_WAIT_POLICY=PASSIVE and re-executes /proc/self/exe with the same argv. Returns normally when
// the environment is already right or the re-exec is impossible.
void ensure_thread_environment(int argc, char** argv);

// Number of cores this process may run on (sched_getaffinity), at least 1.
int available_cores();

// Sets OpenBLAS's pool size (through dlsym, so nothing breaks when another BLAS is loaded) and
// OpenMP's. LibTorch's intra-op count is set by the torch layer on top of this.
void set_native_threads(int n);

// Name of the BLAS library providing sgemm_ in this process (e.g. "libopenblas.so.0"), or "".
const char* blas_library_name();

}  // namespace vitopt::core
