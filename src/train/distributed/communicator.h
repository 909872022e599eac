// The process group of a data-parallel job: c10d TCPStore rendezvous + ProcessGroupGloo, behind
// a small interface so that only communicator.cpp includes the c10d/Gloo headers (they are slow
// to compile and need libgloo-dev; a build without them compiles communicator_unavailable.cpp,
// where available() is false). Every failure (a peer died, a timeout) becomes a
// core::InternalError saying which rank lost contact and why, so no caller ever hangs.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/distributed/world.h"

namespace vitopt::train::dist {

// An all-reduce in flight; wait() returns when it is done (or throws InternalError).
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Sum over ranks, in place, started now and finished by wait(). Collectives must be started
  // in the same order on every rank (Gloo matches them by sequence).
  virtual std::unique_ptr<PendingReduce> allreduce_sum_async(at::Tensor& flat) = 0;
  void allreduce_sum(at::Tensor& t) { allreduce_sum_async(t)->wait(); }
  // Root's values into every rank's tensors (same shapes and dtypes on every rank).
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root = 0) = 0;
  // Root's string to every rank (length first, then the bytes).
  virtual void broadcast_string(std::string& text, int root = 0) = 0;
  virtual void barrier() = 0;

  // Root's result of work that only root does and that may outlast --dist-timeout (a circuit
  // discovery, the search's evolution): root runs `compute` and publishes its text in the
  // rendezvous store; the others wait for it as long as root is alive. While it computes, root
  // beats a heartbeat key in the store (five times per timeout, at most once a second) from a
  // background thread; a waiter fails (InternalError) when the heartbeat stops for the timeout
  // (root died, or its store went away). When `compute` throws on root, the others fail naming
  // `what` and root's message, and root rethrows. Every rank must call it at the same point.
  virtual std::string result_of_root(const std::function<std::string()>& compute,
                                     const std::string& what) = 0;
};

// False when this build has no c10d/Gloo (libgloo-dev was missing at configure time): connect()
// then throws InputError, and so does require_available().
bool available();
// InputError "<what>: data-parallel training is unavailable in this build ..." unless available().
void require_available(const std::string& what);

// Rendezvous through a TCPStore at world.master_addr:master_port (rank 0 serves it) and builds a
// Gloo process group with world.timeout_s on every operation. The Gloo device binds to the
// interface in GLOO_SOCKET_IFNAME if set, to loopback when the master is a loopback address,
// else to the address this machine's hostname resolves to.
std::unique_ptr<Communicator> connect(const WorldSpec& world);

// The process-wide communicator (null in a world of one). init_process_group connects once and
// records the world (set_process_world); later calls with the same world are no-ops. The group
// lives until the process exits (never destroyed: a failed peer must not make exit hang).
// (process_group.cpp; a larger world in a build without Gloo is an InputError.)
Communicator* current();
void init_process_group(const WorldSpec& world);

// Rank 0's `value` on every rank (a decision only rank 0 can make, e.g. from its files); the
// value itself in a world of one. A collective: every rank must call it at the same point.
bool agree_with_root(bool value);

// Communicator::result_of_root on the process-wide group; in a world of one, compute() itself.
std::string result_of_root(const std::function<std::string()>& compute, const std::string& what);

}  // namespace vitopt::train::dist
