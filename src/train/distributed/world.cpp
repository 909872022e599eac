// Resolution of the data-parallel world from torchrun-style variables or launch flags.
#include "train/distributed/world.h"

#include <cstdlib>
#include <tuple>

#include "core/error.h"

namespace vitopt::train::dist {
namespace {

WorldSpec g_world;  // the process's world; a world of one until a worker command sets it

int parse_int(const std::string& text, const std::string& what, int lo, int hi) {
  try {
    size_t used = 0;
    const long v = std::stol(text, &used);
    if (used == text.size() && v >= lo && v <= hi) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  core::throw_input("{}: expected an integer in [{}, {}], got '{}'", what, lo, hi, text);
}

int env_int(const EnvLookup& env, const std::string& name, int fallback, int lo, int hi) {
  const auto v = env(name);
  return v ? parse_int(*v, "environment variable " + name, lo, hi) : fallback;
}

double resolve_timeout(const DistFlags& f, const EnvLookup& env) {
  double t = kDefaultTimeoutS;
  if (f.timeout_s) {
    t = *f.timeout_s;
  } else if (const auto v = env("VITOPT_DIST_TIMEOUT")) {
    try {
      t = std::stod(*v);
    } catch (const std::exception&) {
      core::throw_input("environment variable VITOPT_DIST_TIMEOUT: expected seconds, got '{}'", *v);
    }
  }
  if (!(t > 0) || t > 86400)
    core::throw_input("--dist-timeout: expected 0 < seconds <= 86400, got {}", t);
  return t;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

std::pair<std::string, int> parse_host_port(const std::string& text, const std::string& what) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    core::throw_input("{}: expected HOST:PORT (e.g. 10.0.0.1:29500), got '{}'", what, text);
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')  // [::1]:29500
    host = host.substr(1, host.size() - 2);
  return {host, parse_int(text.substr(colon + 1), what + " port", 1, 65535)};
}

Resolved resolve_world(const DistFlags& f, const EnvLookup& env) {
  Resolved r;
  WorldSpec& w = r.world;
  w.timeout_s = resolve_timeout(f, env);
  if (f.nnodes && *f.nnodes < 1) core::throw_input("--nnodes: expected >= 1, got {}", *f.nnodes);
  if (f.nproc_per_node && *f.nproc_per_node < 1)
    core::throw_input("--nproc-per-node: expected >= 1, got {}", *f.nproc_per_node);
  const int nnodes = f.nnodes.value_or(1);
  const int nproc = f.nproc_per_node.value_or(1);
  const int node_rank = f.node_rank.value_or(0);
  if (node_rank < 0 || node_rank >= nnodes)
    core::throw_input("--node-rank: expected 0..{} (--nnodes {}), got {}", nnodes - 1, nnodes,
                      node_rank);
  if (!f.master.empty())
    std::tie(w.master_addr, w.master_port) = parse_host_port(f.master, "--master");

  const auto env_world = env("WORLD_SIZE");
  const auto env_rank = env("RANK");
  if (env_world || env_rank) {  // a launched worker (ours or torchrun's)
    if (!env_world || !env_rank)
      core::throw_input("environment: RANK and WORLD_SIZE must be set together (got {}={})",
                        env_world ? "WORLD_SIZE" : "RANK", env_world ? *env_world : *env_rank);
    w.world_size = env_int(env, "WORLD_SIZE", 1, 1, 1 << 20);
    w.rank = env_int(env, "RANK", 0, 0, w.world_size - 1);
    w.local_rank = env_int(env, "LOCAL_RANK", w.rank, 0, w.world_size - 1);
    w.local_world_size =
        env_int(env, "LOCAL_WORLD_SIZE", f.nproc_per_node.value_or(w.world_size), 1, w.world_size);
    w.node_rank = env_int(env, "GROUP_RANK", node_rank, 0, w.world_size - 1);
    w.nnodes = (w.world_size + w.local_world_size - 1) / w.local_world_size;
    if (const auto a = env("MASTER_ADDR")) w.master_addr = *a;
    w.master_port =
        env_int(env, "MASTER_PORT", f.master.empty() ? kDefaultPort : w.master_port, 1, 65535);
    if (f.any_given() && nnodes * nproc != w.world_size)
      core::throw_input(
          "--nnodes {} x --nproc-per-node {} = {} workers, but WORLD_SIZE={} in the "
          "environment; drop the flags or fix the environment",
          nnodes, nproc, nnodes * nproc, w.world_size);
    r.role = w.world_size > 1 ? Role::Worker : Role::Single;
    return r;
  }
  w.nnodes = nnodes;
  w.node_rank = node_rank;
  w.local_world_size = nproc;
  w.world_size = nnodes * nproc;
  r.role = w.world_size > 1 ? Role::Launcher : Role::Single;
  return r;
}

void set_process_world(const WorldSpec& world) { g_world = world; }
const WorldSpec& process_world() { return g_world; }

}  // namespace vitopt::train::dist
