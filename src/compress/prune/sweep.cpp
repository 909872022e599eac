// The pruning sweep and its report: a row per amount (before/after fine-tuning), per-layer
// sensitivity, weight histograms, plots (gnuplot) and, when available, the evaluator's report.
#include "compress/prune/sweep.h"

#include <fmt/format.h>

#include <fstream>
#include <functional>
#include <optional>

#include "compress/prune/importance.h"
#include "compress/prune/policy.h"
#include "core/error.h"
#include "core/file_util.h"
#include "eval/evaluator.h"
#include "eval/latency.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/model_header.h"
#include "model/edit/copy.h"
#include "model/edit/masks.h"
#include "model/edit/slim.h"
#include "model/model_file.h"
#include "report/gnuplot.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"

namespace vitopt::prune {
namespace {

namespace fs = std::filesystem;

bool is_unstructured(const PruneRequest& r) {
  for (const auto& m : r.methods)
    if (m == "magnitude" || m == "global" || m == "sensitivity" || m == "nm") return true;
  return false;
}

void plot(const std::string& script, const fs::path& dir, const std::string& name) {
  core::write_file_atomic(dir / (name + ".gp"), script);
  report::run_gnuplot(script, dir);
}

// Top-1 on a test subset with only one layer (unstructured) or one block (structured) pruned at
// `amount`: the per-layer sensitivity curve of the sweep.
nlohmann::json per_layer_sensitivity(model::ViT& dense, const PruneRequest& r, double amount,
                                     size_t images) {
  auto out = nlohmann::json::array();
  const auto base = test_accuracy(dense, r.data, images, true).top1;
  if (is_unstructured(r)) {
    const auto scores = weight_scores(dense, "l2", {});
    for (const auto& [name, s] : scores) {
      auto m = edit::copy_model(dense);
      TensorMap one{{name, s}};
      edit::apply_masks(m, edit::masks_per_layer(one, amount));
      const auto top1 = test_accuracy(m, r.data, images, true).top1;
      out.push_back({{"layer", name}, {"top1", top1}, {"drop", base - top1}});
    }
    return out;
  }
  const bool heads = std::count(r.methods.begin(), r.methods.end(), "heads") > 0;
  const bool neurons = std::count(r.methods.begin(), r.methods.end(), "neurons") > 0;
  const auto& c = dense->config();
  auto scores = group_scores(dense, "l2", {true, true, false}, {}, true);
  for (int b = 0; b < c.depth; ++b) {
    auto plan = edit::full_plan(c);
    std::vector<int64_t> hc(c.depth, 0), nc(c.depth, 0);
    hc[b] = std::llround(amount * c.block_heads(b));
    nc[b] = std::llround(amount * c.block_mlp(b));
    if (heads || !neurons) plan[b].heads = keep_per_layer(scores.heads, hc)[b];
    if (neurons || !heads) plan[b].neurons = keep_per_layer(scores.neurons, nc)[b];
    if (c.blocks[b].skip_attn) plan[b].heads.clear();
    if (c.blocks[b].skip_mlp) plan[b].neurons.clear();
    auto m = edit::slim(dense, plan);
    const auto top1 = test_accuracy(m, r.data, images, true).top1;
    out.push_back({{"layer", fmt::format("block {}", b)}, {"top1", top1}, {"drop", base - top1}});
  }
  return out;
}

// Dense vs pruned speed for one sweep row, only where it can differ and only as measured on the
// runtime (the deployment engine) in interleaved rounds; unstructured zeros do the same dense work.
nlohmann::json sweep_speed(const PruneRequest& r, bool unstructured, const fs::path& pruned) {
  if (unstructured)
    return {{"verdict", "not measured"}, {"note", "dense storage of zeros: same computation"}};
  return eval::compare_files_speed(r.model, pruned, "runtime", r.speed_batch, 5, 2, r.threads)
      .to_json("dense", "pruned");
}

// A number of a speed record, or nullopt when the row has none.
std::optional<double> speed_value(const nlohmann::json& speed, const char* key) {
  if (!speed.contains(key) || !speed[key].is_number()) return std::nullopt;
  return speed[key].get<double>();
}

std::string histogram_dat(const nlohmann::json& h) {
  std::string s;
  const double lo = h["lo"], hi = h["hi"];
  const int bins = h["bins"];
  const auto& counts = h["counts"];
  for (int i = 0; i < bins; ++i)
    s += fmt::format("{} {}\n", lo + (hi - lo) * (i + 0.5) / bins, counts[i].get<int64_t>());
  return s;
}

}  // namespace

nlohmann::json run_sweep(model::ViT& dense, const PruneRequest& request, const Accuracy& dense_acc) {
  // Data parallel: every rank fine-tunes each amount together; rank 0 alone prunes without
  // fine-tuning, measures and writes, while the others wait for it (result_of_root) however long
  // that takes. Ranks other than 0 return null.
  const bool root = train::dist::is_root();
  const fs::path dir = request.report_dir / "sweep";
  if (root) fs::create_directories(dir);
  const bool ft = request.finetune_epochs > 0;
  // Only a sweep that fine-tunes runs on every rank (run_prune).
  auto on_root = [ft](const std::function<std::string()>& work) {
    if (ft)
      train::dist::result_of_root(work, "the sweep's measurements");
    else
      work();
  };
  const bool unstructured = is_unstructured(request);
  auto rows = nlohmann::json::array();
  std::vector<fs::path> models;
  std::map<std::string, std::string> labels;
  const auto class_names = io::read_model_header(request.model).class_names;
  std::map<std::string, std::string> meta;
  if (!class_names.empty()) meta[io::kClassNamesKey] = nlohmann::json(class_names).dump();
  const auto dense_size = size_json(dense);
  nlohmann::json hist_after;
  for (double a : request.sweep) {
    const std::string tag = fmt::format("a{:.2f}", a);
    nlohmann::json row = {{"amount", a}};
    std::optional<model::ViT> m0;
    on_root([&] {
      if (!request.quiet) fmt::print(stderr, "sweep: amount {:.2f}\n", a);
      PruneRequest oneshot = request;
      oneshot.finetune_epochs = 0;
      oneshot.steps = 1;
      nlohmann::json log;
      m0.emplace(prune_model(dense, oneshot, a, log));
      const auto p0 = dir / (tag + "-noft.safetensors");
      exporter::save_model(*m0, p0, meta);
      models.push_back(p0);
      labels[p0.string()] = fmt::format("{:.0f}% no FT", 100 * a);
      row["no_finetune"] =
          test_accuracy(*m0, request.data, request.eval_limit, request.quiet, "  " + tag + " no FT")
              .to_json();
      return std::string();
    });
    std::optional<model::ViT> m1;
    if (ft) {
      nlohmann::json log1;
      m1.emplace(prune_model(dense, request, a, log1));
    }
    on_root([&] {
      if (ft) {
        const auto p1 = dir / (tag + ".safetensors");
        exporter::save_model(*m1, p1, meta);
        models.push_back(p1);
        labels[p1.string()] = fmt::format("{:.0f}% + FT", 100 * a);
        row["finetuned"] = test_accuracy(*m1, request.data, request.eval_limit, request.quiet,
                                         "  " + tag + " + FT")
                               .to_json();
      }
      model::ViT& final_model = ft ? *m1 : *m0;
      row["size"] = size_json(final_model);
      row["speed"] =
          sweep_speed(request, unstructured,
                      ft ? dir / (tag + ".safetensors") : dir / (tag + "-noft.safetensors"));
      hist_after =
          weight_histogram(final_model, 81, weight_histogram(dense, 81)["hi"].get<double>());
      rows.push_back(row);
      return std::string();
    });
  }
  if (!root) return nullptr;
  const double top_amount = request.sweep.empty() ? 0.5 : request.sweep.back();
  nlohmann::json j = {{"dense", {{"size", dense_size}, {"accuracy", dense_acc.to_json()}}},
                      {"rows", rows},
                      {"sensitivity_amount", top_amount},
                      {"sensitivity", per_layer_sensitivity(dense, request, top_amount, 2000)}};

  // Table (Markdown + CSV) and plot data.
  std::string csv = "amount,params,macs,nonzero_params,top1_noft,top3_noft,top1_ft,top3_ft,dense_ms,pruned_ms\n";
  std::string md = fmt::format(
      "# Pruning sweep: {} ({} criterion{})\n\nDense: {} params, {:.1f} M MACs, top-1 {:.2f}%, "
      "top-3 {:.2f}%.\n\n| amount | params | MACs (M) | nonzero | top-1 no FT | top-3 no FT | "
      "top-1 FT | top-3 FT | batch-{} ms (dense / pruned) |\n|---|---|---|---|---|---|---|---|---|\n",
      fmt::join(request.methods, "+"), request.criterion,
      ft ? fmt::format(", {} fine-tune epochs", request.finetune_epochs) : "",
      dense_size["params"].get<int64_t>(), dense_size["macs"].get<double>() / 1e6,
      100 * dense_acc.top1, 100 * dense_acc.top3, request.speed_batch);
  std::string dat = "# amount top1_noft top1_ft speedup macs_M pruned_ms\n";
  for (const auto& row : rows) {
    const auto& s = row["size"];
    const double t0 = row["no_finetune"]["top1"], k0 = row["no_finetune"]["top3"];
    const double t1 = ft ? row["finetuned"]["top1"].get<double>() : t0;
    const double k1 = ft ? row["finetuned"]["top3"].get<double>() : k0;
    const auto& sp = row["speed"];
    const auto dms = speed_value(sp, "dense_ms"), pms = speed_value(sp, "pruned_ms");
    const auto speedup = speed_value(sp, "speedup");
    auto cell = [](std::optional<double> v, const char* missing) {
      return v ? fmt::format("{}", *v) : std::string(missing);
    };
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", row["amount"].get<double>(),
                       s["params"].get<int64_t>(), s["macs"].get<int64_t>(),
                       s["nonzero_params"].get<int64_t>(), t0, k0, t1, k1, cell(dms, ""),
                       cell(pms, ""));
    const std::string speed_md =
        dms && pms ? fmt::format("{:.2f} / {:.2f} ({})", *dms, *pms,
                                 sp.value("verdict", std::string("?")))
                   : std::string("- (same dense work)");
    md += fmt::format("| {:.2f} | {} | {:.2f} | {} | {:.2f}% | {:.2f}% | {} | {} | {} |\n",
                      row["amount"].get<double>(), s["params"].get<int64_t>(),
                      s["macs"].get<double>() / 1e6, s["nonzero_params"].get<int64_t>(), 100 * t0,
                      100 * k0, ft ? fmt::format("{:.2f}%", 100 * t1) : "-",
                      ft ? fmt::format("{:.2f}%", 100 * k1) : "-", speed_md);
    dat += fmt::format("{} {} {} {} {} {}\n", row["amount"].get<double>(), 100 * t0, 100 * t1,
                       cell(speedup, "?"), s["macs"].get<double>() / 1e6, cell(pms, "?"));
  }
  std::string sens_dat;
  md += fmt::format("\n## Per-layer sensitivity (only that {} pruned at {:.2f}; 2000 test images)\n\n"
                    "| layer | top-1 | drop (points) |\n|---|---|---|\n",
                    unstructured ? "layer" : "block", top_amount);
  int idx = 0;
  for (const auto& s : j["sensitivity"]) {
    md += fmt::format("| {} | {:.2f}% | {:.2f} |\n", s["layer"].get<std::string>(),
                      100 * s["top1"].get<double>(), 100 * s["drop"].get<double>());
    sens_dat += fmt::format("{} \"{}\" {}\n", idx++, s["layer"].get<std::string>(),
                            100 * s["drop"].get<double>());
  }
  md += "\nPlots: accuracy.png, cost.png, sensitivity.png, histogram.png. Timings: the runtime "
        "engine, dense and pruned files interleaved in 5 rounds; the verdict is faster/slower only "
        "beyond both p50 spreads (else tie). Unstructured sparsity is not timed: the zeros are "
        "stored and computed densely.\n";
  core::write_file_atomic(dir / "sweep.csv", csv);
  core::write_file_atomic(dir / "sweep.md", md);
  core::write_file_atomic(dir / "sweep.dat", dat);
  core::write_file_atomic(dir / "sensitivity.dat", sens_dat);
  core::write_file_atomic(dir / "hist_before.dat", histogram_dat(weight_histogram(dense, 81)));
  if (!hist_after.is_null()) core::write_file_atomic(dir / "hist_after.dat", histogram_dat(hist_after));
  const std::string term = "set terminal pngcairo size 800,500\n";
  plot(term + fmt::format(
                  "set output 'accuracy.png'\nset xlabel 'amount pruned'\nset ylabel 'top-1 (%)'\n"
                  "set key bottom left\nset grid\nplot 'sweep.dat' u 1:2 w lp t 'no fine-tuning', "
                  "'sweep.dat' u 1:3 w lp t 'fine-tuned', {} w l dt 2 t 'dense'\n",
                  100 * dense_acc.top1),
       dir, "accuracy");
  plot(term + "set datafile missing '?'\nset output 'cost.png'\nset xlabel 'amount pruned'\nset ylabel 'MACs (M)'\n"
              "set y2label 'batch latency (ms)'\nset y2tics\nset grid\n"
              "plot 'sweep.dat' u 1:5 w lp t 'MACs', 'sweep.dat' u 1:6 axes x1y2 w lp t 'latency'\n",
       dir, "cost");
  plot(term + "set output 'sensitivity.png'\nset ylabel 'top-1 drop (points)'\nset style fill "
              "solid 0.6\nset xtics rotate by -45\nset grid y\nplot 'sensitivity.dat' u 1:3:xtic(2) "
              "w boxes t 'pruned alone'\n",
       dir, "sensitivity");
  plot(term + "set output 'histogram.png'\nset logscale y\nset xlabel 'weight'\nset ylabel "
              "'count'\nset grid\nplot 'hist_before.dat' u 1:($2+1) w histeps t 'dense', "
              "'hist_after.dat' u 1:($2+1) w histeps t 'pruned (largest amount)'\n",
       dir, "histogram");

  eval::EvalRequest er;
  er.models = models;
  er.baseline = request.model;
  er.data = request.data;
  er.limit = request.eval_limit;
  er.out_dir = dir / "eval";
  er.labels = labels;
  er.title = "vitopt pruning sweep";
  er.quiet = request.quiet;
  er.latency_runs = 10;
  j["evaluator"] = eval::evaluate_models(er);
  core::write_file_atomic(dir / "sweep.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::prune
