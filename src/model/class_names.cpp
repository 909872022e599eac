// Class names are optional metadata written by the trainer so `infer` can print names.
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/model_file.h"

namespace vitopt::model {

std::vector<std::string> class_names_from_file(const std::filesystem::path& path) {
  const auto file = io::SafeTensorsFile::load(path);
  const std::string* raw = file.metadata_value(kClassNamesKey);
  if (raw == nullptr) return {};
  const auto j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return {};
  std::vector<std::string> names;
  for (const auto& v : j) names.push_back(v.is_string() ? v.get<std::string>() : "");
  return names;
}

}  // namespace vitopt::model
