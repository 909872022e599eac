// Built instead of communicator.cpp when CMake finds no c10d/Gloo headers (libgloo-dev missing):
// a world of one trains as usual; asking for more ranks is an InputError saying why.
#include <fmt/format.h>

#include "core/error.h"
#include "train/distributed/communicator.h"

namespace vitopt::train::dist {

bool available() { return false; }

std::unique_ptr<Communicator> connect(const WorldSpec& world) {
  require_available(fmt::format("distributed: rank {} of {}", world.rank, world.world_size));
  core::throw_internal("connect: unreachable");  // require_available threw
}

}  // namespace vitopt::train::dist
