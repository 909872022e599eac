// run_gnuplot: writes the script to a temporary file in the work folder and runs
// `gnuplot -- <file>` there with stderr captured, so a failing plot reports gnuplot's own message.
#include "report/gnuplot.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "core/error.h"
#include "core/file_util.h"

namespace vitopt::report {

namespace {

// Single-quotes a string for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'')
      out += "'\\''";
    else
      out += ch;
  }
  return out + "'";
}

// Runs a shell command, returns (exit status, stdout).
std::pair<int, std::string> run_capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) core::throw_internal("gnuplot: cannot start '{}'", command);
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

std::string gnuplot_quote(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (ch == '\'')
      out += "''";  // gnuplot's escape inside single quotes
    else if (ch == '\n' || ch == '\r')
      out += ' ';
    else
      out += ch;
  }
  return out;
}

void run_gnuplot(const std::string& script, const std::filesystem::path& workdir) {
  std::filesystem::create_directories(workdir);
  static std::mutex counter_mutex;
  static int counter = 0;
  int id;
  {
    std::lock_guard lock(counter_mutex);
    id = counter++;
  }
  const auto abs_dir = std::filesystem::absolute(workdir);
  const auto script_path =
      abs_dir / (".vitopt-plot-" + std::to_string(::getpid()) + "-" + std::to_string(id) + ".gp");
  const auto err_path = script_path.string() + ".err";
  {
    std::ofstream f(script_path);
    f << script << '\n';
    if (!f) core::throw_internal("gnuplot: cannot write the script {}", script_path.string());
  }
  const std::string cmd = "cd " + shell_quote(abs_dir.string()) + " && gnuplot -- " +
                          shell_quote(script_path.string()) + " 2>" + shell_quote(err_path) +
                          " </dev/null";
  const auto [code, out] = run_capture(cmd);
  std::string err;
  if (std::filesystem::exists(err_path)) err = core::read_file_text(err_path);
  std::error_code ec;
  std::filesystem::remove(script_path, ec);
  std::filesystem::remove(err_path, ec);
  if (code != 0) {
    if (code == 127)
      core::throw_internal("gnuplot is not installed or not on PATH (apt-get install gnuplot-nox)");
    core::throw_internal("gnuplot failed (exit {}) in {}: {}", code, abs_dir.string(),
                         err.empty() ? out : err);
  }
}

const std::string& png_terminal() {
  static const std::string terminal = [] {
    const auto [code, out] = run_capture("echo 'set terminal' | gnuplot 2>&1");
    if (code == 127 || out.find("not found") != std::string::npos)
      core::throw_internal("gnuplot is not installed or not on PATH (apt-get install gnuplot-nox)");
    return std::string(out.find("pngcairo") != std::string::npos ? "pngcairo" : "png");
  }();
  return terminal;
}

}  // namespace vitopt::report
