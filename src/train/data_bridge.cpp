#include "train/data_bridge.h"

#include "core/error.h"
#include "data/eval_transform.h"

namespace vitopt::train {

data::TransformOptions eval_transform(const io::ViTConfig& config) {
  return data::eval_transform(config.image_size, config.in_channels, config.preprocess.mean,
                              config.preprocess.std, config.preprocess.crop_pct);
}

data::TransformOptions train_transform(const io::ViTConfig& config, int crop_padding,
                                       bool hflip) {
  data::TransformOptions t = eval_transform(config);
  t.train = true;
  t.crop_pct = 1.0f;
  t.random_crop_padding = crop_padding;
  t.horizontal_flip = hflip;
  return t;
}

torch::Tensor batch_images(data::Batch& batch, const torch::Device& device) {
  auto t = torch::from_blob(batch.images.data(),
                            {batch.size, batch.channels, batch.height, batch.width},
                            torch::kFloat32);
  return device.is_cpu() ? t : t.to(device);
}

torch::Tensor batch_labels(data::Batch& batch, const torch::Device& device) {
  auto t = torch::from_blob(batch.labels.data(), {batch.size}, torch::kInt64);
  return device.is_cpu() ? t : t.to(device);
}

std::shared_ptr<data::Dataset> open_dataset_for(const std::string& spec_text,
                                                const io::ViTConfig& config, data::Split split,
                                                size_t limit, uint64_t seed) {
  auto spec = data::parse_dataset_spec(spec_text);
  if (spec.kind == "synthetic") {
    if (spec_text == "synthetic") {
      spec.synthetic_size = config.image_size;
      spec.synthetic_channels = config.in_channels;
      spec.synthetic_classes = config.num_classes;
    }
    spec.seed = seed + (split == data::Split::Test ? 1 : 0);
  }
  auto ds = data::open_dataset(spec, split);
  return limit > 0 ? data::limit_dataset(ds, limit) : ds;
}

void check_dataset_fits(const data::Dataset& dataset, const io::ViTConfig& config) {
  if (dataset.num_classes() > config.num_classes)
    core::throw_input(
        "{} has {} classes but the model's head has {} outputs (num_classes); use a model with "
        "num_classes >= {}",
        dataset.description(), dataset.num_classes(), config.num_classes, dataset.num_classes());
  const int c = dataset.channels();
  if (!(c == config.in_channels || c == 1 || c == 3))
    core::throw_input("{} has {}-channel images; the model expects {} channels",
                      dataset.description(), c, config.in_channels);
}

}  // namespace vitopt::train
