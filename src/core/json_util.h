// Reading typed fields out of nlohmann::json with errors that name the source file and the field
// path, so a bad config or model header says exactly what to fix.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace vitopt::core {

using json = nlohmann::json;

std::string json_type_name(const json& j);

// Required field: missing or wrong type -> InputError "<source>: field '<key>': expected ...".
template <typename T>
T json_get(const json& obj, const std::string& key, const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end()) throw_bad_field(source, key, "a value", "nothing (field missing)");
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    throw_bad_field(source, key, "a value of the right type", json_type_name(*it) + " " + it->dump());
  }
}

// Optional field with a default.
template <typename T>
T json_get_or(const json& obj, const std::string& key, const T& fallback,
              const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    throw_bad_field(source, key, "a value of the right type", json_type_name(*it) + " " + it->dump());
  }
}

// Parses text as JSON; a syntax error names the source and byte offset.
json json_parse(const std::string& text, const std::string& source);

}  // namespace vitopt::core
