#include "cli/finetune_flags.h"

#include "cli/common.h"

namespace vitopt::cli {

void add_finetune_flags(CLI::App* cmd, prune::FinetuneOptions& o) {
  cmd->add_option("--lr", o.lr, "Fine-tuning peak learning rate")->check(greater_than(0));
  cmd->add_option("--batch-size,-b", o.batch_size, "Fine-tuning batch size")
      ->check(greater_than(0));
  cmd->add_option("--limit", o.limit, "Fine-tune on the first N training images");
  cmd->add_option("--workers", o.workers, "Data loader threads")->check(in_range(1, 64));
}

}  // namespace vitopt::cli
