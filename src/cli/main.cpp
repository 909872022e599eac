// vitopt entry point: sets up the thread environment, registers the sub-commands, and turns
// errors into one-line messages with exit code 2 (bad input) or 1 (internal failure).
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/threads.h"

int main(int argc, char** argv) {
  vitopt::core::ensure_thread_environment(argc, argv);
  vitopt::cli::set_command_line(argc, argv);
  CLI::App app{"vitopt: make Vision Transformers smaller and faster (train, compress, measure)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vitopt 0.1.0");
  vitopt::cli::register_init(app);
  vitopt::cli::register_info(app);
  vitopt::cli::register_train(app);
  vitopt::cli::register_eval(app);
  vitopt::cli::register_infer(app);
  vitopt::cli::register_pipeline(app);
  vitopt::cli::register_bench(app);
  vitopt::cli::register_quantize(app);
  vitopt::cli::register_prune(app);
  vitopt::cli::register_distill(app);
  vitopt::cli::register_factorize(app);
  vitopt::cli::register_share(app);
  vitopt::cli::register_merge(app);
  vitopt::cli::register_search(app);
  vitopt::cli::register_circuits(app);
  vitopt::cli::register_export(app);
  vitopt::cli::register_import(app);
  vitopt::cli::register_launch(app);
  // CLI11 reports an unknown command only as "A subcommand is required": name it and the choices.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const auto* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      fmt::print(stderr, "vitopt: error: unknown command '{}' (expected one of: {})\n", argv[1],
                 names);
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit as CLI11 prints them; every other flag error is bad input: exit 2.
    const auto failure = vitopt::cli::describe_parse_error(e);
    if (failure.is_help) return app.exit(e);
    if (failure.silent) return failure.exit_code;
    fmt::print(stderr, "vitopt: error: {}\nRun with --help for the flags and their values.\n",
               failure.message);
    return failure.exit_code;
  } catch (const vitopt::core::Error& e) {
    fmt::print(stderr, "vitopt: error: {}\n", e.what());
    return e.exit_code();
  } catch (const c10::Error& e) {
    fmt::print(stderr, "vitopt: internal error (LibTorch): {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "vitopt: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
