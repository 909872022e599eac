// Circuit discovery on tiny models: a planted circuit (inert nodes whose output is a nonzero
// constant, so ablating them changes nothing) that ACDC must remove exactly and EAP/EAP-IG must
// rank below everything else; EAP-IG completeness against finite differences; slimming equal to
// the ablated forward (mean and zero ablation, removed embedding included); files that reload;
// bad options refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/acdc.h"
#include "compress/circuits/circuit_graph.h"
#include "compress/circuits/circuit_slim.h"
#include "compress/circuits/circuits_job.h"
#include "compress/circuits/eap.h"
#include "compress/circuits/edge_search.h"
#include "compress/circuits/runtime_metric.h"
#include "core/error.h"
#include "core/file_util.h"
#include "export/model_writer.h"
#include "model/model_file.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::circuits {
namespace {

constexpr int kGroup = 16;  // tiny config: MLP 64 -> 4 groups per block

// Batches of random images with labels cycling over 4 classes (resample needs two per batch).
std::vector<train::CalibBatch> analysis_batches(const io::ViTConfig& c, int n, int64_t size) {
  std::vector<train::CalibBatch> out;
  for (int i = 0; i < n; ++i)
    out.push_back({testing::random_images(c, size, 100 + i), torch::arange(size) % 4});
  return out;
}

// Head h of block b outputs its v bias whatever the input (attention weights sum to 1).
void make_head_inert(model::ViT& m, int b, int h) {
  torch::NoGradGuard no_grad;
  auto& attn = *m->block(b).attn;
  const int64_t H = attn.heads, D = attn.head_dim;
  const int64_t first = 2 * H * D + h * D;
  attn.qkv->weight.slice(0, first, first + D).zero_();
  attn.qkv->bias.slice(0, first, first + D).fill_(0.7);
}

// Neurons [first, first + n) of block b's MLP output GELU(1) whatever the input.
void make_neurons_inert(model::ViT& m, int b, int first, int n) {
  torch::NoGradGuard no_grad;
  auto& fc1 = *m->block(b).mlp->fc1;
  fc1.weight.slice(0, first, first + n).zero_();
  fc1.bias.slice(0, first, first + n).fill_(1.0);
}

struct Planted {
  io::ViTConfig config = testing::tiny_config(2, 4);
  model::ViT model{nullptr};
  std::set<std::string> inert = {"blocks.0.attn.head1", "blocks.1.attn.head3",
                                 "blocks.1.mlp.neurons16-31", "blocks.0.mlp.neurons48-63"};
  Planted() {
    model = testing::parity_vit(config, 7);
    make_head_inert(model, 0, 1);
    make_head_inert(model, 1, 3);
    make_neurons_inert(model, 1, 16, 16);
    make_neurons_inert(model, 0, 48, 16);
    torch::NoGradGuard no_grad;
    model->head->weight.mul_(4);  // confident logits: every live node moves the KL
  }
};

bool is_leaf(const Node& n) { return n.kind == NodeKind::Head || n.kind == NodeKind::Neurons; }

TEST(CircuitNodes, EnumeratesEveryNodeInTopologicalOrder) {
  const auto c = testing::tiny_config(2, 4);
  const auto nodes = circuit_nodes(c, kGroup);
  // embed + per block: 4 heads, attn, 4 neuron groups, mlp, block.
  ASSERT_EQ(nodes.size(), 1u + 2 * (4 + 1 + 4 + 1 + 1));
  EXPECT_EQ(nodes[0].name, "embed");
  EXPECT_EQ(nodes[1].name, "blocks.0.attn.head0");
  EXPECT_EQ(nodes[5].name, "blocks.0.attn");
  EXPECT_EQ(nodes[6].name, "blocks.0.mlp.neurons0-15");
  EXPECT_EQ(nodes[11].name, "blocks.0");
  // A group size that does not divide the width leaves a smaller last group.
  const auto odd = circuit_nodes(c, 24);
  EXPECT_EQ(odd[8].name, "blocks.0.mlp.neurons48-63");
  EXPECT_EQ(odd[8].count, 16);
}

TEST(CircuitState, SubBlockWithoutLeavesCountsAsRemoved) {
  const auto c = testing::tiny_config(2, 4);
  const auto nodes = circuit_nodes(c, kGroup);
  auto k = Circuit::full(c);
  for (int h = 0; h < 4; ++h) k.set(nodes[1 + h], false);
  EXPECT_FALSE(k.attn_live(0));
  EXPECT_FALSE(k.kept(nodes[5]));
  EXPECT_TRUE(k.kept(nodes[11]));  // the block still has its MLP
  k.set(nodes[11], false);
  EXPECT_FALSE(k.mlp_live(0));
  EXPECT_EQ(k.kept_heads(), 4);
  EXPECT_EQ(k.kept_neurons(), 64);
}

TEST(Acdc, RemovesExactlyThePlantedInertNodes) {
  Planted p;
  AblatedModel m(p.model, analysis_batches(p.config, 2, 16), Ablation::Mean, false, 0);
  const auto nodes = circuit_nodes(p.config, kGroup);
  const auto r = acdc(m, nodes, 1e-6, true);
  std::set<std::string> removed;
  for (const auto& n : nodes)
    if (is_leaf(n) && !r.circuit.kept(n)) removed.insert(n.name);
  EXPECT_EQ(removed, p.inert);
  EXPECT_TRUE(r.circuit.embed);
  EXPECT_LT(r.metric, 1e-6);  // the inert nodes' removal changes nothing
  // Sub-blocks and blocks are tried before their leaves (reverse topological order).
  ASSERT_FALSE(r.steps.empty());
  EXPECT_EQ(r.steps[0].node, "blocks.1");
  EXPECT_EQ(r.steps.back().node, "embed");
  // A huge threshold removes everything it tries, the embedding last.
  const auto all = acdc(m, nodes, 1e9, true);
  EXPECT_EQ(all.circuit.kept_heads() + all.circuit.kept_neurons(), 0);
  EXPECT_FALSE(all.circuit.embed);
}

// The runtime's metric of a circuit is the slimmed model's on the runtime: the same as the
// ablated LibTorch forward (mean and zero ablation, the embedding removed too), to float rounding.
TEST(RuntimeMetric, EqualsTheAblatedForwardOnLibTorch) {
  Planted p;
  const auto batches = analysis_batches(p.config, 2, 16);
  const auto nodes = circuit_nodes(p.config, kGroup);
  vitopt::testing::TempDir tmp;
  for (const auto ablation : {Ablation::Mean, Ablation::Zero}) {
    for (const bool task_loss : {false, true}) {
      AblatedModel m(p.model, batches, ablation, task_loss, 0);
      RuntimeMetric runtime(m, batches, tmp.path(), 1);
      auto k = Circuit::full(p.config);
      EXPECT_NEAR(runtime(k), m.metric(k), 1e-5);
      for (const char* name : {"blocks.1.attn.head0", "blocks.0.mlp.neurons0-15", "blocks.1.mlp",
                               "blocks.0.attn", "embed"}) {
        k.set(*std::find_if(nodes.begin(), nodes.end(),
                            [&](const Node& n) { return n.name == name; }),
              false);
        const double want = m.metric(k);
        EXPECT_NEAR(runtime(k), want, 1e-5 + 1e-4 * std::abs(want)) << name;
        EXPECT_GT(want, 1e-3) << name << ": the comparison must be of a changed model";
      }
    }
  }
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << "trial files are removed";
  AblatedModel resample(p.model, batches, Ablation::Resample, false, 0);
  EXPECT_FALSE(RuntimeMetric::supports(resample));
}

TEST(Acdc, OnTheRuntimeRemovesExactlyThePlantedInertNodes) {
  Planted p;
  const auto batches = analysis_batches(p.config, 2, 16);
  AblatedModel m(p.model, batches, Ablation::Mean, false, 0);
  vitopt::testing::TempDir tmp;
  RuntimeMetric runtime(m, batches, tmp.path(), 1);
  const auto nodes = circuit_nodes(p.config, kGroup);
  const auto r = acdc(
      p.config, [&](const Circuit& k, int) { return runtime(k); }, nodes, 1e-6, true);
  std::set<std::string> removed;
  for (const auto& n : nodes)
    if (is_leaf(n) && !r.circuit.kept(n)) removed.insert(n.name);
  EXPECT_EQ(removed, p.inert);
  EXPECT_EQ(r.circuit, acdc(m, nodes, 1e-6, true).circuit) << "the same circuit as LibTorch's";
}

void expect_inert_ranked_last(const Planted& p, const std::vector<Node>& nodes,
                              const std::vector<double>& scores) {
  double inert_max = 0, live_min = 1e30;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!is_leaf(nodes[i])) continue;
    const double s = std::abs(scores[i]);
    if (p.inert.count(nodes[i].name))
      inert_max = std::max(inert_max, s);
    else
      live_min = std::min(live_min, s);
  }
  EXPECT_LT(inert_max, live_min);
  EXPECT_LT(inert_max, 1e-6);
}

TEST(Eap, RanksInertNodesBelowEveryLiveOne) {
  Planted p;
  const auto nodes = circuit_nodes(p.config, kGroup);
  for (auto ablation : {Ablation::Mean, Ablation::Resample}) {
    AblatedModel task(p.model, analysis_batches(p.config, 2, 16), ablation, true, 0);
    expect_inert_ranked_last(p, nodes, node_scores(nodes, task.attribute(ig_alphas(0))));
    AblatedModel kl(p.model, analysis_batches(p.config, 2, 16), ablation, false, 0);
    expect_inert_ranked_last(p, nodes, node_scores(nodes, kl.attribute(ig_alphas(5))));
  }
  // Keeping the top (n - 4) leaves drops exactly the planted ones.
  AblatedModel kl(p.model, analysis_batches(p.config, 2, 16), Ablation::Mean, false, 0);
  const auto scores = node_scores(nodes, kl.attribute(ig_alphas(5)));
  const auto k = keep_top(p.config, nodes, scores, 12.0 / 16.0, Ranking::Global);
  for (const auto& n : nodes)
    if (is_leaf(n)) {
      EXPECT_EQ(k.kept(n), p.inert.count(n.name) == 0) << n.name;
    }
}

TEST(Eap, KlGradientVanishesAtTheCleanModel) {
  Planted p;
  AblatedModel m(p.model, analysis_batches(p.config, 1, 16), Ablation::Mean, false, 0);
  const auto s = m.attribute(ig_alphas(0));
  EXPECT_LT(s.heads[0].abs().max().item<double>(), 1e-5);
}

TEST(EapIg, CompletenessMatchesFiniteDifferences) {
  Planted p;
  AblatedModel m(p.model, analysis_batches(p.config, 1, 16), Ablation::Mean, false, 0);
  const auto nodes = circuit_nodes(p.config, kGroup);
  const auto full = Circuit::full(p.config);
  const double clean = m.metric(full);
  // One node on the path: its integrated score is the metric change of removing it.
  for (const char* name : {"blocks.0.attn.head2", "blocks.1.mlp.neurons32-47"}) {
    const auto it =
        std::find_if(nodes.begin(), nodes.end(), [&](const Node& n) { return n.name == name; });
    auto path = full;
    path.set(*it, false);
    const double change = m.metric(path) - clean;
    const auto scores = node_scores(nodes, m.attribute(ig_alphas(64), &path));
    const double score = scores[static_cast<size_t>(it - nodes.begin())];
    EXPECT_GT(change, 1e-4) << name;
    EXPECT_NEAR(score, change, 0.01 * change + 1e-6) << name;
  }
  // Every leaf on the path: the scores add up to the change of removing them all.
  auto none = full;
  none.embed = false;
  for (const auto& n : nodes)
    if (is_leaf(n)) none.set(n, false);
  const auto leaves = m.attribute(ig_alphas(64));
  double sum = leaves.embed;
  for (const auto& t : leaves.heads) sum += t.sum().item<double>();
  for (const auto& t : leaves.neurons) sum += t.sum().item<double>();
  const double change = m.metric(none) - clean;
  EXPECT_NEAR(sum, change, 0.01 * std::abs(change) + 1e-5);
}

// A circuit that removes a bit of everything: heads, neuron groups, a whole MLP sub-block.
Circuit mixed_circuit(const io::ViTConfig& c, bool embed) {
  const auto nodes = circuit_nodes(c, kGroup);
  auto k = Circuit::full(c);
  for (const char* name : {"blocks.0.attn.head1", "blocks.0.attn.head3", "blocks.0.mlp",
                           "blocks.1.mlp.neurons0-15", "blocks.1.attn.head0"})
    for (const auto& n : nodes)
      if (n.name == name) k.set(n, false);
  k.embed = embed;
  return k;
}

TEST(CircuitSlim, SlimmedModelComputesTheAblatedOne) {
  Planted p;
  for (auto ablation : {Ablation::Mean, Ablation::Zero}) {
    AblatedModel m(p.model, analysis_batches(p.config, 2, 8), ablation, false, 0);
    for (bool embed : {true, false}) {
      const auto k = mixed_circuit(p.config, embed);
      auto slim = slim_circuit(m, k);
      slim->eval();
      torch::NoGradGuard no_grad;
      const auto x = analysis_batches(p.config, 1, 8)[0].x;  // batch 0's images
      const auto want = m.logits(k, 0);
      const auto got = slim->forward(x);
      EXPECT_LT((want - got).abs().max().item<double>(), 1e-5)
          << ablation_name(ablation) << " embed " << embed;
      EXPECT_EQ(slim->config().block_heads(0), 2);
      EXPECT_TRUE(slim->config().blocks[0].skip_mlp);
      EXPECT_EQ(slim->config().block_mlp(1), 48);
    }
  }
}

TEST(CircuitSlim, SlimmedFileReloadsBitExact) {
  Planted p;
  AblatedModel m(p.model, analysis_batches(p.config, 1, 8), Ablation::Mean, false, 0);
  auto slim = slim_circuit(m, mixed_circuit(p.config, true));
  testing::TempDir tmp;
  const auto path = tmp / "c.safetensors";
  exporter::save_edited_model(slim, path, "vitopt.circuit", "{}", {});
  auto back = model::load_model(path);
  back->eval();
  slim->eval();
  torch::NoGradGuard no_grad;
  const auto x = testing::random_images(p.config, 4, 3);
  EXPECT_TRUE(torch::equal(slim->forward(x), back->forward(x)));
}

TEST(CircuitGraph, JsonAndPictureDescribeTheCircuit) {
  const auto c = testing::tiny_config(2, 4);
  const auto nodes = circuit_nodes(c, kGroup);
  const auto k = mixed_circuit(c, true);
  const auto j = circuit_json(nodes, k, std::vector<double>(nodes.size(), 0.5));
  EXPECT_EQ(j["kept_heads"].get<int>(), 5);
  EXPECT_EQ(j["kept_neurons"].get<int>(), 48);
  std::set<std::string> removed(j["removed"].begin(), j["removed"].end());
  EXPECT_TRUE(removed.count("blocks.0.mlp"));
  EXPECT_TRUE(removed.count("blocks.0.mlp.neurons0-15"));  // went with its sub-block
  EXPECT_FALSE(removed.count("blocks.0"));
  const auto dot = circuit_dot(c, nodes, k, {}, "t");
  // Block 0's two live heads read the embedding; block 1's three heads and MLP read them.
  EXPECT_NE(dot.find("embed -> blocks_0_attn_head0"), std::string::npos);
  EXPECT_EQ(dot.find("embed -> blocks_0_attn_head1"), std::string::npos);
  EXPECT_NE(dot.find("blocks_0_attn_head2 -> blocks_1_mlp"), std::string::npos);
  EXPECT_NE(dot.find("blocks_1_mlp -> logits"), std::string::npos);
  EXPECT_EQ(dot.find("blocks_0_mlp ->"), std::string::npos);
}

TEST(CircuitsJob, BadOptionsAreRefusedNamingTheFlag) {
  auto expect_bad = [](CircuitsRequest r, const std::string& needle) {
    r.model = "m.safetensors";
    r.report_dir = "out";
    try {
      validate_request(r);
      ADD_FAILURE() << "accepted; expected an error naming " << needle;
    } catch (const core::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  CircuitsRequest acdc_req;
  acdc_req.thresholds = {-0.1};
  expect_bad(acdc_req, "--threshold");
  acdc_req.thresholds = {};
  expect_bad(acdc_req, "--threshold");
  CircuitsRequest eap_req;
  eap_req.method = "eap-ig";
  eap_req.keep_ratios = {0.0};
  expect_bad(eap_req, "--keep-ratio");
  eap_req.keep_ratios = {1.5};
  expect_bad(eap_req, "--keep-ratio");
  eap_req.keep_ratios = {0.5};
  eap_req.level = "wires";
  expect_bad(eap_req, "--level");
  eap_req.level = "node";
  eap_req.ablation = "noise";
  expect_bad(eap_req, "--ablation");
  eap_req.ablation = "mean";
  eap_req.method = "eap";
  expect_bad(eap_req, "--use-task-loss");
  eap_req.method = "magic";
  expect_bad(eap_req, "--method");
  CircuitsRequest engine_req;
  engine_req.thresholds = {0.01};
  engine_req.engine = "gpu";
  expect_bad(engine_req, "--engine");
  engine_req.engine = "runtime";
  engine_req.ablation = "resample";
  expect_bad(engine_req, "--engine runtime");
  EXPECT_EQ(setting_label("acdc", 0.01), "acdc_threshold_0.01");
  EXPECT_EQ(setting_label("eap-ig", 0.9), "eap-ig_keep_0.9");
}

TEST(CircuitsJob, WritesOneSlimmedModelPerSetting) {
  testing::TempDir tmp;
  const auto c = testing::tiny_config(2, 2);
  auto m = testing::random_vit(c, 5);
  const auto model_path = tmp / "m.safetensors";
  exporter::save_edited_model(m, model_path, "test", "{}", {});
  CircuitsRequest r;
  r.model = model_path;
  r.report_dir = tmp / "circuits";
  r.method = "eap-ig";
  r.keep_ratios = {0.75, 0.5};
  r.data = "synthetic";
  r.analysis_batches = 1;
  r.analysis_batch_size = 16;
  r.ig_steps = 2;
  r.eval_limit = 16;
  r.quiet = true;
  const auto j = run_circuits(r);
  ASSERT_EQ(j["settings"].size(), 2u);
  int64_t previous = j["full"]["params"].get<int64_t>();
  for (const auto& s : j["settings"]) {
    const auto file = s["model_file"].get<std::string>();
    EXPECT_TRUE(std::filesystem::exists(file));
    EXPECT_TRUE(std::filesystem::exists(r.report_dir / (s["label"].get<std::string>() + ".dot")));
    const auto params = s["slimmed"]["params"].get<int64_t>();
    EXPECT_LT(params, previous);  // a smaller keep ratio keeps less
    previous = params;
    EXPECT_EQ(model::load_model(file)->config().depth, 2);
  }
  EXPECT_TRUE(std::filesystem::exists(r.report_dir / "eap-ig_keep_0.5.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(r.report_dir / "circuits.json"));
  // Edge level: the circuit JSON lists the edges; the model is the node circuit they leave.
  r.level = "edge";
  r.method = "acdc";
  r.keep_ratios = {};
  r.thresholds = {0.01};
  r.report_dir = tmp / "edges";
  const auto e = run_circuits(r);
  const auto& s = e["settings"][0];
  EXPECT_LE(s["kept_edges"].get<int>(), s["total_edges"].get<int>());
  const auto circuit =
      nlohmann::json::parse(core::read_file_text(r.report_dir / "acdc_threshold_0.01.json"));
  EXPECT_EQ(circuit["circuit"]["edge_level"]["edges"].size(), s["total_edges"].get<size_t>());
  // The picture is the edge-level one (its edges: EdgeAcdc.RemovesEveryEdgeOfTheInertHeads).
  const auto dot = core::read_file_text(r.report_dir / "acdc_threshold_0.01.dot");
  EXPECT_NE(dot.find("edge level"), std::string::npos);
  EXPECT_NE(dot.find("subgraph cluster_1"), std::string::npos);
}

// ---- edge level ---------------------------------------------------------------------------------

TEST(EdgeGraph, ReadersReadEveryEarlierWriter) {
  const auto c = testing::tiny_config(2, 4);
  const auto g = edge_graph(c);
  ASSERT_EQ(g.writers.size(), 1u + 2 * (4 + 1));
  ASSERT_EQ(g.readers.size(), 2u * (3 * 4 + 1) + 1);
  EXPECT_EQ(g.readers[0].name, "blocks.0.attn.head0.q");
  EXPECT_EQ(g.readers[0].reads, 1);  // the embedding
  EXPECT_EQ(g.readers[12].name, "blocks.0.mlp");
  EXPECT_EQ(g.readers[12].reads, 5);      // embedding + block 0's heads
  EXPECT_EQ(g.readers[13].reads, 6);      // block 1's heads read block 0's MLP too
  EXPECT_EQ(g.readers.back().reads, 11);  // the logits read everything
  EXPECT_EQ(g.edges(), 12 * 1 + 5 + 12 * 6 + 10 + 11);
}

TEST(EdgeModel, EveryEdgeKeptIsTheModelsForward) {
  Planted p;
  const auto batches = analysis_batches(p.config, 1, 8);
  EdgeModel m(p.model, batches, Ablation::Mean, false, 0);
  const auto mask = full_edge_mask(m.graph());
  std::vector<float> v;
  for (const auto& row : mask) v.insert(v.end(), row.begin(), row.end());
  const auto gates = torch::tensor(v).view({static_cast<int64_t>(mask.size()), -1});
  torch::NoGradGuard no_grad;
  const auto want = p.model->forward(batches[0].x);
  EXPECT_LT((m.logits(gates, 0) - want).abs().max().item<double>(), 1e-5);
  EXPECT_LT(std::abs(m.metric(mask)), 1e-7);
}

// The two ways a reader's input is formed (a product over every writer when gates need gradients;
// the residual stream minus removed edges, or the ablated sum plus kept ones, otherwise) agree on
// masks with few and with most edges removed.
TEST(EdgeModel, GradientAndMaskPathsAgree) {
  Planted p;
  EdgeModel m(p.model, analysis_batches(p.config, 1, 8), Ablation::Mean, false, 0);
  auto mask = full_edge_mask(m.graph());
  for (double keep : {0.8, 0.2}) {
    std::vector<float> v;
    auto gen = at::detail::createCPUGenerator(11);
    const auto u = torch::rand({static_cast<int64_t>(mask.size() * mask[0].size())}, gen);
    for (size_t r = 0; r < mask.size(); ++r)
      for (size_t w = 0; w < mask[r].size(); ++w)
        v.push_back(mask[r][w] &&
                    u[static_cast<int64_t>(r * mask[r].size() + w)].item<float>() < keep);
    const auto gates = torch::tensor(v).view({static_cast<int64_t>(mask.size()), -1});
    torch::Tensor fast;
    {
      torch::NoGradGuard no_grad;
      fast = m.logits(gates, 0);
    }
    const auto slow = m.logits(gates.clone().requires_grad_(true), 0).detach();
    EXPECT_LT((fast - slow).abs().max().item<double>(), 1e-5) << keep;
  }
}

// Removing every outgoing edge of a writer is ablating the node: the same metric either way.
TEST(EdgeModel, AllOutgoingEdgesRemovedEqualsTheNodeAblated) {
  Planted p;
  const auto nodes = circuit_nodes(p.config, kGroup);
  for (auto ablation : {Ablation::Mean, Ablation::Zero, Ablation::Resample}) {
    const auto batches = analysis_batches(p.config, 2, 8);
    EdgeModel edges(p.model, batches, ablation, false, 3);
    AblatedModel node(p.model, batches, ablation, false, 3);
    const auto& g = edges.graph();
    for (const char* name : {"blocks.0.attn.head2", "blocks.0.mlp", "blocks.1.attn.head0"}) {
      auto mask = full_edge_mask(g);
      for (size_t w = 0; w < g.writers.size(); ++w)
        if (g.writers[w].name == name)
          for (auto& row : mask) row[w] = 0;
      auto k = Circuit::full(p.config);
      for (const auto& n : nodes)
        if (n.name == name) k.set(n, false);
      const double want = node.metric(k);
      EXPECT_GT(want, 1e-5) << name;
      EXPECT_NEAR(edges.metric(mask), want, 1e-4 * want) << ablation_name(ablation) << " " << name;
      EXPECT_EQ(node_circuit(p.config, g, mask), k) << name;
    }
  }
}

TEST(EdgeAcdc, RemovesEveryEdgeOfTheInertHeads) {
  Planted p;
  EdgeModel m(p.model, analysis_batches(p.config, 1, 16), Ablation::Mean, false, 0);
  const auto r = acdc_edges(m, 1e-6, true);
  const auto k = node_circuit(p.config, m.graph(), r.mask);
  EXPECT_FALSE(k.heads[0][1]);
  EXPECT_FALSE(k.heads[1][3]);
  int live = 0;
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 4; ++h) live += k.attn_live(b) && k.heads[b][h];
  EXPECT_EQ(live, 6);  // every other head still writes somewhere
  EXPECT_LT(r.metric, 1e-6);
  // The picture draws the kept edges into q/k/v (coloured) and MLPs.
  const auto dot = edges_dot(p.config, m.graph(), r.mask, r.scores, "t");
  EXPECT_NE(dot.find("-> logits [color"), std::string::npos);
  EXPECT_EQ(dot.find("blocks_0_attn_head1 -> "), std::string::npos);
}

TEST(EdgeEap, InertEdgesScoreZeroAndIgIsComplete) {
  Planted p;
  EdgeModel m(p.model, analysis_batches(p.config, 1, 16), Ablation::Mean, false, 0);
  const auto& g = m.graph();
  const auto scores = m.attribute(ig_alphas(64));
  double inert = 0, live = 0, sum = 0;
  for (size_t r = 0; r < g.readers.size(); ++r)
    for (int w = 0; w < g.readers[r].reads; ++w) {
      const double s = scores[r * g.writers.size() + static_cast<size_t>(w)];
      sum += s;
      const auto& name = g.writers[static_cast<size_t>(w)].name;
      (p.inert.count(name) ? inert : live) =
          std::max(p.inert.count(name) ? inert : live, std::abs(s));
    }
  EXPECT_LT(inert, 1e-6);
  EXPECT_GT(live, 1e-3);
  // Completeness: the scores of all edges add up to the change of removing them all.
  auto none = full_edge_mask(g);
  for (auto& row : none) std::fill(row.begin(), row.end(), 0);
  const double change = m.metric(none) - m.metric(full_edge_mask(g));
  EXPECT_NEAR(sum, change, 0.01 * std::abs(change) + 1e-5);
  // Keeping the top half keeps half of the edges.
  const auto half = keep_top_edges(g, scores, 0.5, Ranking::Global);
  int kept = 0;
  for (const auto& row : half) kept += static_cast<int>(std::count(row.begin(), row.end(), 1));
  EXPECT_EQ(kept, static_cast<int>(std::lround(0.5 * g.edges())));
}

}  // namespace
}  // namespace vitopt::circuits
