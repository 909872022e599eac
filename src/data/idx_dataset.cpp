// Loads an IDX image/label file pair into memory and checks everything a broken download can get
// wrong: magic, dimensions, byte counts, image/label counts and label range.
#include "data/idx_dataset.h"

#include <fmt/ranges.h>
#include <zlib.h>

#include "core/error.h"
#include "core/file_util.h"
#include "data/dense_dataset.h"

namespace vitopt::data {
namespace fs = std::filesystem;
namespace {

constexpr int kIdxClasses = 10;

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::vector<uint8_t> read_gzip(const fs::path& file) {
  if (!fs::exists(file)) core::throw_input("{}: file not found", file.string());
  gzFile gz = gzopen(file.c_str(), "rb");
  if (!gz) core::throw_input("{}: cannot open gzip file", file.string());
  std::vector<uint8_t> out;
  constexpr unsigned kChunk = 1u << 20;
  while (true) {
    const size_t old = out.size();
    out.resize(old + kChunk);
    const int n = gzread(gz, out.data() + old, kChunk);
    if (n < 0) {
      int errnum = 0;
      const std::string msg = gzerror(gz, &errnum);
      gzclose(gz);
      core::throw_input("{}: corrupt gzip data ({})", file.string(), msg);
    }
    out.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  // zlib reports a stream cut short only through gzerror after the final read.
  int errnum = 0;
  const std::string msg = gzerror(gz, &errnum);
  gzclose(gz);
  if (errnum != Z_OK && errnum != Z_STREAM_END)
    core::throw_input("{}: truncated or corrupt gzip data ({})", file.string(), msg);
  return out;
}

// "<dir>/<stem>" or "<dir>/<stem>.gz", whichever exists; empty if neither.
fs::path find_idx(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    if (fs::is_regular_file(dir / name)) return dir / name;
  }
  return {};
}

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

}  // namespace

std::vector<uint8_t> read_maybe_gzip(const fs::path& file) {
  if (file.string().ends_with(".gz")) return read_gzip(file);
  return core::read_file_bytes(file);
}

IdxArray read_idx_file(const fs::path& file, uint32_t expected_magic) {
  const std::vector<uint8_t> bytes = read_maybe_gzip(file);
  if (bytes.size() < 4)
    core::throw_input("{}: truncated: expected at least 4 bytes of header, got {}", file.string(),
                      bytes.size());
  const uint32_t magic = read_be32(bytes.data());
  if (magic != expected_magic)
    core::throw_input("{}: bad magic: expected {} (IDX unsigned bytes, {} dims), got {}",
                      file.string(), expected_magic, expected_magic & 0xff, magic);
  IdxArray out;
  const size_t ndims = magic & 0xff;
  const size_t header = 4 + 4 * ndims;
  if (bytes.size() < header)
    core::throw_input("{}: truncated: expected {} bytes of header, got {}", file.string(), header,
                      bytes.size());
  size_t count = 1;
  for (size_t d = 0; d < ndims; ++d) {
    out.dims.push_back(read_be32(bytes.data() + 4 + 4 * d));
    count *= out.dims.back();
  }
  if (bytes.size() != header + count)
    core::throw_input("{}: {}: expected {} bytes for dims {}, got {}", file.string(),
                      bytes.size() < header + count ? "truncated" : "trailing data", header + count,
                      fmt::join(out.dims, "x"), bytes.size());
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

bool has_idx_files(const fs::path& dir) {
  return !find_idx(dir, "train-images-idx3-ubyte").empty() ||
         !find_idx(dir, "t10k-images-idx3-ubyte").empty();
}

std::shared_ptr<Dataset> open_idx_dataset(const fs::path& dir, Split split,
                                          const std::string& kind) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const fs::path images_file = find_idx(dir, prefix + "-images-idx3-ubyte");
  const fs::path labels_file = find_idx(dir, prefix + "-labels-idx1-ubyte");
  if (images_file.empty() || labels_file.empty())
    core::throw_input("{}: missing {}-{}-idx{}-ubyte[.gz] ({} split of {})", dir.string(), prefix,
                      images_file.empty() ? "images" : "labels", images_file.empty() ? 3 : 1,
                      split == Split::Train ? "train" : "test", kind);
  return open_idx_pair(images_file, labels_file, kind, split == Split::Train ? "train" : "test");
}

std::shared_ptr<Dataset> open_idx_pair(const fs::path& images_file, const fs::path& labels_file,
                                       const std::string& kind, const std::string& split_name) {
  IdxArray images = read_idx_file(images_file, kIdxImagesMagic);
  IdxArray labels = read_idx_file(labels_file, kIdxLabelsMagic);
  if (images.dims[0] != labels.dims[0])
    core::throw_input("{}: {} labels but {} has {} images", labels_file.string(), labels.dims[0],
                      images_file.string(), images.dims[0]);
  if (images.dims[1] == 0 || images.dims[2] == 0)
    core::throw_input("{}: empty images ({}x{})", images_file.string(), images.dims[1],
                      images.dims[2]);

  DenseData d;
  d.height = static_cast<int>(images.dims[1]);
  d.width = static_cast<int>(images.dims[2]);
  d.channels = 1;
  d.num_classes = kIdxClasses;
  d.labels.resize(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= kIdxClasses)
      core::throw_input("{}: label {} of sample {} out of range: expected 0..{}",
                        labels_file.string(), labels.data[i], i, kIdxClasses - 1);
    d.labels[i] = labels.data[i];
  }
  d.pixels = std::move(images.data);
  if (kind == "fashion-mnist") {
    d.class_names = kFashionNames;
    d.mean = {0.2860f};
    d.std = {0.3530f};
  } else {
    for (int c = 0; c < kIdxClasses; ++c) d.class_names.push_back(std::to_string(c));
    if (kind == "mnist") {
      d.mean = {0.1307f};
      d.std = {0.3081f};
    } else {
      measure_mean_std(d.pixels, 1, d.mean, d.std);
    }
  }
  d.description = fmt::format("{} {} ({} images, {}x{}, {})", kind, split_name, d.labels.size(),
                              d.height, d.width, images_file.parent_path().string());
  return std::make_shared<DenseDataset>(std::move(d));
}

}  // namespace vitopt::data
