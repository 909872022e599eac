// `--set key.path=value` overrides of a recipe, applied to its YAML tree before parsing so that the
// recipe's strict parser types and checks them like values written in the file. Paths walk
// mappings by key and stage lists by entry name (or index): `prune.global-50.amount=0.4`.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace vitopt::pipeline {

struct Override {
  std::string path;   // "train.epochs", "prune.heads-neurons-50.methods"
  std::string value;  // YAML text: "3", "[heads, neurons]", "none"
  std::string text;   // as given on the command line, for messages
};

// Splits "key.path=value"; throws InputError for a missing '=' or an empty path segment.
Override parse_override(const std::string& text);

// Applies the overrides in order. Returns, for every recipe path an override set or created
// (in the parser's spelling: "prune[0].amount"), the override's text, so the parser can name
// "--set ..." instead of the file when that value is wrong. A path into a stage list that names
// no entry throws InputError listing the entries.
std::map<std::string, std::string> apply_overrides(YAML::Node& root,
                                                   const std::vector<Override>& overrides);

}  // namespace vitopt::pipeline
