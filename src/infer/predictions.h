// Top-k class predictions from logits, and how `infer` prints them (JSON and text). Both engines
// of `vitopt infer` and `vitopt-rt infer` go through here, so their outputs agree by construction.
// Legend: B images, K classes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vitopt::infer {

struct ClassScore {
  int64_t cls = 0;
  std::string name;        // "" when the model file and --class-names give none
  double probability = 0;  // softmax of the logits, in [0, 1]
};

struct ImagePrediction {
  std::string image;            // the file as given on the command line
  std::vector<ClassScore> top;  // most probable first
};

// Softmax of each row of `logits` (B, K), then its `k` most probable classes (ties: lower class
// index first; k is clamped to K). `names` may be shorter than K.
std::vector<std::vector<ClassScore>> top_classes(const std::vector<float>& logits,
                                                 int64_t num_classes, int k,
                                                 const std::vector<std::string>& names);

// [{"image": ..., "top": [{"class", "name", "probability"}...]}...]
nlohmann::json predictions_json(const std::vector<ImagePrediction>& predictions);
// One line per image, then one indented line per class: "  cls  pp.pp%  name".
std::string predictions_text(const std::vector<ImagePrediction>& predictions);

}  // namespace vitopt::infer
