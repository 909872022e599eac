// run_distill: teacher + student(s) + training runs + comparison (see distill_job.h). The
// per-mode training is the shared train::train_model with the Distiller's hooks installed.
#include "compress/distill/distill_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "core/timer.h"
#include "eval/accuracy.h"
#include "eval/evaluator.h"
#include "eval/latency.h"
#include "io/metadata_keys.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "io/presets.h"
#include "model/model_file.h"
#include "train/data_bridge.h"
#include "train/distributed/communicator.h"
#include "train/evaluate.h"
#include "train/torch_env.h"

namespace vitopt::distill {

using nlohmann::json;

namespace {

bool is_model_file(const std::string& spec) {
  const std::filesystem::path p(spec);
  return p.extension() == ".safetensors" ||
         (std::filesystem::is_regular_file(p) && p.extension() != ".json");
}

// top-1/top-3 of `model` on `set` (the model's own eval transform).
eval::SplitAccuracy measure_accuracy(model::ViT& model, std::shared_ptr<const data::Dataset> set,
                                     const train::TrainOptions& o, const std::string& label) {
  eval::AccuracyOptions ao;
  ao.batch_size = o.eval_batch_size;
  ao.workers = o.workers;
  ao.device = train::parse_device(o.device);
  ao.quiet = o.quiet;
  ao.label = label;
  return eval::accuracy(model, std::move(set), ao);
}

// Batch-1 forward latency of both models on LibTorch (the engine this job trains and runs them
// on), interleaved in rounds (eval::interleaved_latency); the speed-up is claimed only beyond
// the two p50 spreads.
json side_by_side_latency(model::ViT& teacher, model::ViT& student, int runs,
                          const std::string& device_name) {
  const int rounds = std::clamp(runs / 4, 1, 5);
  const auto claim = eval::interleaved_latency(teacher, student, 1, rounds,
                                               std::max(1, runs / rounds),
                                               train::parse_device(device_name));
  auto j = claim.to_json("teacher", "student");
  j["summary"] = claim.summary();
  return j;
}

std::string run_folder_name(const std::set<Mode>& modes) { return modes_name(modes); }

// Trains one student for one mode set in `dir`; returns its record.
json train_one(const DistillRequest& req, const std::string& mode_text,
               const std::filesystem::path& dir, std::optional<model::ViT> teacher,
               std::shared_ptr<const data::Dataset> train_set,
               std::shared_ptr<const data::Dataset> val_set) {
  const auto modes = parse_modes(mode_text);
  const bool token = modes.count(Mode::Token) > 0;
  const auto& o = req.options;
  std::optional<model::ViT> student;
  if (is_model_file(req.student)) {
    if (io::SafeTensorsFile::load(req.student).metadata_value(io::kQuantKey) != nullptr)
      core::throw_input("--student {}: a quantized student cannot be trained (its integer weights "
                        "would silently become fp32). Distill into the fp32 student, then "
                        "quantize it: vitopt distill ... && vitopt quantize --model STUDENT",
                        req.student);
    student.emplace(model::load_model(req.student));
  } else {
    student.emplace(student_config(req.student, token));
    (*student)->init_weights(o.seed);
  }
  const auto cfg = (*student)->config();
  DistillSettings settings = req.settings;
  settings.label_smoothing = o.label_smoothing;
  Distiller distiller(modes.empty() ? std::nullopt : teacher, cfg, modes, settings,
                      train_set->size(), o.seed);
  train::TrainOptions topts = o;
  topts.out_dir = dir;
  if (!modes.empty()) distiller.install(topts);  // "none": the trainer's own cross-entropy
  if (!o.quiet)
    fmt::print(stderr, "distill [{}]: student {} ({} params){} on {}\n", modes_name(modes),
               cfg.name, io::count_params(cfg), token ? " with distillation token" : "",
               train_set->description());
  core::Stopwatch clock;
  const auto result = train::train_model(*student, train_set, val_set, topts);
  const double seconds = clock.seconds();
  const bool root = train::dist::is_root();  // data-parallel: rank 0 measures and writes
  json rec = {{"name", run_folder_name(modes)},
              {"modes", modes_name(modes)},
              {"completed", result.completed},
              {"dir", dir.string()},
              {"model", result.final_model.string()},
              {"best_model", result.best_model.string()},
              {"best_top1", result.best_top1},
              {"best_epoch", result.best_epoch},
              {"final_top1", result.final_top1},
              {"train_seconds", seconds},
              {"epochs", o.epochs},
              {"seed", o.seed},
              {"params", io::count_params(cfg)},
              {"macs", io::count_macs(cfg)},
              {"distill_token", cfg.distill_token},
              {"teacher_forwards", distiller.teacher_forwards()},
              {"cache_hits", distiller.cache_hits()},
              {"cache_misses", distiller.cache_misses()},
              {"history", result.history}};
  if (!modes.empty()) {
    json lm = json::array();
    for (const auto& [s, t] : distiller.layer_map()) lm.push_back({s, t});
    rec["settings"] = {{"temperature", settings.temperature},
                       {"alpha", settings.alpha},
                       {"feature_weight", settings.feature_weight},
                       {"attn_weight", settings.attn_weight},
                       {"attn_loss", settings.attn_loss},
                       {"cache_teacher", settings.cache_teacher},
                       {"layer_map", lm}};
  }
  if (result.completed && val_set && root) {
    const auto acc = measure_accuracy(*student, val_set, o, "  final eval");
    rec["top1"] = acc.top1;
    rec["top3"] = acc.top3;
    rec["eval_images"] = acc.count;
    if (teacher) {
      const auto speed = side_by_side_latency(*teacher, *student, req.latency_runs, o.device);
      rec["latency_ms"] = speed["student_ms"];
      rec["teacher_latency_ms"] = speed["teacher_ms"];
      rec["speed_vs_teacher"] = speed;
      // A speed-up figure only where the interleaved rounds show one beyond the noise.
      if (speed["verdict"] != "tie") rec["speedup_vs_teacher"] = speed["speedup"];
    }
  }
  if (root) core::write_file_atomic(dir / "run.json", rec.dump(2) + "\n");
  return rec;
}

std::string pct(const json& j, const char* key) {
  return j.contains(key) ? fmt::format("{:.2f}", 100 * j[key].get<double>()) : "-";
}

std::string memory_cell(const std::map<std::string, double>& mem_mb, const std::string& model,
                        std::map<std::string, double>::const_iterator teacher,
                        std::map<std::string, double>::const_iterator end) {
  const auto it = mem_mb.find(model);
  if (it == end) return "-";
  if (teacher == end || it->second <= 0) return fmt::format("{:.2f}", it->second);
  return fmt::format("{:.2f} ({:.2f}x less)", it->second, teacher->second / it->second);
}

// Markdown table: one row per run plus the teacher.
std::string compare_markdown(const json& summary) {
  const auto& t = summary["teacher"];
  std::string md = "# Distillation comparison\n\n";
  md += fmt::format("Teacher `{}`: top-1 {}%, top-3 {}%, {} params, {} MACs/image.\n\n",
                    t["file"].get<std::string>(), pct(t, "top1"), pct(t, "top3"),
                    t["params"].get<int64_t>(), t["macs"].get<int64_t>());
  // Inference memory from the evaluator's report (runtime engine: packed weights + activation
  // buffers, exact), by model path; the teacher is the report's baseline.
  std::map<std::string, double> mem_mb;
  if (summary.contains("evaluation"))
    for (const auto& m : summary["evaluation"]["models"]) {
      const auto& b = m["efficiency"]["memory"]["allocator_peak_bytes"];
      if (b.is_number()) mem_mb[m["path"].get<std::string>()] = b.get<double>() / 1e6;
    }
  const auto teacher_mem = mem_mb.find(t["file"].get<std::string>());
  md += "| run | top-1 % | top-3 % | Δ vs no teacher | Δ vs teacher | params | size ratio | "
        "MACs | batch-1 ms | speed-up | memory MB (ratio) | train s |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const json* none = nullptr;
  for (const auto& r : summary["runs"])
    if (r["modes"] == "none" && r.contains("top1")) none = &r;
  for (const auto& r : summary["runs"]) {
    auto delta = [&](const json* ref) {
      if (ref == nullptr || !r.contains("top1") || !ref->contains("top1")) return std::string("-");
      return fmt::format("{:+.2f}", 100 * (r["top1"].get<double>() - (*ref)["top1"].get<double>()));
    };
    const double ratio = static_cast<double>(t["params"].get<int64_t>()) /
                         static_cast<double>(r["params"].get<int64_t>());
    md += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {:.2f}x smaller | {} | {} | {} | {} | {:.0f} |\n",
        r["name"].get<std::string>(), pct(r, "top1"), pct(r, "top3"),
        r["modes"] == "none" ? std::string("-") : delta(none), delta(&t),
        r["params"].get<int64_t>(), ratio, r["macs"].get<int64_t>(),
        r.contains("latency_ms") ? fmt::format("{:.3f}", r["latency_ms"].get<double>()) : "-",
        r.contains("speedup_vs_teacher")
            ? fmt::format("{:.2f}x", r["speedup_vs_teacher"].get<double>())
            : (r.contains("speed_vs_teacher") ? std::string("tie (within noise)") : "-"),
        memory_cell(mem_mb, r["model"].get<std::string>(), teacher_mem, mem_mb.end()),
        r["train_seconds"].get<double>());
  }
  md += "\nLatency: median batch-1 forward on LibTorch, student and teacher interleaved in "
        "rounds in one process; a speed-up is shown only where the gap exceeds both models' p50 "
        "spreads over the rounds (else: tie). Memory: the "
        "runtime's buffers (packed weights + activation plans) after the evaluator's runs, and "
        "the teacher's divided by the student's.\n";
  return md;
}

}  // namespace

io::ViTConfig student_config(const std::string& spec, bool token) {
  io::ViTConfig c;
  if (is_model_file(spec)) {
    if (!std::filesystem::exists(spec))
      core::throw_input("--student: no such model file '{}'", spec);
    c = io::read_model_header(std::filesystem::path(spec)).config;
  } else if (std::filesystem::path(spec).extension() == ".json") {
    c = io::ViTConfig::from_json(core::json_parse(core::read_file_text(spec), spec), spec);
    if (token) c.distill_token = true;
  } else {
    c = io::preset(spec);
    if (token) c.distill_token = true;
  }
  c.normalize(spec);
  return c;
}

json run_distill(const DistillRequest& req) {
  if (req.out_dir.empty()) core::throw_input("--out: required");
  if (req.runs.empty()) core::throw_input("--mode: give at least one mode set");
  // Check every mode set and the settings before anything slow happens.
  std::vector<std::set<Mode>> mode_sets;
  bool need_teacher = false;
  for (const auto& text : req.runs) {
    mode_sets.push_back(parse_modes(text));
    need_teacher = need_teacher || !mode_sets.back().empty();
  }
  for (size_t i = 0; i < mode_sets.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (mode_sets[i] == mode_sets[j])
        core::throw_input("--mode: mode set '{}' is given twice", modes_name(mode_sets[i]));
  if (req.teacher.empty()) core::throw_input("--teacher: required (the model to distil from)");
  if (!std::filesystem::exists(req.teacher))
    core::throw_input("--teacher: no such model file '{}'", req.teacher.string());
  model::ViT teacher = model::load_model(req.teacher);
  teacher->eval();
  const auto tcfg = teacher->config();
  for (const auto& modes : mode_sets) {
    const auto scfg = student_config(req.student, modes.count(Mode::Token) > 0);
    validate(modes, req.settings, scfg, &tcfg);
  }

  const auto& o = req.options;
  const auto base_cfg = student_config(req.student, false);
  auto train_set =
      train::open_dataset_for(req.data, base_cfg, data::Split::Train, req.limit, o.seed);
  std::shared_ptr<data::Dataset> val_set;
  if (req.validate)
    val_set = train::open_dataset_for(req.data, base_cfg, data::Split::Test, req.val_limit, o.seed);
  const bool root = train::dist::is_root();
  if (root) std::filesystem::create_directories(req.out_dir);

  json summary = {{"teacher",
                   {{"file", req.teacher.string()},
                    {"params", io::count_params(tcfg)},
                    {"macs", io::count_macs(tcfg)}}},
                  {"student", req.student},
                  {"data", req.data},
                  {"train_images", train_set->size()},
                  {"runs", json::array()}};
  const bool single = mode_sets.size() == 1;
  for (size_t i = 0; i < mode_sets.size(); ++i) {
    const auto dir = single ? req.out_dir : req.out_dir / run_folder_name(mode_sets[i]);
    const auto run_json = dir / "run.json";
    json prev;
    bool reuse = false;
    if (root && req.skip_completed && std::filesystem::exists(run_json)) {
      prev = core::json_parse(core::read_file_text(run_json), run_json.string());
      reuse = prev.value("completed", false) && prev.contains("top1") &&
              prev.value("epochs", 0) == o.epochs && prev.value("seed", uint64_t{0}) == o.seed;
    }
    // Rank 0's files decide for every rank (other machines have no copy of them).
    if (train::dist::agree_with_root(reuse)) {
      if (!o.quiet)
        fmt::print(stderr, "distill [{}]: done before, reusing {}\n", modes_name(mode_sets[i]),
                   run_json.string());
      summary["runs"].push_back(root ? prev : json{{"name", run_folder_name(mode_sets[i])}});
      continue;
    }
    summary["runs"].push_back(train_one(req, req.runs[i], dir, teacher, train_set, val_set));
  }

  if (!root) return summary;  // every run is trained; rank 0 measures and writes
  if (req.report && val_set) {
    const auto acc = measure_accuracy(teacher, val_set, o, "  teacher eval");
    summary["teacher"]["top1"] = acc.top1;
    summary["teacher"]["top3"] = acc.top3;
  }
  // The best distilled run (by final top-1) is the stage's output model.
  const json* best = nullptr;
  for (const auto& r : summary["runs"])
    if (r["modes"] != "none" && r.contains("top1") &&
        (best == nullptr || r["top1"].get<double>() > (*best)["top1"].get<double>()))
      best = &r;
  if (best != nullptr) {
    summary["best_run"] = (*best)["name"];
    summary["model"] = (*best)["model"];
  }
  if (req.report && val_set) {
    eval::EvalRequest er;
    for (const auto& r : summary["runs"]) {
      er.models.emplace_back(r["model"].get<std::string>());
      er.labels[r["model"].get<std::string>()] = "student " + r["name"].get<std::string>();
    }
    er.baseline = req.teacher;
    er.labels[req.teacher.string()] = "teacher";
    er.data = req.data;
    er.engine = "runtime";  // the deployable engine: its exact buffer bytes give the memory ratio
    er.limit = req.eval_limit;
    er.device = o.device;
    er.threads = req.threads;
    er.out_dir = req.out_dir / "report";
    er.latency_runs = req.latency_runs;
    er.title = "vitopt distillation: modes vs teacher";
    er.quiet = o.quiet;
    er.seed = o.seed;
    er.workers = o.workers;
    try {
      summary["evaluation"] = eval::evaluate_models(er);
      summary["report"] = (req.out_dir / "report").string();
    } catch (const std::exception& e) {
      // The students are trained and saved; a failed report should not discard that.
      summary["evaluation_error"] = e.what();
      if (!o.quiet) fmt::print(stderr, "warning: evaluator report failed: {}\n", e.what());
    }
  }
  if (req.report) core::write_file_atomic(req.out_dir / "compare.md", compare_markdown(summary));
  core::write_file_atomic(req.out_dir / "distill.json", summary.dump(2) + "\n");
  return summary;
}

}  // namespace vitopt::distill
