// Building the returned models for good (see search_context.h).
#include <fmt/format.h>

#include <algorithm>

#include "compress/lowrank/recover.h"
#include "search/search_context.h"

namespace vitopt::search {

namespace fs = std::filesystem;

nlohmann::json deliver(SearchContext& ctx, const std::vector<Ranked>& ranked, const Budget& budget,
                       const fs::path& path) {
  const auto& r = ctx.request;
  nlohmann::json rec = {{"budget", budget.text}};
  if (ranked.empty()) {
    rec["error"] = "no evaluated candidate meets this budget";
    return rec;
  }
  for (const auto& c : ranked) {
    auto fp32 = build_fp32(ctx.base_of(c.genome), ctx.inheritance_of(c.genome), c.genome);
    nlohmann::json ft;
    if (r.finetune_epochs > 0) {
      auto work = path;
      work.replace_extension("");
      const auto options = finetune_options(ctx, work.string() + "_finetune");
      const std::string modes = teacher_modes(r.distill_modes, c.genome.resolution == 0);
      std::optional<model::ViT> teacher;
      if (!modes.empty()) teacher = ctx.original;
      ft = lowrank::recover(fp32, teacher, modes, options, r.finetune_epochs);
      fp32->eval();
    }
    const auto q = quantize_candidate(fp32, c.genome, ctx.calib_for(c.genome));
    save_candidate(fp32, q, c.genome, {{"budget", budget.text}, {"search_metrics", c.metrics}},
                   ctx.class_names, path);
    MeasureOptions mo = r.measure;
    mo.runs = std::max(mo.runs, 50);  // the decision that matters: more runs
    const auto m = measure_file(path, ctx.held_out_for(c.genome), mo);
    if (!budget.limits.empty() && !budget.satisfied(m)) {
      if (!r.quiet)
        fmt::print(stderr, "search: {} misses budget '{}' when re-measured; trying the next\n",
                   c.key, budget.text);
      continue;
    }
    rec.update({{"key", c.key},
                {"model", path.string()},
                {"genome", c.genome.to_json()},
                {"search_metrics", c.metrics},
                {"final_metrics", nlohmann::json(m)},
                {"finetune_epochs", r.finetune_epochs}});
    if (!ft.is_null()) rec["finetune"] = ft;
    return rec;
  }
  fs::remove(path);  // the last try's file met no budget
  rec["error"] = "every candidate missed the budget when re-measured";
  return rec;
}

}  // namespace vitopt::search
