// A pipeline recipe: YAML that names the data, the model and the stages with their options.
// Parsing is strict: an unknown key or a value of the wrong type is an InputError naming the file
// and the key path, so a typo never silently falls back to a default.
#pragma once

#include <filesystem>
#include <string>

#include "train/train_job.h"

namespace vitopt::pipeline {

struct Recipe {
  std::string name = "default";
  std::filesystem::path source;        // where the recipe came from (a file name, for messages)
  std::string text;                    // the YAML as given, copied into the run folder
  std::filesystem::path out = "runs/default";  // run folder
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  train::TrainJob train;               // data, model config, limits, options (out_dir set later)
  int64_t eval_batch_size = 256;
  size_t eval_limit = 0;
  bool resume = true;                  // continue an interrupted run found in the run folder
};

Recipe load_recipe(const std::filesystem::path& path);
Recipe parse_recipe(const std::string& yaml_text, const std::string& source);

}  // namespace vitopt::pipeline
