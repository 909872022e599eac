#include "core/json_util.h"

namespace vitopt::core {

std::string json_type_name(const json& j) { return j.type_name(); }

json json_parse(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw_input("{}: invalid JSON at byte {}: {}", source, e.byte, e.what());
  } catch (const json::exception& e) {  // e.g. out_of_range for numbers beyond double
    throw_input("{}: invalid JSON: {}", source, e.what());
  }
}

}  // namespace vitopt::core
