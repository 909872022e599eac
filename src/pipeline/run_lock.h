// One pipeline per run folder: <run>/pipeline.lock is held (flock) for the whole run and names the
// holder's pid, so a second pipeline on the same folder stops at once with a message saying who
// holds it, before it writes anything. The kernel drops the lock when its holder dies (even by
// kill -9); a lock file left by a dead process is taken over, and the pid it named is reported.
#pragma once

#include <filesystem>
#include <optional>

namespace vitopt::pipeline {

class RunLock {
 public:
  // Throws InputError (exit code 2) when a live process holds the run folder.
  explicit RunLock(const std::filesystem::path& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // The pid named by a lock file whose process was gone (a stale lock taken over).
  std::optional<long> taken_over_from() const { return stale_pid_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::optional<long> stale_pid_;
};

}  // namespace vitopt::pipeline
