// run_circuits: the analysis set and ablation values once, then per setting the circuit (ACDC
// sweep, or EAP scores computed once and cut at each keep ratio), the slimmed model, its KL to
// the full model, optional fine-tuning (data-parallel when started so), and the files.
#include "compress/circuits/circuits_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/acdc.h"
#include "compress/circuits/circuit_graph.h"
#include "compress/circuits/circuit_slim.h"
#include "compress/circuits/eap.h"
#include "compress/circuits/edge_search.h"
#include "compress/circuits/runtime_metric.h"
#include "compress/prune/measure.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/timer.h"
#include "export/model_writer.h"
#include "model/edit/plan.h"
#include "model/model_file.h"
#include "train/calibration.h"
#include "train/distributed/communicator.h"
#include "train/distributed/world.h"
#include "train/torch_env.h"

namespace vitopt::circuits {
namespace {

struct Setting {
  double value = 0;
  Circuit circuit;
  std::vector<double> scores;  // per node: EAP score, or ACDC's metric increase when tried
  nlohmann::json log;
  // Edge level: the kept edges and their scores (readers x writers); the node circuit above is
  // what they leave.
  EdgeMask edges;
  std::vector<double> edge_scores;
};

int log_edges_kept(const EdgeMask& mask) {
  int n = 0;
  for (const auto& row : mask) n += static_cast<int>(std::count(row.begin(), row.end(), 1));
  return n;
}

nlohmann::json steps_json(const std::vector<AcdcStep>& steps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& st : steps)
    out.push_back({{"tried", st.node}, {"metric", st.metric}, {"removed", st.removed}});
  return out;
}

// The settings' circuits as rank 0 sends them to the other ranks of a data-parallel run: per
// setting its value and '1'/'0' strings of kept heads, neurons and sub-blocks.
std::string circuits_text(const std::vector<Setting>& settings) {
  auto bits = [](const std::vector<char>& kept) {
    std::string out;
    for (char k : kept) out += k ? '1' : '0';
    return out;
  };
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : settings) {
    nlohmann::json heads = nlohmann::json::array(), neurons = nlohmann::json::array();
    for (const auto& h : s.circuit.heads) heads.push_back(bits(h));
    for (const auto& n : s.circuit.neurons) neurons.push_back(bits(n));
    out.push_back({{"value", s.value},
                   {"embed", s.circuit.embed},
                   {"heads", heads},
                   {"neurons", neurons},
                   {"attn", bits(s.circuit.attn)},
                   {"mlp", bits(s.circuit.mlp)}});
  }
  return out.dump();
}

std::vector<Setting> settings_from_text(const std::string& text) {
  auto kept = [](const std::string& bits) {
    std::vector<char> out;
    for (char b : bits) out.push_back(b == '1' ? 1 : 0);
    return out;
  };
  std::vector<Setting> settings;
  for (const auto& j : nlohmann::json::parse(text)) {
    Setting s;
    s.value = j.at("value").get<double>();
    s.circuit.embed = j.at("embed").get<bool>();
    for (const auto& h : j.at("heads")) s.circuit.heads.push_back(kept(h.get<std::string>()));
    for (const auto& n : j.at("neurons")) s.circuit.neurons.push_back(kept(n.get<std::string>()));
    s.circuit.attn = kept(j.at("attn").get<std::string>());
    s.circuit.mlp = kept(j.at("mlp").get<std::string>());
    settings.push_back(std::move(s));
  }
  return settings;
}

// Rank 0's part: the full model's metric (and accuracy), then each setting's circuit with its
// scores and log (ACDC sweep, or attribution scores computed once and cut at each keep ratio).
std::vector<Setting> discover(const CircuitsRequest& r, model::ViT& full,
                              const std::vector<train::CalibBatch>& batches, Ablation ablation,
                              AblatedModel& ablated, const std::vector<Node>& nodes,
                              nlohmann::json& j, std::optional<EdgeModel>& edges) {
  const auto& config = full->config();
  const bool edge_level = r.level == "edge";
  std::vector<Setting> settings;
  j["full"] = prune::size_json(full);
  j["full"]["metric"] = ablated.metric(Circuit::full(config));
  if (r.measure)
    j["full"]["accuracy"] =
        prune::test_accuracy(full, r.data, r.eval_limit, r.quiet, "  full").to_json();

  if (edge_level) edges.emplace(full, batches, ablation, r.use_task_loss, r.seed);
  if (r.method == "acdc") {
    // Node-level trials on the runtime where the ablation folds into the slimmed model.
    std::optional<RuntimeMetric> runtime;
    if (!edge_level &&
        (r.engine == "runtime" || (r.engine == "auto" && RuntimeMetric::supports(ablated))))
      runtime.emplace(ablated, batches, r.report_dir, r.threads);
    for (double t : r.thresholds) {
      core::Stopwatch sweep;
      Setting s;
      s.value = t;
      if (edge_level) {
        auto res = acdc_edges(*edges, t, r.quiet);
        s.edges = res.mask;
        s.edge_scores = res.scores;
        s.circuit = node_circuit(config, edges->graph(), res.mask);
        s.log = {{"steps", steps_json(res.steps)},
                 {"edge_metric", res.metric},
                 {"forwards", res.forwards}};
      } else {
        const auto res =
            runtime ? acdc(
                          config, [&](const Circuit& circuit, int) { return (*runtime)(circuit); },
                          nodes, t, r.quiet)
                    : acdc(ablated, nodes, t, r.quiet);
        s.circuit = res.circuit;
        // A node's ACDC score: how much the metric grew when it was tried (relative to the
        // circuit of that moment), the quantity compared with the threshold.
        s.scores.assign(nodes.size(), 0.0);
        double current = res.full_metric;
        for (const auto& st : res.steps) {
          for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i].name == st.node) s.scores[i] = st.metric - current;
          if (st.removed) current = st.metric;
        }
        s.log = {{"steps", steps_json(res.steps)},
                 {"forwards", res.forwards},
                 {"engine", runtime ? "runtime" : "torch"}};
      }
      s.log["threshold"] = t;
      s.log["seconds"] = sweep.seconds();
      settings.push_back(std::move(s));
    }
  } else {
    core::Stopwatch scoring;
    const auto alphas = ig_alphas(r.method == "eap-ig" ? r.ig_steps : 0);
    std::vector<double> scores, edge_scores;
    if (edge_level)
      edge_scores = edges->attribute(alphas);
    else
      scores = node_scores(nodes, ablated.attribute(alphas));
    const double seconds = scoring.seconds();
    for (double k : r.keep_ratios) {
      Setting s;
      s.value = k;
      if (edge_level) {
        s.edges = keep_top_edges(edges->graph(), edge_scores, k, parse_ranking(r.rank));
        s.edge_scores = edge_scores;
        s.circuit = node_circuit(config, edges->graph(), s.edges);
        s.log["edge_metric"] = edges->metric(s.edges);
      } else {
        s.circuit = keep_top(config, nodes, scores, k, parse_ranking(r.rank));
        s.scores = scores;
      }
      s.log["keep_ratio"] = k;
      s.log["rank"] = r.rank;
      s.log["scoring_seconds"] = seconds;
      if (r.method == "eap-ig") s.log["ig_steps"] = r.ig_steps;
      settings.push_back(std::move(s));
    }
  }
  for (auto& s : settings) s.log["metric"] = ablated.metric(s.circuit);  // of the node circuit
  return settings;
}

}  // namespace

std::string setting_label(const std::string& method, double value) {
  return fmt::format("{}_{}_{}", method, method == "acdc" ? "threshold" : "keep", value);
}

void validate_request(const CircuitsRequest& r) {
  if (r.method != "acdc" && r.method != "eap" && r.method != "eap-ig")
    core::throw_input("--method: expected acdc, eap or eap-ig, got '{}'", r.method);
  if (r.level != "node" && r.level != "edge")
    core::throw_input("--level: expected node or edge, got '{}'", r.level);
  parse_ablation(r.ablation);
  parse_ranking(r.rank);
  if (r.method == "acdc") {
    if (r.thresholds.empty())
      core::throw_input("--threshold: acdc needs at least one threshold (e.g. 0.01,0.05)");
    if (!r.keep_ratios.empty())
      core::throw_input("--keep-ratio: applies to eap and eap-ig; acdc takes --threshold");
    for (double t : r.thresholds)
      if (!(t >= 0) || !std::isfinite(t))
        core::throw_input("--threshold: expected values >= 0, got {}", t);
  } else {
    if (r.keep_ratios.empty())
      core::throw_input("--keep-ratio: {} needs at least one ratio in (0, 1] (e.g. 0.9,0.8)",
                        r.method);
    if (!r.thresholds.empty())
      core::throw_input("--threshold: applies to acdc; {} takes --keep-ratio", r.method);
    for (double k : r.keep_ratios)
      if (!(k > 0 && k <= 1))
        core::throw_input("--keep-ratio: expected values in (0, 1], got {}", k);
  }
  if (r.method == "eap" && !r.use_task_loss)
    core::throw_input(
        "--method eap: the gradient of KL(full || circuit) is zero at the full model, so "
        "plain EAP would score every node 0; use --method eap-ig, or --use-task-loss");
  if (r.method == "eap-ig" && r.ig_steps < 1)
    core::throw_input("--ig-steps: expected >= 1, got {}", r.ig_steps);
  if (r.analysis_batches < 1)
    core::throw_input("--analysis-batches: expected >= 1, got {}", r.analysis_batches);
  if (r.analysis_batch_size < 1)
    core::throw_input("--analysis-batch-size: expected >= 1, got {}", r.analysis_batch_size);
  if (r.neuron_group < 1)
    core::throw_input("--neuron-group: expected >= 1, got {}", r.neuron_group);
  if (r.engine != "auto" && r.engine != "runtime" && r.engine != "torch")
    core::throw_input("--engine: expected auto, runtime or torch, got '{}'", r.engine);
  if (r.engine == "runtime" &&
      (r.ablation == "resample" || r.level == "edge" || r.method != "acdc"))
    core::throw_input(
        "--engine runtime: node-level ACDC with mean or zero ablation only (resample ablation, "
        "edge level and EAP run on LibTorch; use --engine auto)");
  if (!(r.finetune_epochs >= 0) || !std::isfinite(r.finetune_epochs))
    core::throw_input("--finetune-epochs: expected >= 0, got {}", r.finetune_epochs);
  const size_t settings = r.thresholds.size() + r.keep_ratios.size();
  if (!r.out.empty() && settings != 1)
    core::throw_input("circuits: a single output model file takes one setting, got {}", settings);
  if (r.out.empty() && r.report_dir.empty())
    core::throw_input("--out: a folder for the circuits and models is required");
}

nlohmann::json run_circuits(const CircuitsRequest& request) {
  validate_request(request);
  CircuitsRequest r = request;
  if (r.report_dir.empty())
    r.report_dir = r.out.parent_path() / (r.out.stem().string() + "_circuits");
  // Data parallel: rank 0 discovers the circuits (the others wait for them however long that
  // takes), every rank slims and fine-tunes them together, rank 0 alone measures and writes.
  const bool root = train::dist::is_root();
  if (!root) r.measure = false;
  if (root) std::filesystem::create_directories(r.report_dir);
  train::configure_threads(r.threads);
  torch::manual_seed(r.seed);
  core::Stopwatch clock;
  auto [full, class_names] = model::load_edit_input(r.model, "reduced to a circuit", "circuits");
  const auto& config = full->config();
  edit::check_structured_supported(config, r.model.string());
  const auto batches = train::calibration_batches(
      r.data, config, static_cast<size_t>(r.analysis_batches * r.analysis_batch_size),
      r.analysis_batch_size, r.seed);
  const auto ablation = parse_ablation(r.ablation);
  AblatedModel ablated(full, batches, ablation, r.use_task_loss, r.seed);
  const auto nodes = circuit_nodes(config, r.neuron_group);
  const auto analysis_images = train::batch_inputs(batches);
  const auto full_logits = root ? prune::logits_of(full, analysis_images) : torch::Tensor();

  nlohmann::json j = {{"model", r.model.string()},
                      {"method", r.method},
                      {"level", r.level},
                      {"ablation", r.ablation},
                      {"metric", r.use_task_loss ? "task_loss" : "kl"},
                      {"analysis_images", ablated.images()},
                      {"neuron_group", r.neuron_group},
                      {"data", r.data},
                      {"finetune_epochs", r.finetune_epochs}};
  std::vector<Setting> settings;
  const bool edge_level = r.level == "edge";
  std::optional<EdgeModel> edges;
  const auto found = train::dist::result_of_root(
      [&] {
        settings = discover(r, full, batches, ablation, ablated, nodes, j, edges);
        return circuits_text(settings);
      },
      "the circuit discovery");
  if (!root) settings = settings_from_text(found);

  j["settings"] = nlohmann::json::array();
  for (auto& s : settings) {
    const auto label = setting_label(r.method, s.value);
    auto log = s.log;
    log["label"] = label;
    log["circuit"] = circuit_json(nodes, s.circuit, s.scores);
    if (edge_level && root)
      log["circuit"]["edge_level"] = edges_json(edges->graph(), s.edges, s.edge_scores);
    auto slim = slim_circuit(ablated, s.circuit);
    slim->eval();
    if (root)
      log["kl_to_full"] = prune::mean_kl(full_logits, prune::logits_of(slim, analysis_images));
    log["slimmed"] = prune::size_json(slim);
    if (r.measure)
      log["before_finetune"] =
          prune::test_accuracy(slim, r.data, r.eval_limit, r.quiet, "  " + label).to_json();
    if (r.finetune_epochs > 0) {
      auto opts = prune::job_finetune_options(r.finetune, r.data, r.seed, r.device, r.quiet,
                                              r.report_dir / (label + "_finetune"));
      log["finetune"] = prune::finetune(slim, opts, r.finetune_epochs, 0);
      slim->eval();
      if (r.measure)
        log["after_finetune"] =
            prune::test_accuracy(slim, r.data, r.eval_limit, r.quiet, "  fine-tuned").to_json();
    }
    if (!root) continue;  // rank 0 writes
    const auto model_path = r.out.empty() ? r.report_dir / (label + ".safetensors") : r.out;
    const nlohmann::json record = {{"method", r.method},
                                   {"label", label},
                                   {"ablation", r.ablation},
                                   {"removed", log["circuit"]["removed"]},
                                   {"finetune_epochs", r.finetune_epochs}};
    exporter::save_edited_model(slim, model_path, "vitopt.circuit", record.dump(), class_names);
    log["model_file"] = model_path.string();
    core::write_file_atomic(r.report_dir / (label + ".json"), log.dump(2) + "\n");
    const auto dot_path = r.report_dir / (label + ".dot");
    const auto title = fmt::format("{} {} ({} level, {} ablation)", r.model.filename().string(),
                                   label, r.level, r.ablation);
    core::write_file_atomic(
        dot_path, edge_level ? edges_dot(config, edges->graph(), s.edges, s.edge_scores, title)
                             : circuit_dot(config, nodes, s.circuit, s.scores, title));
    const auto why = render_svg(dot_path, r.report_dir / (label + ".svg"));
    log["picture"] = why.empty() ? (r.report_dir / (label + ".svg")).string() : dot_path.string();
    if (!why.empty()) log["picture_note"] = why;
    log.erase("circuit");  // in <label>.json; circuits.json keeps the summary
    log["removed"] = circuit_json(nodes, s.circuit, {})["removed"];
    log["kept_heads"] = s.circuit.kept_heads();
    log["kept_neurons"] = s.circuit.kept_neurons();
    if (edge_level) {
      log["kept_edges"] = log_edges_kept(s.edges);
      log["total_edges"] = edges->graph().edges();
    }
    j["settings"].push_back(log);
  }
  if (!root) return j;
  j["seconds"] = clock.seconds();
  core::write_file_atomic(r.report_dir / "circuits.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::circuits
