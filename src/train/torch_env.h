// LibTorch-side environment: thread pools (OpenMP via at::set_num_threads, OpenBLAS via core) and
// device selection. One call at the start of every command that touches LibTorch.
#pragma once

#include <torch/torch.h>

#include <string>

namespace vitopt::train {

// Sets LibTorch's intra-op pool and OpenBLAS's pool to `threads` (0: $VITOPT_THREADS if set, else
// all cores) and disables inter-op parallelism (we never run independent ops concurrently). Returns
// the count.
int configure_threads(int threads);

// "cpu", "cuda", "cuda:1". Throws InputError if CUDA is asked for and not available in this build.
torch::Device parse_device(const std::string& name);

}  // namespace vitopt::train
