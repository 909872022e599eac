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

// Writes `bytes` to `path` atomically: <path>.tmp.<pid> is written, flushed, fsynced, renamed.
// Creates the parent folder if needed.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
void write_file_atomic(const std::filesystem::path& path, const void* data, size_t size);

}  // namespace vitopt::core
