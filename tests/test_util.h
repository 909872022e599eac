// Helpers for tests: a fresh temporary folder per test, the source/build paths from CTest, and the
// check that bad input is refused with a message naming what is wrong.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

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

// Runs `fn` and expects a core::InputError whose message contains every string in `parts`
// (a gtest failure naming the missing part otherwise).
void expect_input_error(const std::function<void()>& fn, const std::vector<std::string>& parts);

}  // namespace vitopt::testing
