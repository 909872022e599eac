// Who this process is in a data-parallel job (rank, world size, rendezvous address), resolved
// from torchrun's environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK) or from
// the --nnodes/--node-rank/--nproc-per-node/--master flags; and the process-wide "am I rank 0"
// that decides who writes files. No LibTorch here: the launcher and the CLI use it too.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace vitopt::train::dist {

// Flags every training command accepts (registered once in cli/common).
struct DistFlags {
  std::optional<int> nnodes;          // machines in the job (default 1)
  std::optional<int> node_rank;       // this machine's index, 0..nnodes-1 (default 0)
  std::optional<int> nproc_per_node;  // worker processes on each machine (default 1)
  std::string master;  // HOST:PORT of rank 0's rendezvous store (default 127.0.0.1:29500)
  // A collective or rendezvous that waits longer fails the job (default: $VITOPT_DIST_TIMEOUT,
  // else 300 s). A dead peer is usually noticed at once (its sockets close); this bounds hangs.
  std::optional<double> timeout_s;
  // True when any of nnodes/node_rank/nproc_per_node/master was given.
  bool any_given() const { return nnodes || node_rank || nproc_per_node || !master.empty(); }
};

struct WorldSpec {
  int rank = 0;  // global rank, 0..world_size-1; rank 0 writes every file
  int world_size = 1;
  int local_rank = 0;        // index among this machine's workers
  int local_world_size = 1;  // workers on this machine
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 300;
  bool distributed() const { return world_size > 1; }
};

// What a training command should do with its flags and environment.
enum class Role {
  Single,    // world of one: train here, no communication
  Worker,    // one rank of a larger world (torchrun-style environment present): train here
  Launcher,  // flags ask for several local workers and no environment: start them, wait
};

struct Resolved {
  Role role = Role::Single;
  WorldSpec world;  // for Worker: this rank; for Launcher: the node (rank/local_rank unset)
};

// Environment lookup, replaceable in tests. Returns nullopt for unset variables.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

constexpr double kDefaultTimeoutS = 300;
constexpr int kDefaultPort = 29500;

// Resolves flags + environment. The environment wins (a launched worker sees both its launcher's
// flags and its variables); flags that contradict it are an InputError naming both values.
Resolved resolve_world(const DistFlags& flags, const EnvLookup& env = process_env());

// "host:port" -> (host, port); InputError naming `what` on a bad value.
std::pair<std::string, int> parse_host_port(const std::string& text, const std::string& what);

// The process-wide world, set once by the command that starts a worker (default: world of one).
void set_process_world(const WorldSpec& world);
const WorldSpec& process_world();
inline bool is_root() { return process_world().rank == 0; }

}  // namespace vitopt::train::dist
