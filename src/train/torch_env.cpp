#include "train/torch_env.h"

#include <cstdlib>

#include "core/error.h"
#include "core/threads.h"

namespace vitopt::train {

int configure_threads(int threads) {
  if (threads < 0) core::throw_input("--threads: expected 0 (all cores) or a positive count, got {}", threads);
  int n = threads == 0 ? core::available_cores() : threads;
  // `vitopt launch` splits the cores between its workers and says so in VITOPT_THREADS.
  if (threads == 0) {
    if (const char* env = std::getenv("VITOPT_THREADS"); env != nullptr && std::atoi(env) > 0)
      n = std::atoi(env);
  }
  core::set_native_threads(n);
  at::set_num_threads(n);
  return n;
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      core::throw_input(
          "--device {}: CUDA is not available in this LibTorch build (Debian's libtorch is "
          "CPU-only); use --device cpu or build against a CUDA LibTorch",
          name);
    if (name == "cuda") return torch::Device(torch::kCUDA, 0);
    if (name.size() > 5 && name[4] == ':') {
      try {
        return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(name.substr(5))));
      } catch (const std::exception&) {
      }
    }
  }
  core::throw_input("--device: expected cpu, cuda or cuda:N, got '{}'", name);
}

}  // namespace vitopt::train
