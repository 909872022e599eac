// Lists image files with their class at open (cheap) and decodes one in image() (on the loader's
// worker threads). Class indices follow sorted folder names, as torchvision's ImageFolder does, so
// labels agree with models trained there; the test split reuses the train split's class list.
#include "data/image_folder_dataset.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "data/dense_dataset.h"
#include "data/image_decode.h"

namespace vitopt::data {
namespace fs = std::filesystem;
namespace {

const std::vector<float> kImageNetMean = {0.485f, 0.456f, 0.406f};
const std::vector<float> kImageNetStd = {0.229f, 0.224f, 0.225f};

struct ImageFile {
  fs::path path;
  int label = 0;
};

class FileImageDataset : public Dataset {
 public:
  FileImageDataset(std::vector<ImageFile> files, std::vector<std::string> names, int channels,
                   int native, std::string description)
      : files_(std::move(files)),
        names_(std::move(names)),
        channels_(channels),
        native_(native),
        description_(std::move(description)) {}

  size_t size() const override { return files_.size(); }
  int num_classes() const override { return static_cast<int>(names_.size()); }
  int channels() const override { return channels_; }
  int native_size() const override { return native_; }
  Image image(size_t index) const override {
    check_index(index, size(), description_);
    try {
      return load_image_file(files_[index].path, channels_);
    } catch (const core::InputError& e) {
      core::throw_input("{} (sample {} of {})", e.what(), index, description_);
    }
  }
  int label(size_t index) const override {
    check_index(index, size(), description_);
    return files_[index].label;
  }
  std::vector<std::string> class_names() const override { return names_; }
  std::string description() const override { return description_; }
  std::vector<float> default_mean() const override { return kImageNetMean; }
  std::vector<float> default_std() const override { return kImageNetStd; }

 private:
  std::vector<ImageFile> files_;
  std::vector<std::string> names_;
  int channels_, native_;
  std::string description_;
};

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

std::vector<std::string> sorted_sub_folders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Image files anywhere under `dir`, sorted so sample order never depends on the file system.
std::vector<fs::path> sorted_images(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// 1 if the first image is grey (with or without alpha), else 3: the dataset then yields that
// many channels for every image, so a folder of grey PNGs stays single-channel.
int probe_channels(const std::vector<ImageFile>& files) {
  const fs::path& first = files.front().path;
  const int stored = probe_image_channels(core::read_file_bytes(first));
  if (stored == 0) core::throw_input("{}: not a readable PNG/JPEG/BMP image", first.string());
  return stored <= 2 ? 1 : 3;
}

std::string split_name(Split split) { return split == Split::Train ? "train" : "test"; }

// FNV-1a (64-bit) of the image's path relative to the dataset root: the hold-out choice depends
// only on the file's own name, not on the folder's location, file order or the other files.
uint64_t path_hash(const fs::path& file, const fs::path& root) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : file.lexically_relative(root).generic_string()) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

// Without train/ and val|test/ folders, a fixed share of the images (by path hash) is the test
// split and never trained on. With few images the hash may pick none: then the image with the
// smallest hash is held out, so both splits stay disjoint and the test split is never empty.
std::vector<ImageFile> holdout_split(std::vector<ImageFile> files, const fs::path& root,
                                     Split split) {
  std::vector<uint64_t> hashes;
  bool any_test = false;
  for (const auto& f : files) {
    hashes.push_back(path_hash(f.path, root));
    any_test |= hashes.back() % 100 < static_cast<uint64_t>(kImageFolderHoldoutPercent);
  }
  const size_t smallest =
      static_cast<size_t>(std::min_element(hashes.begin(), hashes.end()) - hashes.begin());
  std::vector<ImageFile> out;
  for (size_t i = 0; i < files.size(); ++i) {
    const bool is_test = any_test
                             ? hashes[i] % 100 < static_cast<uint64_t>(kImageFolderHoldoutPercent)
                             : i == smallest;
    if (is_test == (split == Split::Test)) out.push_back(std::move(files[i]));
  }
  return out;
}

}  // namespace

bool has_sub_folders(const fs::path& root) {
  return fs::is_directory(root) && !sorted_sub_folders(root).empty();
}

std::shared_ptr<Dataset> open_image_folder(const fs::path& root, Split split) {
  if (!fs::is_directory(root)) core::throw_input("{}: image folder not found", root.string());
  const fs::path train_dir = root / "train";
  fs::path test_dir = root / "val";
  if (!fs::is_directory(test_dir)) test_dir = root / "test";
  const bool has_train = fs::is_directory(train_dir), has_test = fs::is_directory(test_dir);

  fs::path dir = root;
  std::string note;
  if (has_train || has_test) {
    dir = split == Split::Train ? train_dir : test_dir;
    if (!fs::is_directory(dir))
      core::throw_input("{}: no {} folder for the {} split", root.string(),
                        split == Split::Train ? "train/" : "val/ or test/", split_name(split));
  } else {
    note = fmt::format(
        "; no train/ val/ test/ folders, so {}% of the images (chosen by a hash of each file's "
        "path) are held out as the test split and never trained on",
        kImageFolderHoldoutPercent);
  }
  // Labels come from the train split's folders so that train and test agree on class indices.
  const std::vector<std::string> classes = sorted_sub_folders(has_train ? train_dir : dir);
  if (classes.empty()) core::throw_input("{}: no class sub-folders", dir.string());
  for (const std::string& name : sorted_sub_folders(dir)) {
    if (!std::binary_search(classes.begin(), classes.end(), name))
      core::throw_input("{}: class folder '{}' is not among the {} classes of {}",
                        (dir / name).string(), name, classes.size(), train_dir.string());
  }

  std::vector<ImageFile> files;
  for (size_t c = 0; c < classes.size(); ++c) {
    if (!fs::is_directory(dir / classes[c])) continue;  // test split may lack a class
    for (fs::path& p : sorted_images(dir / classes[c]))
      files.push_back({std::move(p), static_cast<int>(c)});
  }
  if (files.empty())
    core::throw_input("{}: no .png/.jpg/.jpeg/.bmp images in the class folders", dir.string());
  const int channels = probe_channels(files);  // from the first image of all, for both splits
  if (!note.empty()) {
    const size_t all = files.size();
    files = holdout_split(std::move(files), root, split);
    if (files.empty())
      core::throw_input("{}: only {} image(s), all held out as the test split: add images or "
                        "make train/ and test/ folders",
                        root.string(), all);
  }
  std::string description =
      fmt::format("imagefolder {} ({} images, {} classes, {}{})", split_name(split), files.size(),
                  classes.size(), dir.string(), note);
  return std::make_shared<FileImageDataset>(std::move(files), classes, channels, 0,
                                            std::move(description));
}

std::shared_ptr<Dataset> open_tiny_imagenet(const fs::path& root, Split split) {
  const fs::path wnids_file = root / "wnids.txt";
  std::vector<std::string> wnids;
  {
    std::istringstream in(core::read_file_text(wnids_file));
    for (std::string w; in >> w;) wnids.push_back(w);
  }
  if (wnids.empty()) core::throw_input("{}: no class ids", wnids_file.string());
  std::sort(wnids.begin(), wnids.end());  // same order as ImageFolder over train/
  std::map<std::string, int> label_of;
  for (size_t i = 0; i < wnids.size(); ++i) label_of[wnids[i]] = static_cast<int>(i);

  std::vector<ImageFile> files;
  if (split == Split::Train) {
    for (size_t c = 0; c < wnids.size(); ++c) {
      const fs::path dir = root / "train" / wnids[c];
      if (!fs::is_directory(dir))
        core::throw_input("{}: missing train folder for class {}", dir.string(), wnids[c]);
      for (fs::path& p : sorted_images(dir)) files.push_back({std::move(p), static_cast<int>(c)});
    }
  } else {
    const fs::path ann_file = root / "val" / "val_annotations.txt";
    std::istringstream in(core::read_file_text(ann_file));
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::istringstream fields(line);
      std::string name, wnid;
      std::getline(fields, name, '\t');
      std::getline(fields, wnid, '\t');
      if (!wnid.empty() && wnid.back() == '\r') wnid.pop_back();
      const auto it = label_of.find(wnid);
      if (name.empty() || it == label_of.end())
        core::throw_input("{}: line {}: expected '<file>\\t<wnid from wnids.txt>\\t...', got '{}'",
                          ann_file.string(), line_no, line);
      files.push_back({root / "val" / "images" / name, it->second});
    }
  }
  if (files.empty())
    core::throw_input("{}: no images in the {} split", root.string(), split_name(split));

  // words.txt maps every ImageNet wnid to "name, synonym, ..."; fall back to the wnid itself.
  std::vector<std::string> names = wnids;
  if (fs::is_regular_file(root / "words.txt")) {
    std::istringstream in(core::read_file_text(root / "words.txt"));
    for (std::string line; std::getline(in, line);) {
      const auto tab = line.find('\t');
      if (tab == std::string::npos) continue;
      const auto it = label_of.find(line.substr(0, tab));
      if (it == label_of.end()) continue;
      std::string words = line.substr(tab + 1);
      if (!words.empty() && words.back() == '\r') words.pop_back();
      names[it->second] = words;
    }
  }
  std::string description =
      fmt::format("tiny-imagenet {} ({} images, {} classes, {})", split_name(split), files.size(),
                  wnids.size(), root.string());
  // Tiny-ImageNet has a few grey JPEGs among RGB ones: always decode to RGB.
  return std::make_shared<FileImageDataset>(std::move(files), std::move(names), 3, 64,
                                            std::move(description));
}

}  // namespace vitopt::data
