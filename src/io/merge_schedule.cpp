// Parsing and applying token-merging schedules (see merge_schedule.h).
#include "io/merge_schedule.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace vitopt::io {
namespace {

constexpr int kMaxMergeR = 16384;  // ViTConfig's token limit

const char* kExpected =
    "a token count per block like 8, one value per block like 8,8,4,0, decreasing[:R], or off";

int parse_count(const std::string& text, const std::string& spec, const std::string& source) {
  size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < 0 || v > kMaxMergeR)
    core::throw_input("{}: '{}' is not a valid merge schedule: expected {} (counts in [0, {}])",
                      source, spec, kExpected, kMaxMergeR);
  return v;
}

}  // namespace

std::vector<int> parse_merge_schedule(const std::string& spec, int depth, const std::string& source) {
  if (depth < 1) core::throw_internal("parse_merge_schedule: depth {}", depth);
  const auto d = static_cast<size_t>(depth);
  if (spec == "off") return std::vector<int>(d, 0);
  if (spec.rfind("decreasing", 0) == 0) {
    int mean = 8;
    if (spec.size() > 10) {
      if (spec[10] != ':')
        core::throw_input("{}: '{}' is not a valid merge schedule: expected {}", source, spec, kExpected);
      mean = parse_count(spec.substr(11), spec, source);
    }
    std::vector<int> r(d);
    for (int b = 0; b < depth; ++b)
      r[static_cast<size_t>(b)] = static_cast<int>(
          std::lround(2.0 * mean * (depth - b) / static_cast<double>(depth + 1)));
    return r;
  }
  if (spec.find(',') == std::string::npos) return std::vector<int>(d, parse_count(spec, spec, source));
  std::vector<int> r;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) r.push_back(parse_count(item, spec, source));
  if (!spec.empty() && spec.back() == ',') r.push_back(parse_count("", spec, source));
  if (r.size() != d)
    core::throw_input("{}: '{}' has {} values: expected one per block ({})", source, spec, r.size(), depth);
  return r;
}

void set_merge_schedule(ViTConfig& c, const std::vector<int>& merge_r) {
  if (merge_r.size() != c.blocks.size())
    core::throw_internal("set_merge_schedule: {} values for {} blocks", merge_r.size(), c.blocks.size());
  for (size_t b = 0; b < merge_r.size(); ++b) c.blocks[b].merge_r = merge_r[b];
}

std::vector<int> merge_schedule(const ViTConfig& c) {
  std::vector<int> r;
  for (const BlockConfig& b : c.blocks) r.push_back(b.merge_r);
  return r;
}

}  // namespace vitopt::io
