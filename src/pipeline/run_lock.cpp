#include "pipeline/run_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <string>

#include "core/error.h"

namespace vitopt::pipeline {

namespace {

std::string read_all(int fd) {
  std::string text;
  char buf[256];
  if (::lseek(fd, 0, SEEK_SET) < 0) return text;
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

// The lock file reads "pid <n>\nstarted <utc time>\n"; the pid, if any.
std::optional<long> pid_in(const std::string& text) {
  if (text.rfind("pid ", 0) != 0) return std::nullopt;
  try {
    return std::stol(text.substr(4));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

RunLock::RunLock(const std::filesystem::path& run_dir) : path_(run_dir / "pipeline.lock") {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    core::throw_input("{}: cannot create the run folder's lock file: {}", path_.string(),
                      std::strerror(errno));
  const std::string before = read_all(fd_);
  const auto holder = pid_in(before);
  bool locked = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  // Filesystems without flock: fall back to the pid the file names.
  if (!locked && errno != EWOULDBLOCK) locked = !(holder && process_alive(*holder));
  if (!locked) {
    ::close(fd_);
    fd_ = -1;
    const auto started = before.find("started ");
    core::throw_input(
        "{}: run folder {} is in use by another pipeline ({}{}); nothing was written. Wait for "
        "it to finish, or give this run another folder (--out DIR)",
        path_.string(), path_.parent_path().string(),
        holder ? fmt::format("pid {}", *holder) : std::string("pid unknown"),
        started == std::string::npos
            ? ""
            : ", started " + before.substr(started + 8, before.find('\n', started) - started - 8));
  }
  if (holder && *holder != ::getpid()) stale_pid_ = holder;  // its holder died without cleaning up
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  const std::string text = fmt::format("pid {}\nstarted {}\n", ::getpid(), when);
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) < 0)
    core::throw_input("{}: cannot write the lock file: {}", path_.string(), std::strerror(errno));
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Emptied, not removed: removing it would let a process that opened the old file lock it while
  // a third one locks a new file of the same name.
  if (::ftruncate(fd_, 0) != 0) {
  }
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace vitopt::pipeline
