// Range views of datasets (see range_dataset.h).
#include "data/range_dataset.h"

#include <fmt/format.h>

#include "core/error.h"

namespace vitopt::data {
namespace {

class RangeDataset : public Dataset {
 public:
  RangeDataset(std::shared_ptr<Dataset> base, size_t offset, size_t count)
      : base_(std::move(base)), offset_(offset), count_(count) {}
  size_t size() const override { return count_; }
  int num_classes() const override { return base_->num_classes(); }
  int channels() const override { return base_->channels(); }
  int native_size() const override { return base_->native_size(); }
  Image image(size_t index) const override { return base_->image(at(index)); }
  int label(size_t index) const override { return base_->label(at(index)); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  std::string description() const override {
    if (offset_ == 0) return fmt::format("{}, first {}", base_->description(), count_);
    return fmt::format("{}, samples {}..{}", base_->description(), offset_, offset_ + count_ - 1);
  }
  std::vector<float> default_mean() const override { return base_->default_mean(); }
  std::vector<float> default_std() const override { return base_->default_std(); }

 private:
  size_t at(size_t index) const {
    if (index >= count_)
      core::throw_input("{}: sample {} out of range (size {})", description(), index, count_);
    return offset_ + index;
  }
  std::shared_ptr<Dataset> base_;
  size_t offset_, count_;
};

}  // namespace

std::shared_ptr<Dataset> range_dataset(std::shared_ptr<Dataset> base, size_t offset, size_t count) {
  if (offset > base->size() || count > base->size() - offset)
    core::throw_input("{}: samples {}..{} asked for, it has {}", base->description(), offset,
                      offset + count, base->size());
  return std::make_shared<RangeDataset>(std::move(base), offset, count);
}

std::shared_ptr<Dataset> tail_dataset(std::shared_ptr<Dataset> base, size_t count) {
  if (count > base->size())
    core::throw_input("{}: the last {} samples asked for, it has {}", base->description(), count,
                      base->size());
  const size_t offset = base->size() - count;
  return range_dataset(std::move(base), offset, count);
}

}  // namespace vitopt::data
