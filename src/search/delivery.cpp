// Building the returned models for good, and the delivery plan as rank 0 sends it to the other
// ranks of a data-parallel search (see search_context.h).
#include <fmt/format.h>

#include <algorithm>

#include "compress/lowrank/recover.h"
#include "search/search_context.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"

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
  const bool root = train::dist::is_root();
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
    if (!root) {  // rank 0 decides whether this candidate is the one
      if (train::dist::agree_with_root(false)) return rec;
      continue;
    }
    const auto q = quantize_candidate(fp32, c.genome, ctx.calib_for(c.genome));
    save_candidate(fp32, q, c.genome, {{"budget", budget.text}, {"search_metrics", c.metrics}},
                   ctx.class_names, path);
    MeasureOptions mo = r.measure;
    mo.runs = std::max(mo.runs, 50);  // the decision that matters: more runs
    const auto m = measure_file(path, ctx.held_out_for(c.genome), mo);
    if (!train::dist::agree_with_root(budget.limits.empty() || budget.satisfied(m))) {
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
  if (root) fs::remove(path);  // the last try's file met no budget
  rec["error"] = "every candidate missed the budget when re-measured";
  return rec;
}

std::string delivery_jobs_text(const std::vector<DeliveryJob>& jobs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& job : jobs) {
    nlohmann::json ranked = nlohmann::json::array();
    for (const auto& c : job.ranked)
      ranked.push_back({{"key", c.key}, {"genome", c.genome.to_json()}});
    out.push_back({{"path", job.path.string()},
                   {"label", job.label},
                   {"technique", job.technique},
                   {"over_budget", job.over_budget},
                   {"ranked", ranked}});
  }
  return out.dump();
}

std::vector<DeliveryJob> delivery_jobs_from_text(const std::string& text) {
  std::vector<DeliveryJob> jobs;
  for (const auto& j : nlohmann::json::parse(text)) {
    DeliveryJob job;
    job.path = j.at("path").get<std::string>();
    job.label = j.at("label").get<std::string>();
    job.technique = j.at("technique").get<std::string>();
    job.over_budget = j.at("over_budget").get<std::string>();
    for (const auto& c : j.at("ranked"))
      job.ranked.push_back({c.at("key").get<std::string>(),
                            Genome::from_json(c.at("genome"), "rank 0's delivery plan"), nullptr});
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace vitopt::search
