// Whole-file reads and atomic writes (temp file in the same folder + fsync + rename), so that an
// interrupted write never leaves a half-written model, checkpoint or report behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vitopt::core {

// Reads the whole file; throws InputError naming the path if it is missing or unreadable.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path);
std::string read_file_text(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically: <path>.tmp.<pid> is written, fsynced, closed, renamed
// (and the folder fsynced). Creates the parent folder if needed. Every write/fsync/close result
// is checked: on failure (full disk, file-size limit) the temp file is removed, the previous file
// stays as it was, and InternalError says which step failed after how many bytes. Stale temp
// files of killed writers of the same path are removed first.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
void write_file_atomic(const std::filesystem::path& path, const void* data, size_t size);

}  // namespace vitopt::core
