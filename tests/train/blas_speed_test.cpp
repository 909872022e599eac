// Guards against Debian's reference BLAS: LibTorch takes whatever libblas.so.3 points to, and the
// reference one is ~30x slower (~3 GFLOP/s vs ~77+ for OpenBLAS on one core here). The bar below
// sits far from both, so it only fails when OpenBLAS is not active.
#include <gtest/gtest.h>

#include <cstdlib>
#include <torch/torch.h>

#include <string>

#include "core/threads.h"
#include "core/timer.h"

namespace {

TEST(Blas, OpenBlasIsActive) {
  const std::string lib = vitopt::core::blas_library_name();
  at::set_num_threads(1);
  vitopt::core::set_native_threads(1);
  auto a = torch::randn({512, 512});
  auto b = torch::randn({512, 512});
  auto c = torch::mm(a, b);  // warm-up
  double best_gflops = 0;
  for (int rep = 0; rep < 5; ++rep) {
    vitopt::core::Stopwatch clock;
    c = torch::mm(a, b);
    best_gflops = std::max(best_gflops, 2.0 * 512 * 512 * 512 / clock.seconds() / 1e9);
  }
  vitopt::core::set_native_threads(0);
  at::set_num_threads(vitopt::core::available_cores());
  EXPECT_GT(best_gflops, 15.0)
      << "LibTorch matmul runs at " << best_gflops << " GFLOP/s using BLAS '" << lib
      << "': OpenBLAS is not active (reference BLAS is ~3 GFLOP/s). Run scripts/install-deps.sh, "
         "which installs libopenblas0-pthread and selects it for libblas.so.3.";
  EXPECT_NE(lib.find("openblas"), std::string::npos) << "sgemm_ comes from '" << lib << "'";
  // vitopt's start-up (ensure_thread_environment in the test main too) must have replaced a
  // fallback kernel choice such as SSE3 "Prescott" on an AVX-512 CPU.
  // A core type the user set (some hosts pin OPENBLAS_CORETYPE because older OpenBLAS builds
  // misbehave on their CPU) is respected, never overridden: then OpenBLAS must run exactly that.
  if (const char* pinned = std::getenv("OPENBLAS_CORETYPE");
      pinned != nullptr && vitopt::core::better_openblas_core() != pinned) {
    EXPECT_EQ(vitopt::core::openblas_core(), std::string(pinned));
    return;
  }
  EXPECT_EQ(vitopt::core::better_openblas_core(), "")
      << "OpenBLAS runs '" << vitopt::core::openblas_core() << "' kernels on a CPU that supports "
      << vitopt::core::better_openblas_core();
}

}  // namespace
