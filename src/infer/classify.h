// `infer` on the runtime: image files -> the model's eval preprocessing -> one batch through the
// engine -> top-k classes. The preprocessing half is shared with LibTorch eager (`vitopt infer
// --engine torch`), which only swaps the forward pass.
// Legend: B images, C channels, S image side.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/eval_transform.h"
#include "infer/predictions.h"
#include "vitopt/runtime.h"

namespace vitopt::infer {

struct InferOptions {
  int top = 5;                   // classes shown per image
  std::string class_names;       // "" (the model file's), a text file, or a dataset spec
  std::vector<float> mean, std;  // override the model's normalization (empty: the model's)
};

// The eval preprocessing of the model the engine runs, with InferOptions' mean/std overrides.
data::TransformOptions eval_transform(const runtime::ModelInfo& info, const InferOptions& options);

// Decodes every file (PNG/JPEG/BMP) to transform.channels and applies `transform`:
// (B, C, S, S) floats, one image after the other. Errors name the file.
std::vector<float> preprocess_files(const std::vector<std::string>& images,
                                    const data::TransformOptions& transform);

// Class names from a text file (one per line) or a dataset spec (e.g. fashion-mnist); `fallback`
// (usually those stored in the model file) when `spec` is empty.
std::vector<std::string> class_names_from(const std::string& spec,
                                          const std::vector<std::string>& fallback);

// Logits (B, K) -> one ImagePrediction per file, names from options.class_names or `file_names`.
std::vector<ImagePrediction> predictions_for(const std::vector<std::string>& images,
                                             const std::vector<float>& logits, int64_t num_classes,
                                             const InferOptions& options,
                                             const std::vector<std::string>& file_names);

// The whole runtime path: preprocess, one engine run, top-k.
std::vector<ImagePrediction> classify_files(runtime::Engine& engine,
                                            const std::vector<std::string>& images,
                                            const InferOptions& options);

}  // namespace vitopt::infer
