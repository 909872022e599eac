// The student presets of the search space (see search_context.h): each trained once by
// distillation from the model searched, saved in the output folder (a resumed search reloads it),
// and ordered by importance like the model, so its candidates inherit the same way.
#include <fmt/format.h>

#include "compress/lowrank/recover.h"
#include "core/error.h"
#include "core/timer.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "model/model_file.h"
#include "search/search_context.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"

namespace vitopt::search {

namespace fs = std::filesystem;

nlohmann::json prepare_students(SearchContext& ctx) {
  const auto& r = ctx.request;
  nlohmann::json log = nlohmann::json::array();
  for (int k = 1; k < ctx.space.num_bases(); ++k) {
    const auto& config = ctx.space.base(k);
    const fs::path file = r.out_dir / fmt::format("student_{}.safetensors", config.name);
    nlohmann::json rec = {{"student", k},
                          {"preset", config.name},
                          {"model", file.string()},
                          {"params", io::count_params(config)},
                          {"epochs", r.student_epochs}};
    core::Stopwatch clock;
    model::ViT student{nullptr};
    // Data parallel: rank 0's folder decides; the other ranks need only the student's structure
    // (its weights come from rank 0 whenever the ranks train it further).
    const bool root = train::dist::is_root();
    const bool reuse = train::dist::agree_with_root(fs::exists(file));
    if (reuse && !root) {
      student = model::ViT(config);
      student->init_weights(r.seed);
      rec["reused"] = true;
    } else if (reuse) {
      student = model::load_model(file);
      if (student->config().to_json() != config.to_json())
        core::throw_input(
            "{}: not the student preset '{}' of this search; delete it or use "
            "another --out",
            file.string(), config.name);
      rec["reused"] = true;
    } else {
      student = model::ViT(config);
      student->init_weights(r.seed);
      if (r.student_epochs > 0) {
        if (!r.quiet)
          fmt::print(stderr, "search: distilling student {} ({} params) for {} epoch(s)\n",
                     config.name, io::count_params(config), r.student_epochs);
        const std::string modes = teacher_modes(r.distill_modes, /*same_grid=*/true);
        std::optional<model::ViT> teacher;
        if (!modes.empty()) teacher = ctx.original;
        const auto options =
            finetune_options(ctx, r.out_dir / fmt::format("student_{}_run", config.name));
        rec["history"] = lowrank::recover(student, teacher, modes, options, r.student_epochs);
      }
      if (root) exporter::save_model(student, file);
    }
    student->eval();
    ctx.students.push_back(student);
    ctx.student_inheritance.push_back(inherit(student, r.criterion, ctx.calib, r.quiet));
    agree_on_orders(ctx.student_inheritance.back());
    rec["seconds"] = clock.seconds();
    log.push_back(rec);
  }
  return log;
}

}  // namespace vitopt::search
