// run_factorize: candidates (dense Linears of the chosen kinds in blocks that own their weights),
// their spectra (plain or whitened by the calibration inputs), the rank rule, the runtime speed
// filter, the factor pairs written into a rebuilt model, then fine-tuning and measurements.
#include "compress/lowrank/factorize_job.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "compress/lowrank/activation_aware.h"
#include "compress/lowrank/linear_speed.h"
#include "compress/lowrank/rank_choice.h"
#include "compress/lowrank/recover.h"
#include "compress/lowrank/spectrum.h"
#include "compress/prune/measure.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/timer.h"
#include "eval/latency.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "model/edit/factor.h"
#include "model/model_file.h"
#include "train/calibration.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"
#include "train/torch_env.h"

namespace vitopt::lowrank {
namespace {

const std::vector<std::string> kKinds = {"qkv", "proj", "fc1", "fc2"};

model::LinearImpl* block_linear(model::ViT& m, int b, const std::string& kind) {
  auto& blk = m->block(b);
  if (kind == "qkv") return blk.attn ? blk.attn->qkv.get() : nullptr;
  if (kind == "proj") return blk.attn ? blk.attn->proj.get() : nullptr;
  if (kind == "fc1") return blk.mlp ? blk.mlp->fc1.get() : nullptr;
  return blk.mlp ? blk.mlp->fc2.get() : nullptr;
}

// The Linears that multiply by block b's `kind` weights: its own and those of the blocks whose
// branch shares them (a truncation is felt by all of them).
std::vector<model::LinearImpl*> weight_users(model::ViT& m, int b, const std::string& kind) {
  std::vector<model::LinearImpl*> out{block_linear(m, b, kind)};
  const bool attn = kind == "qkv" || kind == "proj";
  const auto& c = m->config();
  for (int j = b + 1; j < c.depth; ++j) {
    const auto& bc = c.blocks[static_cast<size_t>(j)];
    if ((attn ? bc.attn_shared_with : bc.mlp_shared_with) == b) out.push_back(block_linear(m, j, kind));
  }
  return out;
}

std::string linear_name(int b, const std::string& kind) {
  return fmt::format("blocks.{}.{}.{}", b, kind == "qkv" || kind == "proj" ? "attn" : "mlp", kind);
}

int& rank_field(edit::BlockRanks& r, const std::string& kind) {
  if (kind == "qkv") return r.qkv;
  if (kind == "proj") return r.proj;
  if (kind == "fc1") return r.fc1;
  return r.fc2;
}

struct Candidate {
  int block = 0;
  std::string kind, name;
  int in = 0, out = 0;
  std::unique_ptr<LayerSpectrum> spectrum;
  std::vector<LayerOption> options;  // [0] dense; the ranks this layer may take
  int rank = 0;                      // chosen (0: dense)
  nlohmann::json log;
};

std::vector<Candidate> find_candidates(model::ViT& m, const std::vector<std::string>& kinds,
                                       nlohmann::json& skipped) {
  std::vector<Candidate> out;
  const auto& c = m->config();
  for (int b = 0; b < c.depth; ++b) {
    for (const auto& kind : kinds) {
      auto* lin = block_linear(m, b, kind);
      if (lin == nullptr) continue;  // skipped sub-block
      if (lin->shares_weights()) continue;  // runs its owner's weights: decided there
      if (lin->rank > 0) {
        skipped.push_back(
            {{"name", linear_name(b, kind)}, {"reason", "already low-rank"}, {"rank", lin->rank}});
        continue;
      }
      Candidate k;
      k.block = b;
      k.kind = kind;
      k.name = linear_name(b, kind);
      k.in = static_cast<int>(lin->in_features);
      k.out = static_cast<int>(lin->out_features);
      out.push_back(std::move(k));
    }
  }
  return out;
}

double energy_kept(const std::vector<double>& s, int rank) {
  double kept = 0, total = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    total += s[i] * s[i];
    if (static_cast<int>(i) < rank) kept += s[i] * s[i];
  }
  return total > 0 ? kept / total : 1.0;
}

// Runtime timings of dense vs factored shapes, each measured once per (in, out, rank).
class SpeedTable {
 public:
  SpeedTable(int rows, int threads) : rows_(rows), threads_(threads) {}
  const LinearSpeed& get(int in, int out, int rank) {
    const auto key = std::make_tuple(in, out, rank);
    auto it = cache_.find(key);
    if (it == cache_.end())
      it = cache_.emplace(key, time_linear(rows_, in, out, rank, threads_)).first;
    return it->second;
  }

 private:
  int rows_, threads_;
  std::map<std::tuple<int, int, int>, LinearSpeed> cache_;
};

nlohmann::json speed_json(const LinearSpeed& s) {
  return {{"dense_us", s.dense_us}, {"factored_us", s.factored_us}, {"ratio", s.ratio()}};
}

// Why a rank cannot be used, or "" when it can.
std::string rank_refusal(const Candidate& k, int rank, bool require_speedup, SpeedTable& speed) {
  if (factor_params(k.out, k.in, rank) >= static_cast<int64_t>(k.out) * k.in)
    return fmt::format("rank {} saves no parameters: {} x ({} + {}) >= {} x {}", rank, rank, k.out,
                       k.in, k.out, k.in);
  if (require_speedup) {
    const auto& s = speed.get(k.in, k.out, rank);
    if (!s.faster())
      return fmt::format("rank {} runs slower on the runtime ({:.1f} vs {:.1f} us dense)", rank,
                         s.factored_us, s.dense_us);
  }
  return "";
}

// Per-layer rules: one rank from the spectrum, kept only if usable.
void choose_per_layer(std::vector<Candidate>& ks, const FactorizeRequest& r, SpeedTable& speed) {
  for (auto& k : ks) {
    const auto s = k.spectrum->singular();
    const int full = static_cast<int>(s.size());
    const int want = r.rank_ratio ? static_cast<int>(std::lround(*r.rank_ratio * full))
                                  : rank_for_energy(s, r.energy.value_or(0.9));
    const int rank = round_rank(want, full);
    const auto refusal = rank_refusal(k, rank, r.require_speedup, speed);
    k.rank = refusal.empty() ? rank : 0;
    if (!refusal.empty()) k.log["kept_dense"] = refusal;
  }
}

// Budget rule: every usable rank of every layer priced by its KL when truncated alone, then the
// greedy allocation (rank_choice.h).
void choose_for_budget(std::vector<Candidate>& ks, model::ViT& m, int64_t to_save,
                       const FactorizeRequest& r, const std::vector<torch::Tensor>& images,
                       SpeedTable& speed, nlohmann::json& log) {
  const auto reference = prune::logits_of(m, images);
  std::vector<std::vector<LayerOption>> layers;
  for (auto& k : ks) {
    const int64_t dense = static_cast<int64_t>(k.out) * k.in;
    k.options = {{0, dense, 0.0}};
    const auto users = weight_users(m, k.block, k.kind);
    nlohmann::json tried = nlohmann::json::array();
    for (int rank = kRankMultiple; rank <= max_useful_rank(k.out, k.in); rank += kRankMultiple) {
      const auto refusal = rank_refusal(k, rank, r.require_speedup, speed);
      if (!refusal.empty()) {
        tried.push_back({{"rank", rank}, {"refused", refusal}});
        continue;
      }
      const auto approx = k.spectrum->approximation(rank);
      for (auto* u : users) u->weight_transform = [approx](const torch::Tensor&) { return approx; };
      const double kl = prune::mean_kl(reference, prune::logits_of(m, images));
      for (auto* u : users) u->weight_transform = nullptr;
      k.options.push_back({rank, factor_params(k.out, k.in, rank), kl});
      tried.push_back({{"rank", rank}, {"kl", kl}});
    }
    k.log["sensitivity"] = tried;
    layers.push_back(k.options);
  }
  const auto chosen = allocate_budget(layers, to_save);
  if (chosen.empty()) {
    int64_t most = 0;
    for (const auto& k : ks) {
      int64_t best = 0;
      for (const auto& o : k.options) best = std::max(best, k.options[0].params - o.params);
      most += best;
    }
    core::throw_input(
        "--param-budget: out of reach: the smallest usable ranks of the chosen "
        "layers save {} parameters, {} are needed{}",
        most, to_save,
        r.require_speedup ? " (ranks that run slower on the runtime are excluded; "
                            "--keep-slower allows them)"
                          : "");
  }
  for (size_t i = 0; i < ks.size(); ++i) {
    ks[i].rank = ks[i].options[chosen[i]].rank;
    if (ks[i].rank > 0) ks[i].log["kl_alone"] = ks[i].options[chosen[i]].cost;
  }
  log["budget_to_save"] = to_save;
}

// In a data-parallel run every rank must build the same model, but runtime timings differ from
// process to process: rank 0's ranks are taken everywhere.
void agree_on_ranks(std::vector<Candidate>& ks) {
  auto* comm = train::dist::current();
  if (comm == nullptr) return;
  std::string text;
  for (const auto& k : ks) text += std::to_string(k.rank) + ",";
  comm->broadcast_string(text);
  size_t pos = 0;
  for (auto& k : ks) {
    const size_t comma = text.find(',', pos);
    k.rank = std::stoi(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
}

model::LinearImpl* find_linear(model::ViT& m, const std::string& name) {
  auto mods = m->named_modules("", /*include_self=*/false);
  auto* found = mods.find(name);
  return found ? (*found)->as<model::LinearImpl>() : nullptr;
}

prune::FinetuneOptions finetune_options(const FactorizeRequest& r) {
  return prune::job_finetune_options(r.finetune, r.data, r.seed, r.device, r.quiet, r.report_dir);
}

}  // namespace

void validate_request(const FactorizeRequest& r) {
  const int rules = (r.energy ? 1 : 0) + (r.rank_ratio ? 1 : 0) + (r.param_budget.empty() ? 0 : 1);
  if (rules > 1)
    core::throw_input("--energy, --rank-ratio and --param-budget: give one rank rule, got {}",
                      rules);
  if (r.energy && !(*r.energy > 0 && *r.energy <= 1))
    core::throw_input("--energy: expected a fraction in (0, 1], got {}", *r.energy);
  if (r.rank_ratio && !(*r.rank_ratio > 0 && *r.rank_ratio <= 1))
    core::throw_input("--rank-ratio: expected a fraction in (0, 1], got {}", *r.rank_ratio);
  if (!r.param_budget.empty()) parse_param_budget(r.param_budget, 1000000);  // syntax only
  if (r.layers.empty()) core::throw_input("--layers: expected at least one of qkv,proj,fc1,fc2");
  std::set<std::string> seen;
  for (const auto& l : r.layers) {
    if (l == "patch" || l == "head")
      core::throw_input(
          "--layers: '{}' cannot be factorized: the model file format has low-rank "
          "factors for the blocks' Linears only (qkv, proj, fc1, fc2)",
          l);
    if (std::find(kKinds.begin(), kKinds.end(), l) == kKinds.end())
      core::throw_input("--layers: expected a comma list of qkv, proj, fc1, fc2, got '{}'", l);
    if (!seen.insert(l).second) core::throw_input("--layers: '{}' given twice", l);
  }
  if (r.method != "svd" && r.method != "activation-aware")
    core::throw_input("--method: expected svd or activation-aware, got '{}'", r.method);
  if (!(r.finetune_epochs >= 0) || !std::isfinite(r.finetune_epochs))
    core::throw_input("--finetune-epochs: expected >= 0, got {}", r.finetune_epochs);
  if (r.distill && r.finetune_epochs <= 0)
    core::throw_input(
        "--distill: needs --finetune-epochs > 0 (distillation happens while "
        "fine-tuning)");
  if (r.calib_images == 0) core::throw_input("--calib-images: expected >= 1, got 0");
  if (r.out.empty()) core::throw_input("--out: a path for the factorized model is required");
}

model::ViT factorize_model(model::ViT& dense, const FactorizeRequest& r, nlohmann::json& log) {
  validate_request(r);
  dense->eval();
  const auto& c = dense->config();
  log["skipped"] = nlohmann::json::array();
  auto ks = find_candidates(dense, r.layers, log["skipped"]);
  const bool budget = !r.param_budget.empty();
  std::vector<torch::Tensor> images;
  if (budget || r.method == "activation-aware")
    images = train::batch_inputs(train::calibration_batches(r.data, c, r.calib_images, 64, r.seed));
  std::map<std::string, torch::Tensor> moments;
  if (r.method == "activation-aware") {
    std::vector<std::string> names;
    for (const auto& k : ks) names.push_back(k.name);
    moments = input_second_moments(dense, names, images);
  }
  for (auto& k : ks) {
    auto* lin = block_linear(dense, k.block, k.kind);
    const auto whiten =
        r.method == "activation-aware" ? whitening(moments.at(k.name)) : torch::Tensor();
    k.spectrum = std::make_unique<LayerSpectrum>(lin->weight, whiten);
  }
  SpeedTable speed(c.num_tokens(), r.threads);
  log["speed_isa"] = timing_isa();
  if (budget) {
    const int64_t params = io::count_params(c);
    const int64_t target = parse_param_budget(r.param_budget, params);
    log["param_budget"] = target;
    if (target < params)
      choose_for_budget(ks, dense, params - target, r, images, speed, log);
    else
      log["note"] = fmt::format(
          "the model's {} parameters already fit the budget of {}: nothing "
          "factorized",
          params, target);
  } else {
    choose_per_layer(ks, r, speed);
  }
  agree_on_ranks(ks);

  auto ranks = edit::model_ranks(c);
  for (const auto& k : ks) rank_field(ranks[static_cast<size_t>(k.block)], k.kind) = k.rank;
  for (int b = 0; b < c.depth; ++b) {  // a shared branch runs its owner's weights
    auto& rb = ranks[static_cast<size_t>(b)];
    if (const int o = c.blocks[b].attn_shared_with; o >= 0)
      std::tie(rb.qkv, rb.proj) =
          std::pair{ranks[static_cast<size_t>(o)].qkv, ranks[static_cast<size_t>(o)].proj};
    if (const int o = c.blocks[b].mlp_shared_with; o >= 0)
      std::tie(rb.fc1, rb.fc2) =
          std::pair{ranks[static_cast<size_t>(o)].fc1, ranks[static_cast<size_t>(o)].fc2};
  }
  auto factored = edit::factorize(dense, ranks);
  torch::NoGradGuard no_grad;
  log["layers"] = nlohmann::json::array();
  for (auto& k : ks) {
    const auto s = k.spectrum->singular();
    k.log["name"] = k.name;
    k.log["shape"] = {k.out, k.in};
    k.log["full_rank"] = s.size();
    k.log["rank"] = k.rank;
    const int64_t dense_params = static_cast<int64_t>(k.out) * k.in;
    k.log["params_before"] = dense_params;
    k.log["params_after"] = k.rank > 0 ? factor_params(k.out, k.in, k.rank) : dense_params;
    if (k.rank > 0) {
      k.log["energy_kept"] = energy_kept(s, k.rank);
      // The spectrum's factors (whitened ones for activation-aware) replace rebuild's plain SVD.
      auto [u, v] = k.spectrum->factors(k.rank);
      auto* lin = find_linear(factored, k.name);
      lin->weight_u.copy_(u);
      lin->weight_v.copy_(v);
      if (r.require_speedup) k.log["speed"] = speed_json(speed.get(k.in, k.out, k.rank));
    }
    log["layers"].push_back(k.log);
  }
  factored->eval();
  return factored;
}

nlohmann::json run_factorize(const FactorizeRequest& request) {
  validate_request(request);
  FactorizeRequest r = request;
  if (r.report_dir.empty())
    r.report_dir = r.out.parent_path() / (r.out.stem().string() + "_factorize");
  // Data-parallel fine-tuning: every rank factorizes (with rank 0's ranks) and fine-tunes; rank 0
  // alone measures and writes.
  const bool root = train::dist::is_root();
  if (!root) r.measure = false;
  if (root) std::filesystem::create_directories(r.report_dir);
  train::configure_threads(r.threads);
  torch::manual_seed(r.seed);
  core::Stopwatch clock;
  auto [dense, class_names] = model::load_edit_input(r.model, "factorized", "factorize");

  nlohmann::json j = {{"model", r.model.string()},
                      {"out", r.out.string()},
                      {"method", r.method},
                      {"layers", r.layers},
                      {"finetune_epochs", r.finetune_epochs},
                      {"distill", r.distill},
                      {"data", r.data}};
  if (r.energy) j["energy"] = *r.energy;
  if (r.rank_ratio) j["rank_ratio"] = *r.rank_ratio;
  if (!r.param_budget.empty()) j["param_budget"] = r.param_budget;
  if (!r.energy && !r.rank_ratio && r.param_budget.empty()) j["energy"] = 0.9;
  j["dense"] = prune::size_json(dense);
  prune::Accuracy dense_acc;
  if (r.measure) {
    dense_acc = prune::test_accuracy(dense, r.data, r.eval_limit, r.quiet, "  dense");
    j["dense"]["accuracy"] = dense_acc.to_json();
  }
  nlohmann::json log;
  auto factored = factorize_model(dense, r, log);
  j["log"] = log;
  int64_t linear_before = 0, linear_after = 0;
  for (const auto& l : log["layers"]) {
    linear_before += l["params_before"].get<int64_t>();
    linear_after += l["params_after"].get<int64_t>();
  }
  j["linear_params_before"] = linear_before;
  j["linear_params_after"] = linear_after;
  if (r.measure) {
    const auto calib = train::batch_inputs(
        train::calibration_batches(r.data, dense->config(), r.calib_images, 64, r.seed));
    j["kl_before_finetune"] =
        prune::mean_kl(prune::logits_of(dense, calib), prune::logits_of(factored, calib));
    j["before_finetune"] =
        prune::test_accuracy(factored, r.data, r.eval_limit, r.quiet, "  factorized").to_json();
    if (r.method == "activation-aware") {  // the same ranks from plain SVD, for contrast
      auto plain = edit::factorize(dense, edit::model_ranks(factored->config()));
      plain->eval();
      j["plain_svd_same_ranks"] =
          prune::test_accuracy(plain, r.data, r.eval_limit, r.quiet, "  plain SVD").to_json();
      j["plain_svd_same_ranks"]["kl"] =
          prune::mean_kl(prune::logits_of(dense, calib), prune::logits_of(plain, calib));
    }
  }
  if (r.finetune_epochs > 0) {
    j["finetune"] = recover(factored, r.distill ? std::optional<model::ViT>(dense) : std::nullopt,
                            r.distill_modes, finetune_options(r), r.finetune_epochs);
    factored->eval();
  }
  if (!root) return j;
  j["factorized"] = prune::size_json(factored);
  nlohmann::json ranks = nlohmann::json::array();
  for (const auto& br : edit::model_ranks(factored->config()))
    ranks.push_back({{"qkv", br.qkv}, {"proj", br.proj}, {"fc1", br.fc1}, {"fc2", br.fc2}});
  const auto meta_json = nlohmann::json({{"method", r.method},
                                         {"ranks", ranks},
                                         {"finetune_epochs", r.finetune_epochs},
                                         {"distill", r.distill}});
  exporter::save_edited_model(factored, r.out, "vitopt.factorization", meta_json.dump(),
                              class_names);
  if (r.measure) {
    const auto acc = prune::test_accuracy(factored, r.data, r.eval_limit, r.quiet, "  final");
    j["factorized"]["accuracy"] = acc.to_json();
    j["delta_top1"] = acc.top1 - dense_acc.top1;
    // 15 rounds of 20: a batch-1 pass is ~0.3 ms, and the shared machine's noise comes in bursts.
    const auto claim = eval::compare_files_speed(r.model, r.out, "runtime", 1, 15, 20, r.threads);
    j["speed"] = claim.to_json("dense", "factorized");
    j["speed"]["summary"] = claim.summary();
  }
  j["params_reduction"] =
      1.0 - j["factorized"]["params"].get<double>() / j["dense"]["params"].get<double>();
  j["macs_reduction"] =
      1.0 - j["factorized"]["macs"].get<double>() / j["dense"]["macs"].get<double>();
  j["seconds"] = clock.seconds();
  core::write_file_atomic(r.report_dir / "factorize.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::lowrank
