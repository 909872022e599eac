// Strict typed reads of model-file JSON fields for io's parsers (config, quant spec): the JSON
// type must match exactly (an integer field refuses 3.5, "3" and 1e300) and numbers must fit the
// C++ type, so no hostile header reaches a narrowing conversion. Unknown keys are refused by
// check_fields. Errors name the source, the field path, the expected and the actual value.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vitopt::io::json_fields {

using nlohmann::json;

// "<source>: field '<where>.<key>'" path helper.
std::string path(const std::string& where, const std::string& key);

// Refuses anything but an object whose keys are all in `allowed`.
void check_fields(const json& j, const std::vector<std::string>& allowed,
                  const std::string& source, const std::string& where);

// Converters of one value (field path `field` for errors).
int as_int(const json& v, const std::string& source, const std::string& field);
int64_t as_int64(const json& v, const std::string& source, const std::string& field);
bool as_bool(const json& v, const std::string& source, const std::string& field);
double as_double(const json& v, const std::string& source, const std::string& field);
float as_float(const json& v, const std::string& source, const std::string& field);
std::string as_string(const json& v, const std::string& source, const std::string& field);
std::vector<int> as_int_list(const json& v, const std::string& source, const std::string& field);
std::vector<float> as_float_list(const json& v, const std::string& source,
                                 const std::string& field);

// The member `key` of object `j` (nullptr when absent or null).
const json* find(const json& j, const std::string& key);
// A required member (InputError when absent).
const json& require(const json& j, const std::string& key, const std::string& source,
                    const std::string& where);

// Optional member read with a converter: `fallback` when absent or null.
template <typename T, typename Conv>
T get_or(const json& j, const std::string& key, T fallback, const std::string& source,
         const std::string& where, Conv conv) {
  const json* v = find(j, key);
  return v == nullptr ? fallback : conv(*v, source, path(where, key));
}

}  // namespace vitopt::io::json_fields
