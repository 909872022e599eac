// Error types for the whole project. InputError = the user gave us something wrong (bad file,
// bad flag, bad value: exit code 2); InternalError = our bug or an environment failure (exit 1).
// Messages name the file, the field, the expected and the actual value so the user can fix it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace vitopt::core {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  virtual int exit_code() const = 0;
};

class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(what) {}
  int exit_code() const override { return 2; }
};

class InternalError : public Error {
 public:
  explicit InternalError(const std::string& what) : Error(what) {}
  int exit_code() const override { return 1; }
};

// "<file>: field '<field>': expected <expected>, got <actual>".
[[noreturn]] void throw_bad_field(const std::string& file, const std::string& field,
                                  const std::string& expected, const std::string& actual);

template <typename... Args>
[[noreturn]] void throw_input(fmt::format_string<Args...> f, Args&&... args) {
  throw InputError(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void throw_internal(fmt::format_string<Args...> f, Args&&... args) {
  throw InternalError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace vitopt::core
