// Starts this machine's workers of a data-parallel job, like torchrun: one process per local
// rank with MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK
// and the thread count (VITOPT_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) in their
// environment. Forwards SIGINT/SIGTERM/SIGHUP to them and fails as a whole: when one worker
// fails, the others get SIGTERM (SIGKILL after a grace period) and launch returns the failed
// worker's exit code. No LibTorch here.
#pragma once

#include <string>
#include <vector>

#include "train/distributed/world.h"

namespace vitopt::train::dist {

struct LaunchSpec {
  WorldSpec node;                 // nnodes, node_rank, local_world_size, master, timeout
  int threads_per_worker = 0;     // 0: this machine's cores / local workers (at least 1)
  std::vector<std::string> argv;  // the worker's program and arguments (argv[0] = path)
  double grace_s = 10;            // after SIGTERM, how long workers get before SIGKILL
  bool quiet = false;
};

// Runs the workers to completion. Returns 0 if all succeeded, else the first failure's exit code
// (128 + signal for a worker killed by a signal). Throws InputError for an invalid spec.
int launch_workers(const LaunchSpec& spec);

// Absolute path of the running executable (/proc/self/exe).
std::string self_executable();

}  // namespace vitopt::train::dist
