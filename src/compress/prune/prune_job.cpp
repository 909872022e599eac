// run_prune: request validation, the unstructured flow (masks, cubic schedule advanced inside one
// fine-tuning run by the after_step hook) and the structured flow (score -> plan -> slim ->
// fine-tune, K rounds), then measurements against the dense model and the files.
#include "compress/prune/prune_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "compress/prune/importance.h"
#include "compress/prune/measure.h"
#include "compress/prune/policy.h"
#include "compress/prune/sweep.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/timer.h"
#include "eval/latency.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "model/edit/copy.h"
#include "model/edit/masks.h"
#include "model/edit/plan.h"
#include "model/edit/slim.h"
#include "model/model_file.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"
#include "train/torch_env.h"

namespace vitopt::prune {
namespace {

const std::vector<std::string> kUnstructured = {"magnitude", "global", "sensitivity", "nm"};
const std::vector<std::string> kStructured = {"heads", "neurons", "blocks"};

struct Methods {
  std::string unstructured;  // empty: structured
  bool heads = false, neurons = false, blocks = false;
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Methods parse_methods(const std::vector<std::string>& names) {
  if (names.empty()) core::throw_input("--method: expected at least one method");
  Methods m;
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (!seen.insert(n).second) core::throw_input("--method: '{}' given twice", n);
    if (contains(kUnstructured, n)) {
      if (names.size() > 1)
        core::throw_input("--method: '{}' (unstructured) cannot be combined with other methods "
                          "(got {})",
                          n, fmt::join(names, ","));
      m.unstructured = n;
    } else if (n == "heads") {
      m.heads = true;
    } else if (n == "neurons") {
      m.neurons = true;
    } else if (n == "blocks") {
      m.blocks = true;
    } else {
      core::throw_input("--method: expected one of [magnitude, global, sensitivity, nm, heads, "
                        "neurons, blocks] (heads,neurons,blocks combine), got '{}'",
                        n);
    }
  }
  return m;
}

std::pair<int, int> parse_nm(const std::string& s) {
  int n = 0, m = 0;
  char colon = 0, extra = 0;
  if (std::sscanf(s.c_str(), "%d%c%d%c", &n, &colon, &m, &extra) != 3 || colon != ':' || n < 1 ||
      m < 1 || n > m)
    core::throw_input("--nm: expected N:M with 1 <= N <= M (e.g. 2:4), got '{}'", s);
  return {n, m};
}

FinetuneOptions finetune_options(const PruneRequest& r) {
  return job_finetune_options(r.finetune, r.data, r.seed, r.device, r.quiet, r.report_dir);
}

// ---- unstructured -------------------------------------------------------------------------------

// The weight criterion of an unstructured method: sensitivity is Taylor's |w * dL/dw|, magnitude
// and global are L2's |w|, N:M takes the requested criterion.
std::string weight_criterion(const PruneRequest& r, const Methods& ms) {
  if (ms.unstructured == "sensitivity") return "taylor";
  if (ms.unstructured == "nm") return r.criterion;
  return "l2";
}

TensorMap unstructured_masks(model::ViT& model, const PruneRequest& r, const Methods& ms,
                             double sparsity, const std::vector<CalibBatch>& calib) {
  const auto scores = weight_scores(model, weight_criterion(r, ms), calib);
  if (ms.unstructured == "nm") {
    const auto [n, m] = parse_nm(r.nm);
    return edit::masks_nm(scores, n, m);
  }
  const bool per_layer = ms.unstructured == "magnitude" || r.per_layer;
  return per_layer ? edit::masks_per_layer(scores, sparsity) : edit::masks_global(scores, sparsity);
}

model::ViT prune_unstructured(model::ViT& dense, const PruneRequest& r, const Methods& ms,
                              double amount, nlohmann::json& log) {
  // A mask lives on the Linear that owns a weight; a block sharing it would multiply by the
  // unmasked values while fine-tuning moves them.
  for (int b = 0; b < dense->config().depth; ++b)
    if (dense->config().blocks[static_cast<size_t>(b)].shares())
      core::throw_input(
          "{}: block {} shares another block's weights; unstructured pruning needs "
          "blocks with their own weights (prune first, then share)",
          r.model.string(), b);
  auto model = edit::copy_model(dense);
  model->eval();
  std::vector<CalibBatch> calib;
  if (make_importance(weight_criterion(r, ms))->needs_data())
    calib = train::calibration_batches(r.data, model->config(), r.calib_images, 64, r.seed);
  const int K = ms.unstructured == "nm" ? 1 : r.steps;  // N:M has no intermediate sparsities
  auto prune_step = [&](int k) {
    const double s = cubic_sparsity(amount, k, K);
    edit::apply_masks(model, unstructured_masks(model, r, ms, s, calib));
    log["steps"].push_back({{"step", k}, {"target", s},
                            {"sparsity", edit::sparsity_stats(model)["sparsity"]}});
  };
  log["steps"] = nlohmann::json::array();
  if (r.finetune_epochs <= 0) {
    for (int k = 1; k <= K; ++k) prune_step(k);
    return model;
  }
  // Gradual pruning inside one fine-tuning run: step k at optimizer step (k-1) * T / K, so the
  // last 1/K of the run recovers at the final sparsity.
  const auto ft = finetune_options(r);
  const int64_t T =
      finetune_steps(ft, finetune_train_size(ft, model->config()), r.finetune_epochs);
  int next = 1;
  prune_step(next++);
  auto hook = [&](model::ViT& m, int64_t global_step) {
    edit::reapply_masks(m);  // AdamW cannot move a masked weight (zero grad), this makes it certain
    while (next <= K && global_step >= (next - 1) * T / K) {
      const bool was_training = m->is_training();
      prune_step(next++);
      m->train(was_training);
    }
  };
  log["finetune"] = finetune(model, ft, r.finetune_epochs, 0, hook);
  while (next <= K) prune_step(next++);  // only if the run was shorter than planned
  return model;
}

// ---- structured ---------------------------------------------------------------------------------

struct Counts {
  std::vector<int64_t> heads, neurons;  // per block (0 for a skipped sub-block)
  int64_t subblocks = 0;
};

Counts count_units(const io::ViTConfig& c) {
  Counts n;
  for (int b = 0; b < c.depth; ++b) {
    n.heads.push_back(c.blocks[b].skip_attn ? 0 : c.block_heads(b));
    n.neurons.push_back(c.blocks[b].skip_mlp ? 0 : c.block_mlp(b));
    n.subblocks += !c.blocks[b].skip_attn + !c.blocks[b].skip_mlp;
  }
  return n;
}

int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

// How many more units to remove so that `fraction` of the original ones are gone.
int64_t more_to_remove(double fraction, int64_t original, int64_t now) {
  const auto target = static_cast<int64_t>(std::llround(fraction * static_cast<double>(original)));
  return std::max<int64_t>(0, target - (original - now));
}

std::vector<std::vector<int>> choose(const std::vector<torch::Tensor>& scores,
                                     const std::vector<int64_t>& original,
                                     const std::vector<int64_t>& now, double fraction,
                                     bool per_layer) {
  if (!per_layer) return keep_global(scores, more_to_remove(fraction, sum(original), sum(now)));
  std::vector<int64_t> counts(scores.size());
  for (size_t b = 0; b < scores.size(); ++b)
    counts[b] = more_to_remove(fraction, original[b], now[b]);
  return keep_per_layer(scores, counts);
}

model::ViT prune_structured(model::ViT& dense, const PruneRequest& r, const Methods& ms,
                            double amount, nlohmann::json& log) {
  edit::check_structured_supported(dense->config(), r.model.string());
  auto model = edit::copy_model(dense);
  model->eval();
  std::vector<CalibBatch> calib;
  if (make_importance(r.criterion)->needs_data())
    calib = train::calibration_batches(r.data, model->config(), r.calib_images, 64, r.seed);
  const Counts original = count_units(model->config());
  const auto ft = finetune_options(r);
  log["steps"] = nlohmann::json::array();
  for (int k = 1; k <= r.steps; ++k) {
    const double fraction = cubic_sparsity(amount, k, r.steps);
    ScoreKinds kinds{ms.heads, ms.neurons, ms.blocks};
    auto scores = group_scores(model, r.criterion, kinds, calib, r.quiet);
    const auto& c = model->config();
    auto plan = edit::full_plan(c);
    Counts now = count_units(c);
    if (ms.blocks) {
      std::vector<double> sub;
      for (int b = 0; b < c.depth; ++b) {
        sub.push_back(scores.attn[b]);
        sub.push_back(scores.mlp[b]);
      }
      const auto keep = keep_subblocks(sub, more_to_remove(fraction, original.subblocks, now.subblocks));
      for (int b = 0; b < c.depth; ++b) {
        if (!keep[2 * b] && plan[b].attn) {
          plan[b].attn = false;
          if (scores.heads.size() > static_cast<size_t>(b)) scores.heads[b] = torch::Tensor();
          now.heads[b] = 0;
        }
        if (!keep[2 * b + 1] && plan[b].mlp) {
          plan[b].mlp = false;
          if (scores.neurons.size() > static_cast<size_t>(b)) scores.neurons[b] = torch::Tensor();
          now.neurons[b] = 0;
        }
      }
    }
    if (ms.heads) {
      const auto kept = choose(scores.heads, original.heads, now.heads, fraction, r.per_layer);
      for (int b = 0; b < c.depth; ++b)
        if (plan[b].attn) plan[b].heads = kept[b];
    }
    if (ms.neurons) {
      const auto kept = choose(scores.neurons, original.neurons, now.neurons, fraction, r.per_layer);
      for (int b = 0; b < c.depth; ++b)
        if (plan[b].mlp) plan[b].neurons = kept[b];
    }
    model = edit::slim(model, plan);
    model->eval();
    nlohmann::json step = {{"step", k},
                           {"target", fraction},
                           {"params", io::count_params(model->config())},
                           {"macs", io::count_macs(model->config())},
                           {"structure", edit::structure_json(model->config())}};
    if (r.finetune_epochs > 0)
      step["finetune"] = finetune(model, ft, r.finetune_epochs / r.steps, k - 1);
    log["steps"].push_back(step);
  }
  return model;
}

// A speed claim only from an interleaved measurement (rounds, tie rule) on the engine that runs
// the file in deployment, the runtime. Unstructured sparsity is stored as dense weights with
// zeros, so every engine does the same dense work: no claim is measured or printed for it.
nlohmann::json speed_claim(const PruneRequest& r, const Methods& ms) {
  if (!ms.unstructured.empty())
    return {{"verdict", "not measured"},
            {"note",
             "unstructured sparsity is stored as dense fp32 weights with zeros: every engine "
             "does the same dense work, so no speed-up is claimed"}};
  // 15 short rounds rather than 5 long ones: this kind of host's speed drifts in bursts of seconds,
  // and the spread over more rounds tells a burst from a difference.
  const int rounds = 15;
  const auto claim = eval::compare_files_speed(r.model, r.out, "runtime", r.speed_batch, rounds,
                                               std::max(1, r.speed_runs / rounds), r.threads);
  auto j = claim.to_json("dense", "pruned");
  j["summary"] = claim.summary();
  return j;
}

// Mean KL(dense || pruned) on the calibration images (the training split's first ones).
double prune_kl(model::ViT& dense, model::ViT& pruned, const PruneRequest& r) {
  const auto images = train::batch_inputs(
      train::calibration_batches(r.data, dense->config(), r.calib_images, 64, r.seed));
  return mean_kl(logits_of(dense, images), logits_of(pruned, images));
}

}  // namespace

void validate_request(const PruneRequest& r) {
  const auto ms = parse_methods(r.methods);
  if (!(r.amount >= 0 && r.amount < 1))
    core::throw_input("--sparsity/--ratio: expected a fraction in [0, 1), got {}", r.amount);
  for (double s : r.sweep)
    if (!(s >= 0 && s < 1)) core::throw_input("--sweep: expected fractions in [0, 1), got {}", s);
  if (r.steps < 1) core::throw_input("--steps: expected >= 1, got {}", r.steps);
  if (!(r.finetune_epochs >= 0) || !std::isfinite(r.finetune_epochs))
    core::throw_input("--finetune-epochs: expected >= 0, got {}", r.finetune_epochs);
  if (ms.unstructured == "nm") parse_nm(r.nm);
  const auto imp = make_importance(r.criterion);  // InputError for an unknown name
  if (ms.unstructured.empty()) {
    if (!imp->scores_groups())
      core::throw_input("--criterion '{}' scores single weights; structured methods take one of "
                        "[{}]",
                        r.criterion, fmt::join(group_importance_names(), ", "));
  } else if (ms.unstructured == "nm") {
    if (!imp->scores_weights())
      core::throw_input("--criterion '{}' scores groups; method nm takes one of [{}]", r.criterion,
                        fmt::join(weight_importance_names(), ", "));
  } else if (r.criterion != "l2") {
    core::throw_input("--criterion '{}': unstructured method '{}' ranks by its own score (use "
                      "method sensitivity for |w * dL/dw|; nm takes a criterion)",
                      r.criterion, ms.unstructured);
  }
  if (ms.blocks && r.per_layer)
    core::throw_input("--per-layer: method blocks removes whole sub-blocks; a per-layer ratio "
                      "has no meaning there");
  if (r.calib_images == 0) core::throw_input("--calib-images: expected >= 1, got 0");
  if (r.out.empty()) core::throw_input("--out: a path for the pruned model is required");
}

model::ViT prune_model(model::ViT& dense, const PruneRequest& r, double amount,
                       nlohmann::json& log) {
  const auto ms = parse_methods(r.methods);
  return ms.unstructured.empty() ? prune_structured(dense, r, ms, amount, log)
                                 : prune_unstructured(dense, r, ms, amount, log);
}

nlohmann::json run_prune(const PruneRequest& request) {
  validate_request(request);
  PruneRequest r = request;
  if (r.report_dir.empty())
    r.report_dir = r.out.parent_path() / (r.out.stem().string() + "_prune");
  // Data-parallel fine-tuning: every rank runs the same pruning and fine-tuning (and a sweep's,
  // amount by amount); rank 0 alone measures, writes, and runs the (non-training) comparisons.
  const bool root = train::dist::is_root();
  // With a sweep that fine-tunes, the other ranks wait for rank 0's measurements in between.
  const bool sweep_together = !r.sweep.empty() && r.finetune_epochs > 0;
  if (!root) {
    r.measure = false;
    if (!sweep_together) r.sweep.clear();
  }
  if (root) std::filesystem::create_directories(r.report_dir);
  train::configure_threads(r.threads);
  torch::manual_seed(r.seed);
  core::Stopwatch clock;
  auto [dense, class_names] = model::load_edit_input(r.model, "pruned", "prune");

  nlohmann::json j = {{"model", r.model.string()},
                      {"out", r.out.string()},
                      {"methods", r.methods},
                      {"criterion", r.criterion},
                      {"amount", r.amount},
                      {"steps", r.steps},
                      {"finetune_epochs", r.finetune_epochs},
                      {"per_layer", r.per_layer},
                      {"data", r.data}};
  if (parse_methods(r.methods).unstructured == "nm") j["nm"] = r.nm;
  j["dense"] = size_json(dense);
  Accuracy dense_acc;
  if (r.measure) {
    dense_acc = test_accuracy(dense, r.data, r.eval_limit, r.quiet, "  dense");
    j["dense"]["accuracy"] = dense_acc.to_json();
  }
  j["histogram_before"] = weight_histogram(dense, 81);
  const double hist_hi = j["histogram_before"]["hi"].get<double>();

  if (r.measure && r.finetune_epochs > 0) {  // the same pruning without fine-tuning, for contrast
    PruneRequest oneshot = r;
    oneshot.finetune_epochs = 0;
    oneshot.steps = 1;
    nlohmann::json ignored;
    auto m = prune_model(dense, oneshot, r.amount, ignored);
    j["pruned_no_finetune"] = test_accuracy(m, r.data, r.eval_limit, r.quiet, "  pruned, no FT").to_json();
    j["pruned_no_finetune"]["kl"] = prune_kl(dense, m, r);
  }

  nlohmann::json log;
  auto pruned = prune_model(dense, r, r.amount, log);
  pruned->eval();
  if (!root) {  // rank 0 writes the results; a sweep trains on
    if (sweep_together) {
      train::dist::result_of_root([] { return std::string(); }, "the pruned model's measurements");
      run_sweep(dense, r, dense_acc);
    }
    return j;
  }
  auto measure_and_write = [&] {
    j["log"] = log;
    j["pruned"] = size_json(pruned);
    j["pruned"]["structure"] = edit::structure_json(pruned->config());
    j["pruned"]["layers"] = edit::sparsity_stats(pruned)["layers"];
    j["histogram_after"] = weight_histogram(pruned, 81, hist_hi);
    const nlohmann::json record = {{"methods", r.methods},
                                   {"criterion", r.criterion},
                                   {"amount", r.amount},
                                   {"steps", r.steps},
                                   {"finetune_epochs", r.finetune_epochs}};
    exporter::save_edited_model(pruned, r.out, "vitopt.pruning", record.dump(), class_names);

    if (r.measure) {
      const auto acc = test_accuracy(pruned, r.data, r.eval_limit, r.quiet, "  pruned");
      j["pruned"]["accuracy"] = acc.to_json();
      j["pruned"]["kl"] = prune_kl(dense, pruned, r);
      j["delta_top1"] = acc.top1 - dense_acc.top1;
      j["speed"] = speed_claim(r, parse_methods(r.methods));
    }
    const double dp = j["dense"]["params"].get<double>(), dm = j["dense"]["macs"].get<double>();
    j["params_reduction"] = 1.0 - j["pruned"]["params"].get<double>() / dp;
    j["macs_reduction"] = 1.0 - j["pruned"]["macs"].get<double>() / dm;
    return std::string();
  };
  if (sweep_together)
    train::dist::result_of_root(measure_and_write, "the pruned model's measurements");
  else
    measure_and_write();
  if (!r.sweep.empty()) j["sweep"] = run_sweep(dense, r, dense_acc);
  j["seconds"] = clock.seconds();
  core::write_file_atomic(r.report_dir / "prune.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::prune
