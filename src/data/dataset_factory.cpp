// The entry points of dataset.h: parse a --data value, detect a folder's layout, open a split by
// kind, and take the first N samples. Format knowledge stays in the per-format files.
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/cifar_dataset.h"
#include "data/dataset.h"
#include "data/idx_dataset.h"
#include "data/image_folder_dataset.h"
#include "data/range_dataset.h"
#include "data/synthetic_dataset.h"

namespace vitopt::data {
namespace fs = std::filesystem;
namespace {

const std::vector<std::string> kKinds = {"fashion-mnist", "mnist",       "cifar10",
                                         "cifar100",      "imagefolder", "tiny-imagenet",
                                         "synthetic",     "idx",         "auto"};
constexpr const char* kValidSpecs =
    "fashion-mnist[:PATH], mnist[:PATH], cifar10[:PATH], cifar100[:PATH], imagefolder:PATH, "
    "tiny-imagenet:PATH, idx:PATH, auto:PATH, synthetic[:SIZE:CHANNELS:CLASSES:COUNT], or a "
    "dataset folder";
constexpr const char* kDefaultRoot = "/usr/share/datasets";

bool is_kind(const std::string& name) {
  return std::find(kKinds.begin(), kKinds.end(), name) != kKinds.end();
}

// Kinds whose packaged copy may live under kDefaultRoot/<kind>.
bool has_default_path(const std::string& kind) {
  return kind == "fashion-mnist" || kind == "mnist" || kind == "cifar10" || kind == "cifar100";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// IDX files carry no dataset name; the folder name usually does, and it decides the class names
// and normalization statistics.
std::string idx_kind_from_folder(const fs::path& dir) {
  fs::path norm = fs::absolute(dir).lexically_normal();
  if (norm.filename().empty()) norm = norm.parent_path();
  const std::string name = lower(norm.filename().string());
  if (name.find("fashion") != std::string::npos) return "fashion-mnist";
  if (name.find("mnist") != std::string::npos) return "mnist";
  return "idx";
}

std::string detect_kind(const fs::path& path) {
  if (!fs::exists(path)) core::throw_input("{}: dataset path not found", path.string());
  if (!fs::is_directory(path))
    core::throw_input("{}: expected a dataset folder, got a file", path.string());
  if (fs::is_regular_file(path / "wnids.txt")) return "tiny-imagenet";
  if (has_idx_files(path)) return idx_kind_from_folder(path);
  if (!find_cifar_root(path, 10).empty()) return "cifar10";
  if (!find_cifar_root(path, 100).empty()) return "cifar100";
  if (has_sub_folders(path)) return "imagefolder";
  core::throw_input(
      "{}: cannot tell the dataset layout: expected IDX files (train-images-idx3-ubyte[.gz]), "
      "CIFAR .bin batches (data_batch_1.bin or train.bin), wnids.txt (Tiny-ImageNet) or class "
      "sub-folders",
      path.string());
}

// "SIZE:CHANNELS:CLASSES:COUNT" (any prefix of it) into the synthetic fields of `spec`.
void parse_synthetic(const std::string& text, const std::string& fields, DatasetSpec& spec) {
  static const char* kNames[] = {"SIZE", "CHANNELS", "CLASSES", "COUNT"};
  size_t start = 0;
  for (int f = 0; start <= fields.size(); ++f) {
    const size_t end = std::min(fields.find(':', start), fields.size());
    const std::string field = fields.substr(start, end - start);
    if (f >= 4)
      core::throw_input(
          "--data '{}': too many fields: expected synthetic:SIZE:CHANNELS:CLASSES:"
          "COUNT",
          text);
    uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || ec != std::errc() || ptr != field.data() + field.size() || value == 0 ||
        (f < 3 && value > 1u << 20))
      core::throw_input("--data '{}': field {}: expected a positive integer, got '{}'", text,
                        kNames[f], field);
    switch (f) {
      case 0:
        spec.synthetic_size = static_cast<int>(value);
        break;
      case 1:
        spec.synthetic_channels = static_cast<int>(value);
        break;
      case 2:
        spec.synthetic_classes = static_cast<int>(value);
        break;
      default:
        spec.synthetic_count = value;
        break;
    }
    start = end + 1;
  }
  if (spec.synthetic_channels != 1 && spec.synthetic_channels != 3)
    core::throw_input("--data '{}': field CHANNELS: expected 1 or 3, got {}", text,
                      spec.synthetic_channels);
}

}  // namespace

DatasetSpec parse_dataset_spec(const std::string& text) {
  DatasetSpec spec;
  if (text.empty()) core::throw_input("--data: empty value: expected {}", kValidSpecs);
  const size_t colon = text.find(':');
  const std::string name = text.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (is_kind(name)) {
    spec.kind = name;
    if (name == "synthetic") {
      if (colon != std::string::npos) parse_synthetic(text, rest, spec);
      return spec;
    }
    spec.path = rest;
    if (spec.path.empty() && !has_default_path(name))
      core::throw_input("--data '{}': {} needs a folder: {}:PATH", text, name, name);
    if (!spec.path.empty() && !fs::exists(spec.path))
      core::throw_input("{}: dataset path not found (from --data '{}')", spec.path, text);
    if (spec.kind == "auto") spec.kind = detect_kind(spec.path);
    return spec;
  }
  // Not a known name: a folder whose layout we detect.
  if (fs::exists(text)) {
    spec.path = text;
    spec.kind = detect_kind(text);
    return spec;
  }
  const bool looks_like_path =
      text.find('/') != std::string::npos || text[0] == '.' || text[0] == '~';
  if (looks_like_path) core::throw_input("{}: dataset path not found", text);
  core::throw_input("--data '{}': unknown dataset '{}': expected {}", text, name, kValidSpecs);
}

std::shared_ptr<Dataset> open_dataset(const DatasetSpec& spec, Split split) {
  std::string kind = spec.kind;
  if (!is_kind(kind))
    core::throw_input("unknown dataset kind '{}': expected one of {}", kind,
                      fmt::join(kKinds, ", "));
  if (kind == "synthetic")
    return open_synthetic_dataset(spec.synthetic_size, spec.synthetic_channels,
                                  spec.synthetic_classes, spec.synthetic_count, spec.seed, split);
  fs::path path = spec.path;
  if (path.empty()) {
    if (!has_default_path(kind))
      core::throw_input("dataset {} needs a folder: {}:PATH", kind, kind);
    path = fs::path(kDefaultRoot) / kind;
    if (!fs::is_directory(path))
      core::throw_input(
          "{}: the default folder for {} does not exist; download the dataset and "
          "pass --data {}:PATH",
          path.string(), kind, kind);
  }
  if (!fs::exists(path)) core::throw_input("{}: dataset path not found", path.string());
  if (kind == "auto") kind = detect_kind(path);

  if (kind == "fashion-mnist" || kind == "mnist" || kind == "idx")
    return open_idx_dataset(path, split, kind);
  if (kind == "cifar10") return open_cifar_dataset(path, split, 10);
  if (kind == "cifar100") return open_cifar_dataset(path, split, 100);
  if (kind == "tiny-imagenet") return open_tiny_imagenet(path, split);
  return open_image_folder(path, split);
}

std::shared_ptr<Dataset> limit_dataset(std::shared_ptr<Dataset> base, size_t limit) {
  if (limit == 0 || limit >= base->size()) return base;
  return range_dataset(std::move(base), 0, limit);
}

}  // namespace vitopt::data
