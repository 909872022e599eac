// The architecture-search job (see search_job.h): set-up, optional supernet training, the
// NSGA-II run with its evaluation callback, the single-technique comparison, outputs, the
// delivered models and their report. Data parallel: the training parts on every rank, the
// search, measurements and files on rank 0.
#include "search/search_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "core/progress.h"
#include "core/timer.h"
#include "eval/evaluator.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "model/edit/copy.h"
#include "model/model_file.h"
#include "search/search_context.h"
#include "search/search_outputs.h"
#include "search/single_techniques.h"
#include "search/supernet.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"

namespace vitopt::search {
namespace {

namespace fs = std::filesystem;

SpaceSpec load_space(const SearchRequest& r) {
  return r.space.empty() ? SpaceSpec{} : SpaceSpec::from_yaml_file(r.space);
}

std::vector<Budget> parse_budgets(const SearchRequest& r) {
  std::vector<Budget> out;
  for (const auto& text : r.budgets) out.push_back(Budget::parse(text, "--budget"));
  return out;
}

// What makes a saved state (and supernet) belong to this request: resuming under other settings
// would mix incomparable candidates.
nlohmann::json fingerprint(const SearchRequest& r, const SpaceSpec& spec) {
  return {{"model", fs::absolute(r.model).string()},
          {"model_bytes", fs::file_size(r.model)},
          {"space", spec.to_json()},
          {"budgets", r.budgets},
          {"objectives", r.objectives},
          {"population", r.evolution.population},
          {"seed", r.evolution.seed},
          {"crossover", r.evolution.crossover},
          {"mutation", r.evolution.mutation},
          {"criterion", r.criterion},
          {"data", r.data},
          {"calib_images", r.calib_images},
          {"holdout_images", r.holdout_images},
          {"supernet", {{"epochs", r.supernet_epochs}, {"random", r.supernet_random}}},
          {"student_epochs", r.student_epochs},
          {"distill_modes", r.distill_modes},
          {"latency", {{"batch", r.measure.batch}, {"threads", r.measure.threads}}}};
}

// Budget limits on the metrics already known (params, MACs before any weight is built).
Budget known_part(const Budget& b, const Metrics& m) {
  Budget out;
  out.text = b.text;
  for (const auto& l : b.limits)
    if (m.count(l.metric)) out.limits.push_back(l);
  return out;
}

// The evaluation every genome goes through: exact counts first (a candidate over every budget
// on parameters or MACs is not built), then build, save to a scratch file, measure on the runtime.
class Evaluator {
 public:
  explicit Evaluator(SearchContext& ctx) : ctx_(ctx) {}

  // `screen` false: measured even when over every budget (the single-technique comparison).
  Evaluation evaluate(const Genome& g, bool screen) {
    const auto cfg = genome_config(ctx_.space.base(g.student), g);
    Metrics exact{{"params", static_cast<double>(io::count_params(cfg))},
                  {"macs", static_cast<double>(io::count_macs(cfg))}};
    double over = ctx_.budgets.empty() ? 0 : 1e300;
    for (const auto& b : ctx_.budgets) over = std::min(over, known_part(b, exact).violation(exact));
    Evaluation e;
    if (screen && over > 0) {
      // Infeasible whatever it measures: ranked by how far over it is, never built. (Objectives
      // only break ties among infeasible points; finite so that the state stays plain JSON.)
      e.score.objectives.assign(ctx_.objectives.size(), 1e30);
      e.score.violation = over;
      e.metrics = {{"screened", true}, {"params", exact["params"]}, {"macs", exact["macs"]}};
      return e;
    }
    const fs::path scratch = ctx_.request.out_dir / "candidate.tmp.safetensors";
    auto fp32 = build_fp32(ctx_.base_of(g), ctx_.inheritance_of(g), g);
    const auto q = quantize_candidate(fp32, g, ctx_.calib_for(g));
    save_candidate(fp32, q, g, {}, ctx_.class_names, scratch);
    const auto m = measure_file(scratch, ctx_.held_out_for(g), ctx_.request.measure);
    fs::remove(scratch);
    ++built_;
    e.score = score(ctx_.objectives, ctx_.budgets, m);
    e.metrics = nlohmann::json(m);
    return e;
  }
  Evaluation operator()(const Genome& g) { return evaluate(g, true); }
  int built() const { return built_; }

 private:
  SearchContext& ctx_;
  int built_ = 0;
};

Metrics metrics_of(const nlohmann::json& j) {
  Metrics m;
  for (const auto& [k, v] : j.items())
    if (v.is_number()) m[k] = v.get<double>();
  return m;
}

// Measured candidates meeting `budget`, best held-out top-1 first (ties: lower latency, key).
std::vector<Ranked> ranked_under(std::vector<Ranked> all, const Budget& budget) {
  std::vector<Ranked> out;
  for (auto& c : all) {
    const auto m = metrics_of(c.metrics);
    if (m.count("top1") && (budget.limits.empty() || budget.satisfied(m))) out.push_back(c);
  }
  auto val = [](const Ranked& c, const char* name) { return c.metrics.value(name, 0.0); };
  std::sort(out.begin(), out.end(), [&](const Ranked& a, const Ranked& b) {
    if (val(a, "top1") != val(b, "top1")) return val(a, "top1") > val(b, "top1");
    if (val(a, "latency-ms") != val(b, "latency-ms"))
      return val(a, "latency-ms") < val(b, "latency-ms");
    return a.key < b.key;
  });
  return out;
}

std::string budget_label(const Budget& b, size_t index) {
  return b.limits.empty() ? "best" : fmt::format("budget{}", index + 1);
}

// The supernet: trained once and saved (so a resumed search inherits the same weights).
nlohmann::json prepare_parent(SearchContext& ctx) {
  const auto& r = ctx.request;
  if (r.supernet_epochs <= 0) {
    ctx.parent = ctx.original;
    return nullptr;
  }
  const fs::path file = r.out_dir / "supernet.safetensors";
  nlohmann::json log;
  // Data parallel: rank 0's folder decides (the others may run on machines without it); a rank
  // other than 0 only needs the supernet's structure, which is the model's.
  if (train::dist::agree_with_root(fs::exists(file))) {
    ctx.parent = train::dist::is_root() ? model::load_model(file) : edit::copy_model(ctx.original);
    ctx.parent->eval();
    ctx.inheritance.means = edit::measure_means(ctx.parent, train::batch_inputs(ctx.calib));
    log = {{"reused", file.string()}};
  } else {
    ctx.parent = edit::copy_model(ctx.original);
    const auto options = finetune_options(ctx, r.out_dir / "supernet_run");
    SupernetOptions so{r.supernet_epochs, r.supernet_random, r.seed};
    log = {{"history", train_supernet(ctx.parent, ctx.original, ctx.space, ctx.inheritance,
                                      ctx.calib, options, so)}};
    if (train::dist::is_root()) exporter::save_model(ctx.parent, file);
  }
  log["epochs"] = r.supernet_epochs;
  return log;
}

}  // namespace

void validate_request(const SearchRequest& r) {
  if (r.model.empty()) core::throw_input("--model: a trained model file is required");
  if (r.out_dir.empty()) core::throw_input("--out: an output folder is required");
  if (r.evolution.population < 4)
    core::throw_input("--population: expected >= 4, got {}", r.evolution.population);
  if (r.evolution.generations < 1)
    core::throw_input("--generations: expected >= 1, got {}", r.evolution.generations);
  if (!(r.evolution.mutation >= 0 && r.evolution.mutation <= 1))
    core::throw_input("--mutation: expected a probability in [0, 1], got {}", r.evolution.mutation);
  if (!(r.evolution.crossover >= 0 && r.evolution.crossover <= 1))
    core::throw_input("--crossover: expected a probability in [0, 1], got {}",
                      r.evolution.crossover);
  if (r.calib_images == 0) core::throw_input("--calib-images: expected >= 1, got 0");
  if (r.holdout_images == 0) core::throw_input("--holdout-images: expected >= 1, got 0");
  if (r.measure.batch < 1)
    core::throw_input("--latency-batch: expected >= 1, got {}", r.measure.batch);
  if (r.measure.threads < 1)
    core::throw_input("--latency-threads: expected >= 1, got {}", r.measure.threads);
  if (r.measure.runs < 3)
    core::throw_input("--latency-runs: expected >= 3, got {}", r.measure.runs);
  if (!(r.finetune_epochs >= 0))
    core::throw_input("--finetune-epochs: expected >= 0, got {}", r.finetune_epochs);
  if (!(r.supernet_epochs >= 0))
    core::throw_input("--supernet-epochs: expected >= 0, got {}", r.supernet_epochs);
  if (r.supernet_random < 0)
    core::throw_input("--supernet-random: expected >= 0, got {}", r.supernet_random);
  if (!(r.student_epochs >= 0))
    core::throw_input("--student-epochs: expected >= 0, got {}", r.student_epochs);
  const auto& criteria = inheritance_criteria();
  if (std::find(criteria.begin(), criteria.end(), r.criterion) == criteria.end())
    core::throw_input("--criterion: expected one of {}, got '{}'", fmt::join(criteria, ", "),
                      r.criterion);
  parse_objectives(r.objectives, "--objectives");
  parse_budgets(r);
  load_space(r);
}

namespace {

// Where a resumed search left off (rank 0 alone reads it): nothing when the folder holds none.
struct SavedSearch {
  EvolutionState state;
  double seconds = 0;  // search time of the runs this one resumes
};

SavedSearch load_saved_search(const fs::path& state_path, const nlohmann::json& fp, bool quiet) {
  SavedSearch out;
  if (!fs::exists(state_path)) return out;
  const auto saved = core::json_parse(core::read_file_text(state_path), state_path.string());
  if (saved.value("fingerprint", nlohmann::json()) != fp)
    core::throw_input(
        "{}: a search with other settings (model, space, budgets, objectives, "
        "population, seed, data, supernet...) is saved here; use another --out or delete it",
        state_path.string());
  out.state = EvolutionState::from_json(saved.at("state"), state_path.string());
  out.seconds = saved.value("search_seconds", 0.0);
  if (!quiet)
    fmt::print(stderr, "search: resuming after generation {} ({} candidates evaluated)\n",
               out.state.generation, out.state.archive.size());
  return out;
}

// What is delivered: the best under each budget, then (when asked) each technique's best under
// the first budget, built and fine-tuned the same way.
std::vector<DeliveryJob> plan_deliveries(const SearchContext& ctx, const EvolutionState& state,
                                         const std::vector<SingleResult>& singles) {
  const auto& r = ctx.request;
  std::vector<Ranked> archive;
  for (const auto& [key, e] : state.archive)
    archive.push_back({key, e.genome, e.evaluation.metrics});
  const std::vector<Budget> sets =
      ctx.budgets.empty() ? std::vector<Budget>{Budget{}} : ctx.budgets;
  std::vector<DeliveryJob> jobs;
  for (size_t i = 0; i < sets.size(); ++i) {
    DeliveryJob job;
    job.ranked = ranked_under(archive, sets[i]);
    job.budget = sets[i];
    job.path = r.out_dir / (budget_label(sets[i], i) + ".safetensors");
    job.label = "search/" + budget_label(sets[i], i);
    jobs.push_back(std::move(job));
  }
  if (!r.single_techniques || !r.deliver_singles) return jobs;
  std::map<std::string, std::vector<Ranked>> by_technique;
  for (const auto& s : singles)
    by_technique[s.technique].push_back({s.key, s.genome, s.evaluation.metrics});
  for (auto& [tech, list] : by_technique) {
    DeliveryJob job;
    job.technique = tech;
    job.label = tech + " alone";
    job.path = r.out_dir / fmt::format("single_{}.safetensors", tech);
    job.ranked = ranked_under(list, sets.front());
    job.budget = sets.front();
    if (job.ranked.empty()) {
      // Nothing of this technique alone meets the budget: its cheapest setting on the first
      // cost objective stands in, delivered without a budget and marked as over it.
      job.ranked = ranked_under(list, Budget{});
      std::string cost = "latency-ms";
      for (const auto& o : ctx.objectives)
        if (o != "top1") {
          cost = o;
          break;
        }
      std::stable_sort(job.ranked.begin(), job.ranked.end(), [&](const Ranked& a, const Ranked& b) {
        return a.metrics.value(cost, 0.0) < b.metrics.value(cost, 0.0);
      });
      job.budget = Budget{};
      job.over_budget = sets.front().text;  // "" when the first "budget" is none
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

// Rank 0's part: NSGA-II (resumable), the single techniques, the outputs and the delivery plan.
// Returns the search's JSON so far.
nlohmann::json search_on_root(SearchContext& ctx, const SpaceSpec& spec, const nlohmann::json& fp,
                              SavedSearch saved, std::vector<DeliveryJob>& jobs) {
  const auto& r = ctx.request;
  const fs::path state_path = r.out_dir / "search_state.json";
  Evaluator evaluator(ctx);
  const int total = r.evolution.generations;
  core::ProgressOptions popts;
  popts.quiet = r.quiet;
  popts.unit = "cand";
  core::Progress progress("search", total, popts);
  core::Stopwatch search_clock;
  const int start_gen = saved.state.generation + 1;
  auto on_generation = [&](const EvolutionState& s) {
    nlohmann::json state_json = {{"fingerprint", fp},
                                 {"search_seconds", saved.seconds + search_clock.seconds()},
                                 {"state", s.to_json()}};
    core::write_file_atomic(state_path, state_json.dump(1));
    const auto front = pareto_front(s);
    double best = 0;
    for (const auto& key : front)
      best = std::max(best, s.archive.at(key).evaluation.metrics.value("top1", 0.0));
    progress.update(s.generation + 1, static_cast<int64_t>(s.archive.size()),
                    fmt::format("gen {}/{} front {} best top-1 {:.2f}% built {}", s.generation + 1,
                                total, front.size(), 100 * best, evaluator.built()));
  };
  const auto state =
      evolve(ctx.space, r.evolution, std::ref(evaluator), std::move(saved.state), on_generation);
  progress.finish(fmt::format("{} generations, {} candidates ({} built and measured) in {}", total,
                              state.archive.size(), evaluator.built(),
                              core::format_duration(search_clock.seconds())));

  // Each technique alone through the same evaluation, measured whatever the budgets.
  std::vector<SingleResult> singles;
  if (r.single_techniques) {
    for (auto& t : single_technique_genomes(ctx.space)) {
      const auto key = t.genome.key();
      auto it = state.archive.find(key);
      const bool measured =
          it != state.archive.end() && it->second.evaluation.metrics.contains("top1");
      singles.push_back({t.technique, t.setting, key,
                         measured ? it->second.evaluation : evaluator.evaluate(t.genome, false),
                         t.genome});
    }
  }

  nlohmann::json j = {{"model", r.model.string()},
                      {"out", r.out_dir.string()},
                      {"objectives", ctx.objectives},
                      {"space", spec.to_json()},
                      {"criterion", r.criterion},
                      {"held_out", ctx.held_out.description},
                      {"baseline", nlohmann::json(ctx.baseline)},
                      {"generations", total},
                      {"population", r.evolution.population},
                      {"resumed_from_generation", start_gen},
                      {"evaluated", state.archive.size()},
                      {"built", evaluator.built()},
                      {"search_seconds", saved.seconds + search_clock.seconds()}};
  const auto front = pareto_front(state);
  j["front"] = front;
  write_search_outputs(r.out_dir, ctx.objectives, state, front, singles, ctx.baseline, r.quiet);
  jobs = plan_deliveries(ctx, state, singles);
  return j;
}

}  // namespace

nlohmann::json run_search(const SearchRequest& r) {
  validate_request(r);
  core::Stopwatch clock;
  // Data parallel (torchrun's environment or --nproc-per-node ...): every rank trains the
  // supernet and students and fine-tunes the delivered models together; rank 0 alone runs the
  // evolution (the others wait for its plan however long it takes), measures and writes.
  const bool root = train::dist::is_root();
  if (root) fs::create_directories(r.out_dir);
  const auto spec = load_space(r);
  auto input = model::load_edit_input(r.model, "searched", "search");
  input.model->eval();
  const Space space(spec, input.model->config());
  SearchContext ctx(r, space);
  ctx.objectives = parse_objectives(r.objectives, "--objectives");
  ctx.budgets = parse_budgets(r);
  ctx.original = input.model;
  ctx.class_names = input.class_names;

  const auto fp = fingerprint(r, spec);
  SavedSearch saved;
  if (root) saved = load_saved_search(r.out_dir / "search_state.json", fp, r.quiet);

  // What every candidate inherits and is measured with.
  const auto& config = ctx.original->config();
  ctx.calib = train::calibration_batches(r.data, config, r.calib_images, 64, r.seed);
  ctx.calib_images = train::calibration_images(ctx.calib);
  ctx.held_out = held_out_split(r.data, config, r.holdout_images, r.calib_images, 100, r.seed);
  ctx.inheritance = inherit(ctx.original, r.criterion, ctx.calib, r.quiet);
  agree_on_orders(ctx.inheritance);
  if (root) {
    // Relative budgets hang on the baseline's latency: measured with more runs than a candidate.
    MeasureOptions baseline_measure = r.measure;
    baseline_measure.runs = std::max(r.measure.runs, 100);
    ctx.baseline = measure_file(r.model, ctx.held_out, baseline_measure);
    for (auto& b : ctx.budgets) b = b.resolved(ctx.baseline);
  }
  const auto supernet = prepare_parent(ctx);
  const auto students = prepare_students(ctx);

  nlohmann::json j;
  std::vector<DeliveryJob> jobs;
  const auto plan = train::dist::result_of_root(
      [&] {
        j = search_on_root(ctx, spec, fp, std::move(saved), jobs);
        return delivery_jobs_text(jobs);
      },
      "the search");
  if (!root) jobs = delivery_jobs_from_text(plan);
  if (!supernet.is_null()) j["supernet"] = supernet;
  if (!students.empty()) j["students"] = students;

  // The delivered models: fine-tuned (by every rank), saved and re-measured (by rank 0).
  j["returned"] = nlohmann::json::array();
  if (r.single_techniques && r.deliver_singles) j["singles"] = nlohmann::json::object();
  std::vector<fs::path> delivered;
  std::map<std::string, std::string> labels;
  for (const auto& job : jobs) {
    auto rec = deliver(ctx, job.ranked, job.budget, job.path);
    if (!job.over_budget.empty()) {
      rec["over_budget"] = job.over_budget;
      rec["budget"] = "";
    }
    if (rec.contains("model")) {
      delivered.push_back(job.path);
      labels[job.path.string()] = job.label;
    } else if (job.technique.empty() && !r.quiet) {
      fmt::print(stderr, "search: budget '{}': {}\n", job.budget.text,
                 rec["error"].get<std::string>());
    }
    if (job.technique.empty())
      j["returned"].push_back(rec);
    else
      j["singles"][job.technique] = rec;
  }
  if (!root) return j;

  if (r.evaluate && !delivered.empty()) {
    eval::EvalRequest er;
    er.models = delivered;
    er.baseline = r.model;
    er.data = r.data;
    er.limit = r.eval_limit;
    er.engine = "runtime";
    er.threads = r.measure.threads;
    er.out_dir = r.out_dir / "report";
    er.title = "vitopt architecture search";
    er.labels = labels;
    er.quiet = r.quiet;
    er.seed = r.seed;
    j["evaluation"] = eval::evaluate_models(er);
  }
  if (!r.deliver.empty()) {
    const auto& first = j["returned"].front();
    if (!first.contains("model"))
      core::throw_input("search: no candidate meets budget '{}' ({}); loosen it or search longer",
                        first["budget"].get<std::string>(), first.value("error", ""));
    fs::create_directories(fs::absolute(r.deliver).parent_path());
    const auto bytes = core::read_file_bytes(first["model"].get<std::string>());
    core::write_file_atomic(r.deliver, bytes.data(), bytes.size());
  }
  j["seconds"] = clock.seconds();
  core::write_file_atomic(r.out_dir / "search.json", j.dump(2));
  return j;
}

}  // namespace vitopt::search
