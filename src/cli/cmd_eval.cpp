// `vitopt eval`: top-1, top-5 and loss of a model file on a dataset split (the full evaluator with
// calibration, efficiency and reports builds on this), optionally written to metrics.json.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/file_util.h"
#include "train/data_bridge.h"
#include "train/evaluate.h"
#include "train/torch_env.h"

namespace vitopt::cli {

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model file on a dataset");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::string model, data = "fashion-mnist", split = "test", out;
    int64_t batch_size = 256;
    size_t limit = 0;
    int workers = 2;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data,-d", f->data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--split", f->split, "test or train")->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--batch-size,-b", f->batch_size, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--limit", f->limit, "Evaluate only the first N images");
  cmd->add_option("--workers", f->workers, "Data loader threads")->check(CLI::Range(1, 64));
  cmd->add_option("--out,-o", f->out, "Folder for metrics.json");
  add_import_flags(cmd, f->import);
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    train::configure_threads(f->common.threads);
    auto vit = model::load_model(f->model, import_hints(f->import));
    const auto device = train::parse_device(f->common.device);
    vit->to(device);
    const auto& config = vit->config();
    auto ds = train::open_dataset_for(
        f->data, config, f->split == "train" ? data::Split::Train : data::Split::Test, f->limit,
        f->common.seed);
    train::check_dataset_fits(*ds, config);
    data::LoaderOptions lopts;
    lopts.batch_size = f->batch_size;
    lopts.workers = f->workers;
    lopts.transform = train::eval_transform(config);
    data::DataLoader loader(ds, lopts);
    train::EvalOptions eopts;
    eopts.device = device;
    eopts.quiet = f->common.quiet || f->common.json;
    const auto r = train::evaluate(vit, loader, eopts);
    nlohmann::json j = {{"model", f->model},   {"data", ds->description()}, {"images", r.count},
                        {"top1", r.top1},      {"top5", r.top5},            {"loss", r.loss},
                        {"seconds", r.seconds}, {"images_per_s", r.images_per_s},
                        {"params", model::count_params(config)}, {"macs", model::count_macs(config)}};
    if (!f->out.empty())
      core::write_file_atomic(std::filesystem::path(f->out) / "metrics.json", j.dump(2) + "\n");
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      fmt::print("{}: top-1 {:.2f}%  top-5 {:.2f}%  loss {:.4f}  ({} images, {:.0f} img/s)\n",
                 f->model, 100 * r.top1, 100 * r.top5, r.loss, r.count, r.images_per_s);
  });
}

}  // namespace vitopt::cli
