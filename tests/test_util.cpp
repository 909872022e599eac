#include "test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <random>

namespace vitopt::testing {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("vitopt-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path source_dir() {
  const char* s = std::getenv("VITOPT_SOURCE_DIR");
  return s ? std::filesystem::path(s) : std::filesystem::path(VITOPT_DEFAULT_SOURCE_DIR);
}

std::filesystem::path build_dir() {
  const char* s = std::getenv("VITOPT_BUILD_DIR");
  return s ? std::filesystem::path(s) : std::filesystem::path(VITOPT_DEFAULT_BUILD_DIR);
}

}  // namespace vitopt::testing
