// Reads CIFAR binary batches into memory. A file whose size is not a whole number of records, or
// a label past the class count, is an error naming the file (the usual sign of a wrong download).
#include "data/cifar_dataset.h"

#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "data/dense_dataset.h"

namespace vitopt::data {
namespace fs = std::filesystem;
namespace {

constexpr int kSide = 32, kChannels = 3;
constexpr size_t kPixels = kSide * kSide * kChannels;

const std::vector<std::string> kCifar10Names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

std::vector<std::string> split_files(Split split, int classes) {
  if (classes == 100) return {split == Split::Train ? "train.bin" : "test.bin"};
  if (split == Split::Test) return {"test_batch.bin"};
  std::vector<std::string> files;
  for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  return files;
}

// Non-empty trimmed lines of a names file; empty if the file is absent.
std::vector<std::string> read_names(const fs::path& file) {
  std::vector<std::string> names;
  if (!fs::is_regular_file(file)) return names;
  std::istringstream in(core::read_file_text(file));
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const auto last = line.find_last_not_of(" \t\r");
    names.push_back(line.substr(first, last - first + 1));
  }
  return names;
}

// Appends the records of one file to `d` (labels checked, CHW -> HWC).
void append_records(const fs::path& file, int classes, DenseData& d) {
  const size_t label_bytes = classes == 100 ? 2 : 1;  // CIFAR-100: coarse, fine
  const size_t record = label_bytes + kPixels;
  const std::vector<uint8_t> bytes = core::read_file_bytes(file);
  if (bytes.empty() || bytes.size() % record != 0)
    core::throw_input(
        "{}: size {} bytes is not a whole number of {}-byte CIFAR-{} records "
        "(truncated or wrong format; expected a multiple of {}, e.g. {})",
        file.string(), bytes.size(), record, classes, record, 10000 * record);
  const size_t count = bytes.size() / record;
  const size_t base = d.labels.size();
  d.labels.resize(base + count);
  d.pixels.resize((base + count) * kPixels);
  constexpr size_t kPlane = kSide * kSide;
  for (size_t r = 0; r < count; ++r) {
    const uint8_t* rec = bytes.data() + r * record;
    const int label = rec[label_bytes - 1];
    if (label >= classes)
      core::throw_input("{}: label {} of record {} out of range: expected 0..{}", file.string(),
                        label, r, classes - 1);
    d.labels[base + r] = label;
    uint8_t* out = d.pixels.data() + (base + r) * kPixels;
    for (size_t p = 0; p < kPlane; ++p)
      for (size_t c = 0; c < kChannels; ++c)
        out[p * kChannels + c] = rec[label_bytes + c * kPlane + p];
  }
}

}  // namespace

fs::path find_cifar_root(const fs::path& path, int classes) {
  const std::string probe = classes == 100 ? "train.bin" : "data_batch_1.bin";
  const std::string probe_test = classes == 100 ? "test.bin" : "test_batch.bin";
  const std::string sub = classes == 100 ? "cifar-100-binary" : "cifar-10-batches-bin";
  for (const fs::path& dir : {path, path / sub}) {
    if (fs::is_regular_file(dir / probe) || fs::is_regular_file(dir / probe_test)) return dir;
  }
  return {};
}

std::shared_ptr<Dataset> open_cifar_dataset(const fs::path& path, Split split, int classes) {
  if (classes != 10 && classes != 100)
    core::throw_internal("open_cifar_dataset: classes must be 10 or 100, got {}", classes);
  fs::path root = find_cifar_root(path, classes);
  if (root.empty()) root = path;  // so the error below names the file we looked for
  DenseData d;
  d.height = d.width = kSide;
  d.channels = kChannels;
  d.num_classes = classes;
  for (const std::string& name : split_files(split, classes)) {
    const fs::path file = root / name;
    if (!fs::is_regular_file(file))
      core::throw_input("{}: missing CIFAR-{} file (expected the binary version's layout)",
                        file.string(), classes);
    append_records(file, classes, d);
  }
  d.class_names = read_names(root / (classes == 100 ? "fine_label_names.txt" : "batches.meta.txt"));
  if (d.class_names.size() != static_cast<size_t>(classes)) {
    d.class_names.clear();
    if (classes == 10) d.class_names = kCifar10Names;
    for (int c = 0; classes == 100 && c < classes; ++c) d.class_names.push_back(std::to_string(c));
  }
  if (classes == 10) {
    d.mean = {0.4914f, 0.4822f, 0.4465f};
    d.std = {0.2470f, 0.2435f, 0.2616f};
  } else {
    d.mean = {0.5071f, 0.4865f, 0.4409f};
    d.std = {0.2673f, 0.2564f, 0.2762f};
  }
  d.description =
      fmt::format("cifar{} {} ({} images, {})", classes, split == Split::Train ? "train" : "test",
                  d.labels.size(), root.string());
  return std::make_shared<DenseDataset>(std::move(d));
}

}  // namespace vitopt::data
