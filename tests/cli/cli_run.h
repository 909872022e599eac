// Running the `vitopt` binary from a test as a user would: the command line, its exit code and
// everything it printed (stdout + stderr). Shared by the end-to-end tests in tests/cli.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_util.h"

namespace vitopt::testing {

struct CliRun {
  int code = -1;    // exit code; -1 if killed by a signal or not started
  std::string out;  // stdout + stderr
};

inline std::string vitopt_binary() { return (build_dir() / "bin" / "vitopt").string(); }

inline CliRun vitopt_cli(const std::string& args) {
  const std::string cmd = vitopt_binary() + " " + args + " 2>&1";
  CliRun r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace vitopt::testing
