#include "core/file_util.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace vitopt::core {

std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw_input("{}: cannot open file ({})", path.string(), std::strerror(errno));
  const std::streamsize size = in.tellg();
  if (size < 0) throw_input("{}: cannot determine file size", path.string());
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw_input("{}: read failed after {} bytes", path.string(), in.gcount());
  return bytes;
}

std::string read_file_text(const std::filesystem::path& path) {
  auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

namespace {

// Temp files "<name>.tmp.<pid>" left next to `path` by writers that were killed (kill -9, power
// loss): removed when their process no longer exists, so a crashed run leaves no litter behind
// once the file is written again. Live writers (another process) are left alone.
void remove_stale_temp_files(const std::filesystem::path& path) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const std::string prefix = path.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      std::filesystem::remove(entry.path(), ec);
  }
}

// The failure of a write, flush or close: the temp file is removed and the previous file at
// `path` (if any) is untouched. A full disk or a file-size limit is the environment's failure,
// not the user's input: InternalError (exit 1), with what happened and what is kept.
[[noreturn]] void fail_write(const std::filesystem::path& path, const std::string& tmp,
                             const char* step, int err, size_t written, size_t size) {
  ::unlink(tmp.c_str());
  const bool space = err == ENOSPC || err == EFBIG || err == EDQUOT;
  throw_internal("{}: {} failed after {} of {} bytes ({}{}); nothing was replaced: {}",
                 path.string(), step, written, size, std::strerror(err),
                 space ? ": the disk is full or a file-size limit was reached" : "",
                 std::filesystem::exists(path) ? "the previous file is intact"
                                               : "no file was created");
}

// Test hook for crash tests: with VITOPT_TEST_KILL_IN_WRITE=N in the environment, the process
// kills itself (SIGKILL, as kill -9 would) in the middle of its N-th atomic write, after half of
// the bytes reached the temp file. Unset (always, outside tests) it costs one getenv per process.
void maybe_die_mid_write(int fd, const char* p, size_t size) {
  static const long kill_at = [] {
    const char* v = std::getenv("VITOPT_TEST_KILL_IN_WRITE");
    return v != nullptr ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static std::atomic<long> writes{0};
  if (kill_at <= 0 || ++writes != kill_at) return;
  (void)!::write(fd, p, size / 2);
  ::fsync(fd);
  ::raise(SIGKILL);
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const void* data, size_t size) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  remove_stale_temp_files(path);
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_input("{}: cannot create ({})", tmp, std::strerror(errno));
  const auto* p = static_cast<const char*>(data);
  maybe_die_mid_write(fd, p, size);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, p + written, size - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // 0 cannot happen for a regular file; treat it as out of space, not a loop
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      fail_write(path, tmp, "write", err, written, size);
    }
    written += static_cast<size_t>(n);
  }
  // Delayed allocation can report a full disk only here, so both results count.
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail_write(path, tmp, "flush (fsync)", err, written, size);
  }
  if (::close(fd) != 0) fail_write(path, tmp, "close", errno, written, size);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_input("{}: cannot rename into place ({})", path.string(), std::strerror(err));
  }
  // Make the rename itself durable (a power loss after this returns keeps the new file).
  const std::string dir = path.has_parent_path() ? path.parent_path().string() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace vitopt::core
