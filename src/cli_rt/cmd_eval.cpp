// `vitopt-rt eval`: top-1/top-5 accuracy of one model file on a labelled dataset (a folder of
// class sub-folders, IDX files, CIFAR, ...) or on an IDX images/labels file pair.
#include <fmt/format.h>

#include <iostream>

#include "cli_rt/commands.h"
#include "core/error.h"
#include "data/idx_dataset.h"
#include "infer/accuracy.h"

namespace vitopt::cli_rt {

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Accuracy of a model file on a labelled dataset");
  struct Flags {
    RuntimeFlags rt;
    infer::AccuracyOptions acc;
    std::string model, data, images, labels, split = "test";
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data,-d", f->data,
                  "Dataset: a folder (class sub-folders, IDX or CIFAR files) or a name such as "
                  "imagefolder:DIR, cifar10:DIR, fashion-mnist");
  auto* images = cmd->add_option("--images", f->images, "IDX images file (with --labels)")
                     ->check(CLI::ExistingFile);
  auto* labels = cmd->add_option("--labels", f->labels, "IDX labels file (with --images)")
                     ->check(CLI::ExistingFile);
  images->needs(labels);
  labels->needs(images);
  cmd->add_option("--split", f->split, "test or train (with --data)")
      ->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--limit", f->acc.limit, "Evaluate only the first N images");
  cmd->add_option("--batch-size,-b", f->acc.batch_size, "Images per engine run")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--workers", f->acc.workers, "Decode threads")->check(CLI::Range(0, 64));
  add_runtime_flags(cmd, f->rt);
  cmd->callback([f] {
    if (f->data.empty() == f->images.empty())
      core::throw_input("eval: give either --data DATASET or --images FILE --labels FILE");
    std::shared_ptr<data::Dataset> dataset;
    if (!f->images.empty())
      dataset = data::open_idx_pair(f->images, f->labels);
    else
      dataset = data::open_dataset(data::parse_dataset_spec(f->data),
                                   f->split == "train" ? data::Split::Train : data::Split::Test);
    auto engine = runtime::Engine::load(f->model, f->rt.options());
    const auto r = infer::runtime_accuracy(*engine, dataset, f->acc);
    if (f->rt.json) {
      auto j = r.to_json();
      j["model"] = f->model;
      std::cout << j.dump(2) << std::endl;
      return;
    }
    fmt::print("{}\n{}\n", f->model, r.dataset);
    fmt::print("top-1 {:.2f}%  top-5 {:.2f}%  ({} images, {:.1f} img/s)\n", 100 * r.top1,
               100 * r.top5, r.images,
               r.seconds > 0 ? static_cast<double>(r.images) / r.seconds : 0.0);
  });
}

}  // namespace vitopt::cli_rt
