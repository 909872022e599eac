// Atomic writes under a full disk: a child process with a file-size limit (RLIMIT_FSIZE, SIGXFSZ
// ignored so write() fails with EFBIG instead of killing it) tries to replace a file; the error
// must say what failed and the previous file must be byte-identical, with no temp file left.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "core/error.h"
#include "core/file_util.h"
#include "test_util.h"

namespace vitopt::core {
namespace {

struct ChildResult {
  int exit_code = -1;
  std::string message;  // what the child caught
};

// Runs write_file_atomic(path, bytes) in a child limited to `limit` bytes per file.
ChildResult write_in_limited_child(const std::filesystem::path& path, const std::string& bytes,
                                   rlim_t limit) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit rl{limit, limit};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    int code = 0;
    std::string msg;
    try {
      write_file_atomic(path, bytes);
    } catch (const Error& e) {
      msg = e.what();
      code = e.exit_code();
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.message.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

size_t files_in(const std::filesystem::path& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

TEST(AtomicWrite, FileSizeLimitKeepsThePreviousFileAndSaysWhy) {
  testing::TempDir tmp;
  const auto path = tmp / "model.safetensors";
  const std::string previous = "the previous model, 36 bytes long...";
  write_file_atomic(path, previous);
  const std::string big(200000, 'x');
  const auto r = write_in_limited_child(path, big, 65536);
  EXPECT_EQ(r.exit_code, 1) << r.message;  // environment failure, not bad input
  EXPECT_NE(r.message.find(path.string()), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("File too large"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("65536 of 200000 bytes"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("previous file is intact"), std::string::npos) << r.message;
  EXPECT_EQ(read_file_text(path), previous);
  EXPECT_EQ(files_in(tmp.path()), 1u);  // the temp file is gone
}

TEST(AtomicWrite, FirstWriteUnderTheLimitFailsWithoutCreatingTheFile) {
  testing::TempDir tmp;
  const auto path = tmp / "report.html";
  const auto r = write_in_limited_child(path, std::string(10000, 'y'), 4096);
  EXPECT_EQ(r.exit_code, 1) << r.message;
  EXPECT_NE(r.message.find("no file was created"), std::string::npos) << r.message;
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(files_in(tmp.path()), 0u);
}

TEST(AtomicWrite, WithinTheLimitSucceeds) {
  testing::TempDir tmp;
  const auto path = tmp / "small.json";
  const auto r = write_in_limited_child(path, std::string(1000, 'z'), 4096);
  EXPECT_EQ(r.exit_code, 0) << r.message;
  EXPECT_EQ(read_file_text(path), std::string(1000, 'z'));
}

TEST(AtomicWrite, StaleTempFilesOfDeadWritersAreRemoved) {
  testing::TempDir tmp;
  const auto path = tmp / "checkpoint.safetensors";
  // A pid that cannot be running (above the kernel's pid_max of 4194304) and our own parent's.
  write_file_atomic(tmp / "checkpoint.safetensors.tmp.999999999", std::string("half"));
  write_file_atomic(tmp / ("checkpoint.safetensors.tmp." + std::to_string(::getppid())), std::string("live"));
  write_file_atomic(tmp / "other.tmp.999999999", std::string("not ours"));
  write_file_atomic(path, std::string("new"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "checkpoint.safetensors.tmp.999999999"));
  EXPECT_TRUE(std::filesystem::exists(tmp / ("checkpoint.safetensors.tmp." + std::to_string(::getppid()))));
  EXPECT_TRUE(std::filesystem::exists(tmp / "other.tmp.999999999"));
  EXPECT_EQ(read_file_text(path), "new");
}

}  // namespace
}  // namespace vitopt::core
