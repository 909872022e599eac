// Strict JSON field reads for io's parsers (see json_fields.h).
#include "io/json_fields.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>

#include "core/error.h"
#include "core/json_util.h"

namespace vitopt::io::json_fields {
namespace {

std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return core::json_type_name(v) + " " + s;
}

}  // namespace

std::string path(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

void check_fields(const json& j, const std::vector<std::string>& allowed,
                  const std::string& source, const std::string& where) {
  if (!j.is_object()) {
    core::throw_bad_field(source, where.empty() ? "(top level)" : where, "a JSON object", shown(j));
  }
  for (const auto& item : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      core::throw_bad_field(source, path(where, item.key()),
                            fmt::format("one of the known fields [{}]", fmt::join(allowed, ", ")),
                            "an unknown field");
    }
  }
}

int64_t as_int64(const json& v, const std::string& source, const std::string& field) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX))
      core::throw_bad_field(source, field, "an integer", shown(v));
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer()) core::throw_bad_field(source, field, "an integer", shown(v));
  return v.get<int64_t>();
}

int as_int(const json& v, const std::string& source, const std::string& field) {
  const int64_t x = as_int64(v, source, field);
  if (x < INT_MIN || x > INT_MAX) core::throw_bad_field(source, field, "a 32-bit integer", shown(v));
  return static_cast<int>(x);
}

bool as_bool(const json& v, const std::string& source, const std::string& field) {
  if (!v.is_boolean()) core::throw_bad_field(source, field, "true or false", shown(v));
  return v.get<bool>();
}

double as_double(const json& v, const std::string& source, const std::string& field) {
  if (!v.is_number()) core::throw_bad_field(source, field, "a number", shown(v));
  return v.get<double>();
}

float as_float(const json& v, const std::string& source, const std::string& field) {
  const double d = as_double(v, source, field);
  if (std::isfinite(d) && std::fabs(d) > static_cast<double>(FLT_MAX))
    core::throw_bad_field(source, field, "a number in float range", shown(v));
  return static_cast<float>(d);
}

std::string as_string(const json& v, const std::string& source, const std::string& field) {
  if (!v.is_string()) core::throw_bad_field(source, field, "a string", shown(v));
  return v.get<std::string>();
}

std::vector<int> as_int_list(const json& v, const std::string& source, const std::string& field) {
  if (!v.is_array()) core::throw_bad_field(source, field, "a JSON array of integers", shown(v));
  std::vector<int> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(as_int(v[i], source, fmt::format("{}[{}]", field, i)));
  return out;
}

std::vector<float> as_float_list(const json& v, const std::string& source,
                                 const std::string& field) {
  if (!v.is_array()) core::throw_bad_field(source, field, "a JSON array of numbers", shown(v));
  std::vector<float> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(as_float(v[i], source, fmt::format("{}[{}]", field, i)));
  return out;
}

const json* find(const json& j, const std::string& key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

const json& require(const json& j, const std::string& key, const std::string& source,
                    const std::string& where) {
  const json* v = find(j, key);
  if (v == nullptr) core::throw_bad_field(source, path(where, key), "a value", "nothing (missing)");
  return *v;
}

}  // namespace vitopt::io::json_fields
