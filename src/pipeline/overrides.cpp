#include "pipeline/overrides.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace vitopt::pipeline {

namespace {

std::vector<std::string> split_path(const Override& o) {
  std::vector<std::string> segments;
  std::string seg;
  for (char ch : o.path + ".") {
    if (ch != '.') {
      seg += ch;
      continue;
    }
    if (seg.empty())
      core::throw_input("--set {}: empty key in path '{}' (expected key.path=value)", o.text, o.path);
    segments.push_back(seg);
    seg.clear();
  }
  return segments;
}

// The index of the list entry named `seg` (or numbered by it), or throws naming the entries.
size_t find_entry(const YAML::Node& list, const std::string& seg, const std::string& where,
                  const Override& o) {
  std::vector<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto name = list[i].IsMap() && list[i]["name"] ? list[i]["name"].as<std::string>("") : "";
    if (name == seg) return i;
    names.push_back(name.empty() ? std::to_string(i) : name);
  }
  if (!seg.empty() && seg.find_first_not_of("0123456789") == std::string::npos &&
      std::stoul(seg) < list.size())
    return std::stoul(seg);
  core::throw_input("--set {}: '{}' has no entry named '{}' (entries: {})", o.text, where, seg,
                    names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")));
}

// Walks `node` along segments[i..], creating missing mappings; `where` is the parser's path so
// far. Copies of YAML::Node refer to the same tree, so writes through `child` land in the root.
void apply_at(YAML::Node node, const std::vector<std::string>& segments, size_t i,
              const std::string& where, const YAML::Node& value, const Override& o,
              std::map<std::string, std::string>& touched) {
  const auto& seg = segments[i];
  const bool last = i + 1 == segments.size();
  std::string path;
  if (node.IsSequence()) {
    const size_t index = find_entry(node, seg, where, o);
    path = fmt::format("{}[{}]", where, index);
    if (last) {
      node[index] = value;
      touched[path] = o.text;
      return;
    }
    apply_at(node[index], segments, i + 1, path, value, o, touched);
    return;
  }
  if (!node.IsMap() && !node.IsNull())
    core::throw_input("--set {}: '{}' is a single value, not a section with keys", o.text, where);
  path = where.empty() ? seg : where + "." + seg;
  if (last) {
    node[seg] = value;
    touched[path] = o.text;
    return;
  }
  if (!node[seg] || node[seg].IsNull()) {
    node[seg] = YAML::Node(YAML::NodeType::Map);
    touched[path] = o.text;  // created here: an unknown section is the override's fault
  }
  YAML::Node child = node[seg];
  apply_at(child, segments, i + 1, path, value, o, touched);
}

}  // namespace

Override parse_override(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    core::throw_input("--set {}: expected key.path=value (e.g. train.epochs=3)", text);
  Override o{text.substr(0, eq), text.substr(eq + 1), text};
  split_path(o);  // validates the path now, before any work
  return o;
}

std::map<std::string, std::string> apply_overrides(YAML::Node& root,
                                                   const std::vector<Override>& overrides) {
  std::map<std::string, std::string> touched;
  if (!overrides.empty() && (!root || root.IsNull())) root = YAML::Node(YAML::NodeType::Map);
  for (const auto& o : overrides) {
    YAML::Node value;
    try {
      value = YAML::Load(o.value);
    } catch (const YAML::Exception& e) {
      core::throw_input("--set {}: the value is not valid YAML: {}", o.text, e.msg);
    }
    apply_at(root, split_path(o), 0, "", value, o, touched);
  }
  return touched;
}

}  // namespace vitopt::pipeline
