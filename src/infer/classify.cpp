// Image files through the runtime engine. One batch for all files: `infer` is for a handful of
// images; `eval` (accuracy.cpp) streams datasets in batches.
#include "infer/classify.h"

#include <filesystem>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "data/image_decode.h"

namespace vitopt::infer {

data::TransformOptions eval_transform(const runtime::ModelInfo& info, const InferOptions& options) {
  auto per_channel = [&](const std::vector<float>& given, const std::vector<float>& model,
                         const char* flag) {
    if (given.empty()) return model;
    if (given.size() != static_cast<size_t>(info.in_channels))
      core::throw_input("--{}: expected {} values (one per input channel), got {}", flag,
                        info.in_channels, given.size());
    return given;
  };
  return data::eval_transform(info.image_size, info.in_channels,
                              per_channel(options.mean, info.mean, "mean"),
                              per_channel(options.std, info.std, "std"), info.crop_pct);
}

std::vector<float> preprocess_files(const std::vector<std::string>& images,
                                    const data::TransformOptions& transform) {
  const size_t per_image = static_cast<size_t>(transform.channels) *
                           static_cast<size_t>(transform.size) *
                           static_cast<size_t>(transform.size);  // C * S * S
  std::vector<float> buffer(per_image * images.size());
  std::mt19937_64 rng(0);  // eval transforms draw nothing; required by the signature
  for (size_t i = 0; i < images.size(); ++i) {
    const auto image = data::load_image_file(images[i], transform.channels);
    data::apply_transform(image, transform, rng, buffer.data() + i * per_image);
  }
  return buffer;
}

std::vector<std::string> class_names_from(const std::string& spec,
                                          const std::vector<std::string>& fallback) {
  if (spec.empty()) return fallback;
  if (std::filesystem::is_regular_file(spec)) {
    std::vector<std::string> names;
    std::istringstream in(core::read_file_text(spec));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) names.push_back(line);
    return names;
  }
  return data::open_dataset(data::parse_dataset_spec(spec), data::Split::Test)->class_names();
}

std::vector<ImagePrediction> predictions_for(const std::vector<std::string>& images,
                                             const std::vector<float>& logits, int64_t num_classes,
                                             const InferOptions& options,
                                             const std::vector<std::string>& file_names) {
  const auto names = class_names_from(options.class_names, file_names);
  const auto top = top_classes(logits, num_classes, options.top, names);
  std::vector<ImagePrediction> out;
  for (size_t i = 0; i < images.size(); ++i) out.push_back({images[i], top.at(i)});
  return out;
}

std::vector<ImagePrediction> classify_files(runtime::Engine& engine,
                                            const std::vector<std::string>& images,
                                            const InferOptions& options) {
  const runtime::ModelInfo& info = engine.info();
  const auto buffer = preprocess_files(images, eval_transform(info, options));
  std::vector<float> logits(images.size() * static_cast<size_t>(info.num_classes));  // (B, K)
  engine.run(buffer.data(), static_cast<int>(images.size()), logits.data());
  return predictions_for(images, logits, info.num_classes, options, info.class_names);
}

}  // namespace vitopt::infer
