// GoogleTest main for every vitopt test executable: same thread environment as the CLI.
#include <gtest/gtest.h>

#include "core/threads.h"

int main(int argc, char** argv) {
  vitopt::core::ensure_thread_environment(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
