// The fine-tuning flags every command that edits a trained model shares (prune, factorize,
// share): learning rate, batch size, training subset and loader threads.
#pragma once

#include <CLI/CLI.hpp>

#include "compress/prune/finetune.h"

namespace vitopt::cli {

void add_finetune_flags(CLI::App* cmd, prune::FinetuneOptions& options);

}  // namespace vitopt::cli
