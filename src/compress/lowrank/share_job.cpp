// run_share: groups (given or from block distances), the sharing edit with the chosen
// initialization, weight distillation, and the measurements that show what sharing buys: file
// size, the runtime's packed-weight memory, accuracy and speed.
#include "compress/lowrank/share_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "compress/lowrank/recover.h"
#include "compress/prune/measure.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/timer.h"
#include "eval/latency.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/model_header.h"
#include "model/edit/copy.h"
#include "model/edit/share.h"
#include "model/model_file.h"
#include "train/calibration.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"
#include "train/torch_env.h"
#include "vitopt/runtime.h"

namespace vitopt::lowrank {
namespace {

int parse_index(const std::string& s, const std::string& text) {
  try {
    size_t used = 0;
    const int v = std::stoi(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  core::throw_input(
      "--groups: expected ranges of block indices like 0-1,2-3,4-5 or 'auto', got '{}'", text);
}

// Weights of a block's Linears as one vector (the block's own or, sharing, its owner's).
torch::Tensor block_weight_vector(model::ViT& m, int b) {
  auto& blk = m->block(b);
  std::vector<torch::Tensor> parts;
  if (blk.attn) {
    parts.push_back(edit::plain_weight(*blk.attn->qkv).flatten());
    parts.push_back(edit::plain_weight(*blk.attn->proj).flatten());
  }
  if (blk.mlp) {
    parts.push_back(edit::plain_weight(*blk.mlp->fc1).flatten());
    parts.push_back(edit::plain_weight(*blk.mlp->fc2).flatten());
  }
  return parts.empty() ? torch::zeros({1}) : torch::cat(parts);
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return 0;  // different shapes cannot share
  const double na = a.norm().item<double>(), nb = b.norm().item<double>();
  return na > 0 && nb > 0 ? (a * b).sum().item<double>() / (na * nb) : 0;
}

// The runtime's packed-weight bytes and peak buffer bytes for one batch-1 forward of a file.
nlohmann::json runtime_memory(const std::filesystem::path& path, int threads) {
  runtime::RuntimeOptions o;
  o.threads = threads;
  runtime::reset_peak_allocated_bytes();
  const size_t before = runtime::allocated_bytes();
  auto engine = runtime::Engine::load(path, o);
  const size_t loaded = runtime::allocated_bytes() - before;
  const auto& info = engine->info();
  std::vector<float> image(
      static_cast<size_t>(info.in_channels) * info.image_size * info.image_size, 0.f),
      logits(static_cast<size_t>(info.num_classes));
  engine->run(image.data(), 1, logits.data());
  return {{"loaded_bytes", loaded}, {"peak_bytes", runtime::peak_allocated_bytes() - before}};
}

prune::FinetuneOptions finetune_options(const ShareRequest& r) {
  return prune::job_finetune_options(r.finetune, r.data, r.seed, r.device, r.quiet, r.report_dir);
}

}  // namespace

std::vector<std::vector<int>> parse_groups(const std::string& text, int depth) {
  std::vector<std::vector<int>> groups;
  std::vector<bool> used(static_cast<size_t>(depth), false);
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) core::throw_input("--groups: empty group in '{}'", text);
    const auto dash = item.find('-');
    const int a = parse_index(item.substr(0, dash), text);
    const int b = dash == std::string::npos ? a : parse_index(item.substr(dash + 1), text);
    if (a < 0 || b >= depth || a > b)
      core::throw_input("--groups: '{}' is not a range of blocks in [0, {}]", item, depth - 1);
    std::vector<int> g;
    for (int i = a; i <= b; ++i) {
      if (used[static_cast<size_t>(i)])
        core::throw_input("--groups: block {} is in two groups ('{}')", i, text);
      used[static_cast<size_t>(i)] = true;
      g.push_back(i);
    }
    groups.push_back(g);
  }
  return groups;
}

int group_centre(const std::vector<std::vector<double>>& d, const std::vector<int>& group) {
  int best = group.front();
  double best_cost = std::numeric_limits<double>::infinity();
  for (int c : group) {
    double cost = 0;
    for (int i : group) cost += d[static_cast<size_t>(i)][static_cast<size_t>(c)];
    if (cost < best_cost - 1e-12) best_cost = cost, best = c;
  }
  return best;
}

Grouping best_grouping(const std::vector<std::vector<double>>& d, int num_groups) {
  const int n = static_cast<int>(d.size());
  if (num_groups < 1 || num_groups > n)
    core::throw_input("--num-groups: expected 1..{} for a model of {} blocks, got {}", n, n,
                      num_groups);
  auto segment_cost = [&](int a, int b) {  // blocks [a, b)
    std::vector<int> g;
    for (int i = a; i < b; ++i) g.push_back(i);
    const int c = group_centre(d, g);
    double cost = 0;
    for (int i : g) cost += d[static_cast<size_t>(i)][static_cast<size_t>(c)];
    return cost;
  };
  const double inf = std::numeric_limits<double>::infinity();
  // best[g][e]: least cost of splitting blocks [0, e) into g groups; cut[g][e]: where the last
  // starts.
  std::vector<std::vector<double>> best(num_groups + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<int>> cut(num_groups + 1, std::vector<int>(n + 1, 0));
  best[0][0] = 0;
  for (int g = 1; g <= num_groups; ++g)
    for (int e = g; e <= n; ++e)
      for (int s = g - 1; s < e; ++s) {
        const double v = best[g - 1][s] + segment_cost(s, e);
        if (v < best[g][e] - 1e-12) best[g][e] = v, cut[g][e] = s;
      }
  Grouping out;
  for (int g = num_groups, e = n; g > 0; --g) {
    const int s = cut[g][e];
    std::vector<int> group;
    for (int i = s; i < e; ++i) group.push_back(i);
    out.groups.insert(out.groups.begin(), group);
    e = s;
  }
  for (const auto& g : out.groups) out.centres.push_back(group_centre(d, g));
  return out;
}

std::vector<std::vector<double>> block_distances(model::ViT& m,
                                                 const std::vector<torch::Tensor>& images) {
  torch::NoGradGuard no_grad;
  m->eval();
  const int depth = m->config().depth;
  model::Trace trace;
  trace.record_hidden = true;
  std::vector<torch::Tensor> inputs(static_cast<size_t>(depth));
  for (const auto& x : images) {
    trace.hidden.clear();
    m->forward(x, &trace);
    for (int b = 0; b < depth; ++b) {
      auto& t = inputs[static_cast<size_t>(b)];
      t = t.defined() ? torch::cat({t, trace.hidden[b]}) : trace.hidden[b];
    }
  }
  std::vector<torch::Tensor> weights;
  for (int b = 0; b < depth; ++b) weights.push_back(block_weight_vector(m, b));
  // update[i][j]: block j's residual update on block i's input.
  auto update = [&](int i, int j) {
    const auto& h = inputs[static_cast<size_t>(i)];
    return (m->block(j).forward(h) - h).flatten();
  };
  std::vector<std::vector<double>> d(depth, std::vector<double>(depth, 0.0));
  for (int i = 0; i < depth; ++i)
    for (int j = i + 1; j < depth; ++j) {
      const bool alike = m->config().blocks[i].skip_attn == m->config().blocks[j].skip_attn &&
                         m->config().blocks[i].skip_mlp == m->config().blocks[j].skip_mlp &&
                         weights[i].sizes() == weights[j].sizes();
      double v = 2.0;  // blocks of different shapes are as far apart as can be
      if (alike) {
        const double w = cosine(weights[i], weights[j]);
        const double o =
            (cosine(update(i, i), update(i, j)) + cosine(update(j, j), update(j, i))) / 2;
        v = 1.0 - (w + o) / 2;
      }
      d[i][j] = d[j][i] = v;
    }
  return d;
}

void validate_request(const ShareRequest& r) {
  for (const auto& w : r.what)
    if (w != "attn" && w != "mlp")
      core::throw_input("--what: expected a comma list of attn, mlp, got '{}'", w);
  if (r.what.empty()) core::throw_input("--what: expected a comma list of attn, mlp, got nothing");
  if (r.delta_rank < 0) core::throw_input("--delta-rank: expected >= 0, got {}", r.delta_rank);
  if (r.init != "central" && r.init != "mean" && r.init != "first")
    core::throw_input("--init: expected central, mean or first, got '{}'", r.init);
  if (r.num_groups < 0) core::throw_input("--num-groups: expected >= 0, got {}", r.num_groups);
  if (r.groups.empty()) core::throw_input("--groups: expected ranges like 0-1,2-3 or 'auto'");
  if (!(r.finetune_epochs >= 0) || !std::isfinite(r.finetune_epochs))
    core::throw_input("--finetune-epochs: expected >= 0, got {}", r.finetune_epochs);
  if (r.calib_images == 0) core::throw_input("--calib-images: expected >= 1, got 0");
  if (r.out.empty()) core::throw_input("--out: a path for the shared model is required");
}

model::ViT share_model(model::ViT& model, const ShareRequest& r, nlohmann::json& log) {
  validate_request(r);
  const auto& c = model->config();
  for (int b = 0; b < c.depth; ++b)
    if (c.blocks[b].shares())
      core::throw_input("--model: block {} already shares weights; share an unshared model", b);
  std::vector<std::vector<double>> distance;
  if (r.groups == "auto" || r.init == "central") {
    const auto images = train::batch_inputs(
        train::calibration_batches(r.data, c, std::min<size_t>(r.calib_images, 256), 64, r.seed));
    distance = block_distances(model, images);
    log["distances"] = distance;
  }
  std::vector<std::vector<int>> groups;
  if (r.groups == "auto") {
    const int g = r.num_groups > 0 ? r.num_groups : std::max(1, c.depth / 2);
    groups = best_grouping(distance, g).groups;
  } else {
    groups = parse_groups(r.groups, c.depth);
  }
  if (auto* comm = train::dist::current()) {  // data-parallel: rank 0's groups on every rank
    std::string text;
    for (const auto& g : groups)
      text += fmt::format("{}{}-{}", text.empty() ? "" : ",", g.front(), g.back());
    comm->broadcast_string(text);
    groups = parse_groups(text, c.depth);
  }
  edit::ShareSpec spec;
  spec.attn = std::count(r.what.begin(), r.what.end(), "attn") > 0;
  spec.mlp = std::count(r.what.begin(), r.what.end(), "mlp") > 0;
  spec.delta_rank = r.delta_rank;
  nlohmann::json glog = nlohmann::json::array();
  for (const auto& g : groups) {
    edit::ShareGroup sg{g, g.front()};  // "first"
    if (r.init == "mean") sg.init_from = -1;
    if (r.init == "central") sg.init_from = group_centre(distance, g);
    nlohmann::json e = {{"blocks", g}, {"owner", g.front()}};
    e["initialized_from"] =
        sg.init_from >= 0 ? nlohmann::json(sg.init_from) : nlohmann::json("mean");
    glog.push_back(e);
    if (g.size() > 1) spec.groups.push_back(sg);
  }
  log["groups"] = glog;
  log["what"] = r.what;
  log["delta_rank"] = r.delta_rank;
  auto shared = edit::share_blocks(model, spec);
  shared->eval();
  return shared;
}

nlohmann::json run_share(const ShareRequest& request) {
  validate_request(request);
  ShareRequest r = request;
  if (r.report_dir.empty()) r.report_dir = r.out.parent_path() / (r.out.stem().string() + "_share");
  const bool root = train::dist::is_root();  // every rank fine-tunes; rank 0 measures and writes
  if (!root) r.measure = false;
  if (root) std::filesystem::create_directories(r.report_dir);
  train::configure_threads(r.threads);
  torch::manual_seed(r.seed);
  core::Stopwatch clock;
  auto [original, class_names] = model::load_edit_input(r.model, "shared", "share");
  nlohmann::json j = {{"model", r.model.string()},
                      {"out", r.out.string()},
                      {"groups_requested", r.groups},
                      {"init", r.init},
                      {"finetune_epochs", r.finetune_epochs},
                      {"distill_modes", r.distill_modes},
                      {"data", r.data}};
  j["original"] = prune::size_json(original);
  prune::Accuracy base;
  if (r.measure) {
    base = prune::test_accuracy(original, r.data, r.eval_limit, r.quiet, "  original");
    j["original"]["accuracy"] = base.to_json();
  }
  nlohmann::json log;
  auto shared = share_model(original, r, log);
  j["log"] = log;
  if (r.measure)
    j["before_finetune"] =
        prune::test_accuracy(shared, r.data, r.eval_limit, r.quiet, "  shared").to_json();
  if (r.finetune_epochs > 0) {
    j["finetune"] =
        recover(shared, original, r.distill_modes, finetune_options(r), r.finetune_epochs);
    shared->eval();
  }
  if (!root) return j;
  j["shared"] = prune::size_json(shared);
  const nlohmann::json record = {{"groups", log["groups"]},
                                 {"what", r.what},
                                 {"delta_rank", r.delta_rank},
                                 {"init", r.init},
                                 {"finetune_epochs", r.finetune_epochs},
                                 {"distill_modes", r.distill_modes}};
  exporter::save_edited_model(shared, r.out, "vitopt.sharing", record.dump(), class_names);
  j["original"]["file_bytes"] = std::filesystem::file_size(r.model);
  j["shared"]["file_bytes"] = std::filesystem::file_size(r.out);
  if (r.measure) {
    const auto acc = prune::test_accuracy(shared, r.data, r.eval_limit, r.quiet, "  final");
    j["shared"]["accuracy"] = acc.to_json();
    j["delta_top1"] = acc.top1 - base.top1;
    j["original"]["runtime_memory"] = runtime_memory(r.model, r.threads);
    j["shared"]["runtime_memory"] = runtime_memory(r.out, r.threads);
    const auto claim = eval::compare_files_speed(r.model, r.out, "runtime", 1, 15, 20, r.threads);
    j["speed"] = claim.to_json("original", "shared");
    j["speed"]["summary"] = claim.summary();
  }
  j["params_reduction"] =
      1.0 - j["shared"]["params"].get<double>() / j["original"]["params"].get<double>();
  j["seconds"] = clock.seconds();
  core::write_file_atomic(r.report_dir / "share.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::lowrank
