// Candidate building (see candidate.h): one genome -> the model the single-technique commands
// would make, applied in the order slim -> factorize/share -> merge -> quantize.
#include "search/candidate.h"

#include <algorithm>
#include <numeric>

#include "compress/circuits/eap.h"
#include "compress/prune/importance.h"
#include "core/error.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "model/edit/copy.h"
#include "model/edit/plan.h"
#include "model/edit/resolution.h"
#include "model/edit/slim.h"
#include "model/quantized_model.h"

namespace vitopt::search {
namespace {

// Indices 0..n-1 by descending score (stable: equal scores keep index order).
std::vector<int> order_by_score(const torch::Tensor& scores, int n) {
  std::vector<int> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (!scores.defined()) return idx;
  const auto s = scores.to(torch::kDouble).contiguous();
  const double* v = s.data_ptr<double>();
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return v[a] > v[b]; });
  return idx;
}

// The first `count` of `order`, ascending (slim wants indices in model order).
std::vector<int> top(const std::vector<int>& order, int count) {
  std::vector<int> kept(order.begin(), order.begin() + std::min<size_t>(count, order.size()));
  std::sort(kept.begin(), kept.end());
  return kept;
}

bool is_block_unit(const std::string& unit, int block) {
  const std::string prefix = "blocks." + std::to_string(block) + ".";
  return unit.compare(0, prefix.size(), prefix) == 0;
}

// EAP-IG scores (circuits/eap.h): per head and neuron the KL to the full model its mean ablation
// is estimated to cause, integrated over 5 points of the ablated-to-clean path (the KL's gradient
// vanishes at the clean point). |score| is the importance.
prune::GroupScores eap_scores(model::ViT& model, const std::vector<train::CalibBatch>& calib) {
  circuits::AblatedModel ablated(model, calib, circuits::Ablation::Mean, /*task_loss=*/false,
                                 /*seed=*/0);
  const auto leaves = ablated.attribute(circuits::ig_alphas(5));
  auto scores = prune::GroupScores::empty(model->config().depth);
  for (size_t b = 0; b < leaves.heads.size(); ++b) {
    if (leaves.heads[b].defined()) scores.heads[b] = leaves.heads[b].abs();
    if (leaves.neurons[b].defined()) scores.neurons[b] = leaves.neurons[b].abs();
  }
  return scores;
}

}  // namespace

const std::vector<std::string>& inheritance_criteria() {
  static const std::vector<std::string> names{"taylor", "l2", "loss", "eap"};
  return names;
}

Inheritance inherit(model::ViT& model, const std::string& criterion,
                    const std::vector<train::CalibBatch>& calib, bool quiet) {
  const auto& c = model->config();
  edit::check_structured_supported(c, "search");
  Inheritance inh;
  inh.criterion = criterion;
  prune::ScoreKinds kinds;
  kinds.heads = kinds.neurons = true;
  model->eval();
  const auto scores = criterion == "eap"
                          ? eap_scores(model, calib)
                          : prune::group_scores(model, criterion, kinds, calib, quiet);
  for (int b = 0; b < c.depth; ++b) {
    const auto bi = static_cast<size_t>(b);
    inh.head_order.push_back(c.blocks[bi].skip_attn
                                 ? std::vector<int>{}
                                 : order_by_score(scores.heads[bi], c.block_heads(b)));
    inh.neuron_order.push_back(c.blocks[bi].skip_mlp
                                   ? std::vector<int>{}
                                   : order_by_score(scores.neurons[bi], c.block_mlp(b)));
  }
  inh.means = edit::measure_means(model, train::batch_inputs(calib));
  return inh;
}

edit::StructurePlan structure_plan(const io::ViTConfig& c, const Inheritance& inh,
                                   const Genome& genome) {
  if (static_cast<int>(genome.blocks.size()) != c.depth)
    core::throw_internal("search: genome of {} blocks for a {}-block model", genome.blocks.size(),
                         c.depth);
  edit::StructurePlan plan(static_cast<size_t>(c.depth));
  for (size_t b = 0; b < plan.size(); ++b) {
    const auto& g = genome.blocks[b];
    plan[b].attn = g.attn && g.heads > 0;
    plan[b].mlp = g.mlp && g.mlp_dim > 0;
    if (plan[b].attn) plan[b].heads = top(inh.head_order[b], g.heads);
    if (plan[b].mlp) plan[b].neurons = top(inh.neuron_order[b], g.mlp_dim);
  }
  return plan;
}

model::ViT build_fp32(model::ViT& base, const Inheritance& inh, const Genome& genome) {
  const auto& c = base->config();
  // 1. Structure: the most important heads / neurons of each block, removed parts' means folded.
  const auto plan = structure_plan(c, inh, genome);
  auto slimmed = edit::slim(base, plan, &inh.means);
  // 2. Ranks, sharing and merging: what genome_config says, on the slimmed structure.
  const auto target = genome_config(c, genome);
  io::ViTConfig cfg = slimmed->config();
  for (size_t b = 0; b < cfg.blocks.size(); ++b) {
    auto& dst = cfg.blocks[b];
    const auto& want = target.blocks[b];
    dst.qkv_rank = want.qkv_rank;
    dst.proj_rank = want.proj_rank;
    dst.fc1_rank = want.fc1_rank;
    dst.fc2_rank = want.fc2_rank;
    dst.attn_shared_with = want.attn_shared_with;
    dst.mlp_shared_with = want.mlp_shared_with;
    dst.delta_rank = want.delta_rank;
    dst.merge_r = want.merge_r;
    // A block sharing its attention runs its owner's heads: say so in the bookkeeping.
    if (want.attn_shared_with >= 0)
      dst.kept_heads = cfg.blocks[static_cast<size_t>(want.attn_shared_with)].kept_heads;
  }
  cfg.normalize(cfg.name);
  auto out = edit::rebuild(slimmed, cfg);
  // 3. Input resolution: the position grid resampled, every other weight as it is.
  if (genome.resolution != 0) out = edit::resize_input(out, genome.resolution);
  out->eval();
  return out;
}

quant::PtqOptions ptq_options(model::ViT& fp32, const Genome& genome) {
  quant::PtqOptions o;  // the quantize command's defaults: W8 per channel, A8 static asymmetric
  bool any_input = false;
  for (const auto& unit : model::quantizable_linears(fp32)) {
    for (size_t b = 0; b < genome.blocks.size(); ++b) {
      const auto& g = genome.blocks[b];
      if (!is_block_unit(unit, static_cast<int>(b)) || g.wbits >= 32) continue;
      o.layer_wbits[unit] = g.wbits;
      any_input = any_input || g.abits < 32;
    }
  }
  if (!any_input) o.abits.reset();
  return o;
}

std::optional<quant::QuantizedState> quantize_candidate(model::ViT& fp32, const Genome& genome,
                                                        const torch::Tensor& calib) {
  if (!quantized(genome)) return std::nullopt;
  auto o = ptq_options(fp32, genome);
  auto s = quant::run_ptq(fp32, calib, o);
  // Which block a unit belongs to (-1: patch embedding, head: stays fp32).
  auto block_of = [&](const std::string& unit) {
    for (size_t b = 0; b < genome.blocks.size(); ++b)
      if (is_block_unit(unit, static_cast<int>(b))) return static_cast<int>(b);
    return -1;
  };
  const auto units = model::quantizable_linears(s.fp32);
  for (const auto& unit : units) {
    const int b = block_of(unit);
    const bool keep_w = b >= 0 && genome.blocks[static_cast<size_t>(b)].wbits < 32;
    if (const auto wname = model::unit_weight_name(s.fp32, unit); !keep_w && !wname.empty())
      s.weights.erase(wname);
    const bool keep_a = keep_w && genome.blocks[static_cast<size_t>(b)].abits < 32;
    if (!keep_a) s.inputs.erase(unit);
  }
  // Inputs at other than 8 bits: calibrated again at their width on the quantized weights.
  std::map<int, std::vector<std::string>> by_bits;
  for (auto& [unit, q] : s.inputs) {
    const int bits = genome.blocks[static_cast<size_t>(block_of(unit))].abits;
    if (bits != q.bits) by_bits[bits].push_back(unit);
  }
  if (!by_bits.empty()) {
    quant::QuantizedState weights_only = s;
    weights_only.inputs.clear();
    auto wq = quant::simulate(weights_only);
    for (const auto& [bits, names] : by_bits) {
      auto ob = o;
      ob.abits = bits;
      const auto recal = quant::calibrate_inputs(wq, calib, ob);
      for (const auto& name : names) s.inputs[name] = recal.at(name);
    }
  }
  return s;
}

void save_candidate(model::ViT& fp32, const std::optional<quant::QuantizedState>& quantized,
                    const Genome& genome, const nlohmann::json& record,
                    const std::vector<std::string>& class_names,
                    const std::filesystem::path& path) {
  nlohmann::json rec = record;
  rec["genome"] = genome.to_json();
  rec["key"] = genome.key();
  std::map<std::string, std::string> meta{{"vitopt.search", rec.dump()}};
  if (!class_names.empty()) meta[io::kClassNamesKey] = nlohmann::json(class_names).dump();
  if (quantized) {
    quant::save_quantized(*quantized, path, meta);
  } else {
    exporter::save_model(fp32, path, meta);
  }
}

}  // namespace vitopt::search
