// Budgets and objectives of the search (see budget.h): text parsing with aliases and suffixes,
// relative limits resolved against the baseline, and Deb's violation measure.
#include "search/budget.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace vitopt::search {
namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

// "a, b,c" -> {"a", "b", "c"} (items trimmed, empty ones kept so callers can refuse them).
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    out.push_back(trim(text.substr(start, end == std::string::npos ? end : end - start)));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

std::string canonical_metric(const std::string& name) {
  if (name == "latency") return "latency-ms";
  if (name == "size") return "size-mb";
  if (name == "memory") return "memory-mb";
  return name;
}

bool is_budget_metric(const std::string& name) {
  const auto& known = budget_metrics();
  return std::find(known.begin(), known.end(), name) != known.end();
}

std::string known_text(bool with_top1) {
  return fmt::format("{}{} (aliases: latency, size, memory)", with_top1 ? "top1, " : "",
                     fmt::join(budget_metrics(), ", "));
}

// "1.5M" -> 1.5e6, "25%" -> 0.25 (relative); nullopt-like `ok` false when not a positive number.
bool parse_value(const std::string& text, double& value, bool& relative) {
  std::string s = text;
  double scale = 1;
  relative = false;
  if (!s.empty()) {
    switch (s.back()) {
      case '%':
        scale = 0.01, relative = true;
        break;
      case 'k':
      case 'K':
        scale = 1e3;
        break;
      case 'M':
        scale = 1e6;
        break;
      case 'G':
        scale = 1e9;
        break;
      default:
        break;
    }
    if (scale != 1 || relative) s.pop_back();
  }
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (s.empty() || ec != std::errc() || ptr != end) return false;
  value *= scale;
  return std::isfinite(value) && value > 0;
}

}  // namespace

const std::vector<std::string>& budget_metrics() {
  static const std::vector<std::string> names{"params", "macs", "size-mb", "latency-ms",
                                              "memory-mb"};
  return names;
}

Budget Budget::parse(const std::string& text, const std::string& source) {
  Budget b;
  b.text = text;
  if (trim(text).empty()) return b;
  for (const std::string& entry : split(text, ',')) {
    const auto eq = entry.find('=');
    if (entry.empty() || eq == std::string::npos)
      core::throw_input("{}: budget '{}': entry '{}': expected metric=value (e.g. params=1.5M)",
                        source, text, entry);
    Limit l;
    const std::string name = trim(entry.substr(0, eq));
    l.metric = canonical_metric(name);
    if (!is_budget_metric(l.metric))
      core::throw_input("{}: budget '{}': unknown metric '{}' (known: {})", source, text, name,
                        known_text(false));
    const std::string value = trim(entry.substr(eq + 1));
    if (!parse_value(value, l.value, l.relative))
      core::throw_input(
          "{}: budget '{}': {}: expected a positive number with an optional k/M/G suffix or a "
          "trailing % of the baseline, got '{}'",
          source, text, l.metric, value);
    for (const Limit& other : b.limits)
      if (other.metric == l.metric)
        core::throw_input("{}: budget '{}': {} is limited twice", source, text, l.metric);
    b.limits.push_back(l);
  }
  return b;
}

Budget Budget::resolved(const Metrics& baseline) const {
  Budget b = *this;
  for (Limit& l : b.limits) {
    if (!l.relative) continue;
    const auto it = baseline.find(l.metric);
    if (it == baseline.end())
      core::throw_input("budget '{}': {}={}% needs the baseline's {}, which was not measured", text,
                        l.metric, l.value * 100, l.metric);
    l.value *= it->second;
    l.relative = false;
  }
  return b;
}

double Budget::violation(const Metrics& m) const {
  double v = 0;
  for (const Limit& l : limits) {
    if (l.relative)
      core::throw_internal("budget '{}': {} is still relative (call resolved() first)", text,
                           l.metric);
    const auto it = m.find(l.metric);
    if (it == m.end())
      core::throw_input("budget '{}': the candidate's {} was not measured", text, l.metric);
    v += std::max(0.0, it->second / l.value - 1);
  }
  return v;
}

std::vector<std::string> Budget::metrics() const {
  std::vector<std::string> out;
  for (const Limit& l : limits) out.push_back(l.metric);
  return out;
}

std::vector<std::string> parse_objectives(const std::string& text, const std::string& source) {
  std::vector<std::string> out;
  if (trim(text).empty())
    core::throw_input("{}: no objectives: expected a list such as top1,latency (known: {})", source,
                      known_text(true));
  for (const std::string& item : split(text, ',')) {
    const std::string name = canonical_metric(item);
    if (name != "top1" && !is_budget_metric(name))
      core::throw_input("{}: objectives '{}': unknown objective '{}' (known: {})", source, text,
                        item, known_text(true));
    if (std::find(out.begin(), out.end(), name) != out.end())
      core::throw_input("{}: objectives '{}': {} is listed twice", source, text, name);
    out.push_back(name);
  }
  return out;
}

std::vector<double> objective_values(const std::vector<std::string>& objectives, const Metrics& m) {
  std::vector<double> out;
  for (const std::string& name : objectives) {
    const auto it = m.find(name);
    if (it == m.end())
      core::throw_input("objective {}: the candidate's {} was not measured", name, name);
    out.push_back(name == "top1" ? 1 - it->second : it->second);
  }
  return out;
}

Scored score(const std::vector<std::string>& objectives, const std::vector<Budget>& budgets,
             const Metrics& m) {
  Scored s;
  s.objectives = objective_values(objectives, m);
  if (!budgets.empty()) {
    s.violation = std::numeric_limits<double>::infinity();
    for (const Budget& b : budgets) s.violation = std::min(s.violation, b.violation(m));
  }
  return s;
}

}  // namespace vitopt::search
