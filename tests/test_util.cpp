#include "test_util.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "core/error.h"

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

void expect_input_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "accepted; expected an InputError mentioning '"
                  << (parts.empty() ? std::string() : parts.front()) << "'";
  } catch (const core::InputError& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\nlacks: " << p;
  }
}

}  // namespace vitopt::testing
