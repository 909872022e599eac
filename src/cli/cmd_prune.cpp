// `vitopt prune`: being written (its layer lands with its issue); registers nothing until then.
#include "cli/commands.h"

namespace vitopt::cli {

void register_prune(CLI::App& /*app*/) {}

}  // namespace vitopt::cli
