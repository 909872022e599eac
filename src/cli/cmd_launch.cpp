// `vitopt launch`: torchrun for vitopt. Starts --nproc-per-node workers of a data-parallel job on
// this machine, each running the command after `--` (a vitopt sub-command, or a program given by
// path) with the rendezvous variables set and the cores split between them.
#include <fmt/format.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "train/distributed/communicator.h"
#include "train/distributed/launcher.h"

namespace vitopt::cli {

void register_launch(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "launch",
      "Start the data-parallel workers of a training command on this machine (like torchrun): "
      "vitopt launch --nproc-per-node 2 -- train --epochs 1 --out run");
  struct Flags {
    train::dist::DistFlags dist;
    int threads = 0;
    bool quiet = false;
    std::vector<std::string> command;
  };
  auto f = std::make_shared<Flags>();
  add_dist_flags(cmd, f->dist);
  cmd->add_option("--threads", f->threads,
                  "Threads per worker (0: this machine's cores divided by --nproc-per-node)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet,-q", f->quiet, "No launcher messages (the workers print as usual)");
  cmd->add_option("command", f->command,
                  "After --: the vitopt command each worker runs (train, prune, quantize, distill) "
                  "or the path of a program")
      ->required();
  cmd->callback([f] {
    namespace d = train::dist;
    d::require_available("vitopt launch");  // a build without c10d/Gloo has no workers to start
    if (!f->dist.nproc_per_node) f->dist.nproc_per_node = 1;
    // Resolve from the flags alone: a launcher inside a launched worker would double the world.
    const auto resolved = d::resolve_world(f->dist, [](const std::string& name) {
      return name == "VITOPT_DIST_TIMEOUT" ? d::process_env()(name) : std::nullopt;
    });
    d::LaunchSpec spec;
    spec.node = resolved.world;
    spec.threads_per_worker = f->threads;
    spec.quiet = f->quiet;
    const auto& first = f->command.front();
    if (first.find('/') != std::string::npos) {
      if (::access(first.c_str(), X_OK) != 0)
        core::throw_input("launch: '{}' is not an executable program", first);
      spec.argv = f->command;
    } else {
      spec.argv = {d::self_executable()};
      spec.argv.insert(spec.argv.end(), f->command.begin(), f->command.end());
    }
    const int code = d::launch_workers(spec);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace vitopt::cli
