// Helpers for tests: a fresh temporary folder per test, and the source/build paths from CTest.
#pragma once

#include <filesystem>
#include <string>

namespace vitopt::testing {

// A new empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::filesystem::path source_dir();  // $VITOPT_SOURCE_DIR or the compiled-in fallback
std::filesystem::path build_dir();   // $VITOPT_BUILD_DIR

}  // namespace vitopt::testing
