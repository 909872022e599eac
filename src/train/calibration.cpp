// Calibration batches from the training split (see calibration.h).
#include "train/calibration.h"

#include "core/error.h"
#include "data/loader.h"
#include "train/data_bridge.h"

namespace vitopt::train {

std::vector<CalibBatch> calibration_batches(const std::string& data, const io::ViTConfig& config,
                                            size_t count, int64_t batch, uint64_t seed) {
  if (count == 0) core::throw_input("--calib-images: expected >= 1, got 0");
  auto ds = open_dataset_for(data, config, data::Split::Train, count, seed);
  check_dataset_fits(*ds, config);
  if (ds->size() < count)
    core::throw_input("--calib-images: {} has only {} images, {} asked for", ds->description(),
                      ds->size(), count);
  data::LoaderOptions lopts;
  lopts.batch_size = batch;
  lopts.workers = 1;
  lopts.transform = eval_transform(config);
  data::DataLoader loader(ds, lopts);
  std::vector<CalibBatch> out;
  data::Batch b;
  loader.start_epoch(0);
  while (loader.next(b)) {
    // clone(): the batch's buffers are reused by the next call.
    out.push_back({batch_images(b, torch::kCPU).clone(), batch_labels(b, torch::kCPU).clone()});
  }
  return out;
}

torch::Tensor calibration_images(const std::vector<CalibBatch>& batches, torch::Tensor* labels) {
  std::vector<torch::Tensor> xs, ys;
  for (const auto& b : batches) {
    xs.push_back(b.x);
    ys.push_back(b.y);
  }
  if (xs.empty()) core::throw_input("--calib-images: the calibration set is empty");
  if (labels != nullptr) *labels = torch::cat(ys, 0);  // (count)
  return torch::cat(xs, 0);                            // (count, C, H, W)
}

std::vector<torch::Tensor> batch_inputs(const std::vector<CalibBatch>& batches) {
  std::vector<torch::Tensor> out;
  for (const auto& b : batches) out.push_back(b.x);
  return out;
}

}  // namespace vitopt::train
