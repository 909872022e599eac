#include "core/error.h"

namespace vitopt::core {

void throw_bad_field(const std::string& file, const std::string& field, const std::string& expected,
                     const std::string& actual) {
  throw InputError(
      fmt::format("{}: field '{}': expected {}, got {}", file, field, expected, actual));
}

}  // namespace vitopt::core
