// `vitopt distill`: being written (its layer lands with its issue); registers nothing until then.
#include "cli/commands.h"

namespace vitopt::cli {

void register_distill(CLI::App& /*app*/) {}

}  // namespace vitopt::cli
