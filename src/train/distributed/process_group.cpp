// The process-wide communicator of a data-parallel worker (see communicator.h): connected once by
// the command that starts the worker, read by the trainer and the jobs that write files. Built
// with or without Gloo (the connection itself is communicator.cpp's).
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <mutex>

#include "core/error.h"
#include "train/distributed/communicator.h"

namespace vitopt::train::dist {
namespace {

Communicator* g_current = nullptr;  // leaked on purpose (see header)
std::mutex g_mutex;

}  // namespace

void require_available(const std::string& what) {
  if (available()) return;
  core::throw_input(
      "{}: data-parallel training is unavailable in this build of vitopt (CMake found no "
      "c10d/Gloo headers: install libgloo-dev and reconfigure); run in one process",
      what);
}

Communicator* current() { return g_current; }

void init_process_group(const WorldSpec& world) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_current != nullptr) {
    if (g_current->rank() != world.rank || g_current->world_size() != world.world_size)
      core::throw_internal("init_process_group: already connected as rank {} of {}",
                           g_current->rank(), g_current->world_size());
    return;
  }
  if (world.world_size > 1) {
    require_available(fmt::format("rank {} of {}", world.rank, world.world_size));
    g_current = connect(world).release();
  }
  set_process_world(world);  // only once connected: a failed start leaves a world of one
}

bool agree_with_root(bool value) {
  if (g_current == nullptr) return value;
  std::vector<at::Tensor> flag{at::full({1}, value ? 1 : 0, at::kInt)};
  g_current->broadcast(flag, 0);
  return flag[0].item<int>() != 0;
}

std::string result_of_root(const std::function<std::string()>& compute, const std::string& what) {
  if (g_current == nullptr) return compute();
  return g_current->result_of_root(compute, what);
}

}  // namespace vitopt::train::dist
