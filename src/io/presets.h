// Named model shapes as a registry: one table of name -> one-line description + factory, so the
// CLI lists them, tests loop over every entry and a new preset is one row. Plain data (io/): the
// LibTorch side and the runtime's benchmarks read the same table.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::io {

struct PresetEntry {
  std::string name;         // e.g. "deit-tiny"
  std::string description;  // one line, e.g. "DeiT-Tiny/16 at 224x224: C 192, 12 blocks, 3 heads"
  std::function<ViTConfig()> make;  // returns the config before normalize()
};

// Every preset, in the order the CLI lists them.
const std::vector<PresetEntry>& presets();
std::vector<std::string> preset_names();
// The named preset, normalized. Throws InputError listing the names if unknown.
ViTConfig preset(const std::string& name);

}  // namespace vitopt::io
