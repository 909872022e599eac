// `vitopt quantize`: being written (its layer lands with its issue); registers nothing until then.
#include "cli/commands.h"

namespace vitopt::cli {

void register_quantize(CLI::App& /*app*/) {}

}  // namespace vitopt::cli
