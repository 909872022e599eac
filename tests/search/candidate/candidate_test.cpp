// Search candidates against the individual edits: a genome built by the search equals the model
// the single-technique edits make one after the other (same logits); a quantized candidate's file
// is what the runtime runs (same logits within integer rounding) with exact parameter / MAC
// counts; the whole job on synthetic data returns models within their budgets and resumes.
#include "search/candidate.h"

#include <gtest/gtest.h>

#include "compress/quant/ptq.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "model/edit/copy.h"
#include "model/edit/factor.h"
#include "model/edit/plan.h"
#include "model/edit/resolution.h"
#include "model/edit/share.h"
#include "model/edit/slim.h"
#include "model/model_file.h"
#include "model/quantized_model.h"
#include "search/runtime_measure.h"
#include "search/search_job.h"
#include "search/supernet.h"
#include "test_util.h"
#include "vit_test_util.h"
#include "vitopt/runtime.h"

namespace vitopt::search {
namespace {

// 3 blocks of dim 32, 2 heads, MLP 64 (vit-tiny-test).
struct Fixture {
  io::ViTConfig config = testing::tiny_config(3, 2);
  model::ViT base = testing::parity_vit(config, 7);
  std::vector<train::CalibBatch> calib;
  Fixture() {
    torch::manual_seed(3);
    for (int i = 0; i < 2; ++i)
      calib.push_back({testing::random_images(config, 8, 100 + i),
                       torch::randint(0, config.num_classes, {8}, torch::kLong)});
  }
};

Genome mixed_genome(const Space& space) {
  Genome g = space.largest();
  g.blocks[0].heads = 1;  // one head, half the neurons, merging
  g.blocks[0].mlp_dim = 32;
  g.blocks[0].merge_r = 2;
  g.blocks[1].attn = false;  // no attention, factorized MLP of 48 neurons
  g.blocks[1].mlp_dim = 48;
  g.blocks[1].rank_ratio = 0.5;
  g.blocks[2].share = true;  // runs block 1's weights
  return space.repair(g);
}

TEST(SearchCandidate, EqualsTheIndividualEditsAppliedInTurn) {
  Fixture f;
  const Space space(SpaceSpec{}, f.config);
  const auto inh = inherit(f.base, "taylor", f.calib);
  const Genome g = mixed_genome(space);
  ASSERT_TRUE(g.blocks[2].share);
  ASSERT_FALSE(g.blocks[2].attn);  // the shared block copied its owner's structure
  auto searched = build_fp32(f.base, inh, g);

  // The same edits one by one: slim the most important parts, factorize, share, merge.
  edit::StructurePlan plan(3);
  auto top = [](const std::vector<int>& order, int n) {
    std::vector<int> v(order.begin(), order.begin() + n);
    std::sort(v.begin(), v.end());
    return v;
  };
  plan[0].heads = top(inh.head_order[0], 1);
  plan[0].neurons = top(inh.neuron_order[0], 32);
  plan[1].attn = false;
  plan[1].neurons = top(inh.neuron_order[1], 48);
  plan[2].attn = false;
  plan[2].neurons = top(inh.neuron_order[2], 48);
  auto slimmed = edit::slim(f.base, plan, &inh.means);
  std::vector<edit::BlockRanks> ranks(3);
  ranks[1].fc1 = ranks[1].fc2 = rank_for(0.5, 48, 32);
  ranks[2] = ranks[1];
  auto factored = edit::factorize(slimmed, ranks);
  auto shared = edit::share_blocks(factored, {{{{1, 2}, 1}}});
  shared->set_merge({2, 0, 0});
  shared->eval();

  EXPECT_EQ(searched->config().blocks[2].mlp_shared_with, 1);  // (blocks 1-2 have no attention)
  EXPECT_EQ(io::count_params(searched->config()), io::count_params(genome_config(f.config, g)));
  torch::NoGradGuard no_grad;
  const auto x = testing::random_images(f.config, 4, 9);
  const auto a = searched->forward(x), b = shared->forward(x);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5)) << (a - b).abs().max().item<float>();
  // Inheriting changes nothing for the full genome.
  auto full = build_fp32(f.base, inh, space.largest());
  EXPECT_TRUE(torch::allclose(full->forward(x), f.base->forward(x), 1e-5, 1e-5));
}

TEST(SearchCandidate, MixedPrecisionFileRunsOnTheRuntimeWithExactCounts) {
  Fixture f;
  testing::TempDir tmp;
  const Space space(SpaceSpec{}, f.config);
  const auto inh = inherit(f.base, "l2", f.calib);
  Genome g = space.largest();
  g.blocks[0].wbits = 8;  // W8A8
  g.blocks[0].abits = 8;
  g.blocks[1].wbits = 4;  // W4, fp32 inputs
  g.blocks[1].rank_ratio = 0.5;
  g.blocks[2].mlp_dim = 32;  // fp32
  g = space.repair(g);
  auto fp32 = build_fp32(f.base, inh, g);
  const auto calib = train::calibration_images(f.calib);
  const auto q = quantize_candidate(fp32, g, calib);
  ASSERT_TRUE(q.has_value());
  for (const auto& [name, w] : q->weights) {
    EXPECT_TRUE(name.rfind("blocks.0.", 0) == 0 || name.rfind("blocks.1.", 0) == 0) << name;
    EXPECT_EQ(w.spec.bits, name.rfind("blocks.0.", 0) == 0 ? 8 : 4) << name;
  }
  ASSERT_FALSE(q->inputs.empty());
  for (const auto& [name, in] : q->inputs) {
    EXPECT_EQ(name.rfind("blocks.0.", 0), 0u) << name;
    EXPECT_EQ(in.bits, 8);
  }
  // The quantize command's own PTQ with the same options gives the same codes.
  auto reference = quant::run_ptq(fp32, calib, ptq_options(fp32, g));
  for (const auto& [name, w] : q->weights)
    EXPECT_TRUE(torch::equal(w.codes, reference.weights.at(name).codes)) << name;

  const auto path = tmp / "c.safetensors";
  save_candidate(fp32, q, g, {{"note", "test"}}, {}, path);
  auto loaded = model::load_model(path);
  const auto x = testing::random_images(f.config, 3, 11).contiguous();
  torch::Tensor expect;
  {
    torch::NoGradGuard no_grad;
    auto sim = quant::simulate(*q);
    expect = sim->forward(x);
    EXPECT_TRUE(torch::allclose(loaded->forward(x), expect, 1e-5, 1e-5));
  }
  auto engine = runtime::Engine::load(path);
  std::vector<float> logits(3 * 10);
  engine->run(x.data_ptr<float>(), 3, logits.data());
  const auto got = torch::from_blob(logits.data(), {3, 10}).clone();
  EXPECT_TRUE(torch::allclose(got, expect, 0.05, 0.05)) << (got - expect).abs().max().item<float>();

  const auto m = measure_file(path, HeldOut{}, MeasureOptions{1, 1, 3, 1});
  const auto cfg = genome_config(f.config, g);
  EXPECT_EQ(m.at("params"), static_cast<double>(io::count_params(cfg)));
  EXPECT_EQ(m.at("macs"), static_cast<double>(io::count_macs(cfg)));
  EXPECT_EQ(m.count("top1"), 0u);
  EXPECT_GT(m.at("memory-mb"), 0);
}

TEST(SearchCandidate, ResolutionGeneResamplesTheInputWithExactCounts) {
  Fixture f;
  testing::TempDir tmp;
  const Space space(SpaceSpec{}, f.config);
  ASSERT_EQ(space.resolutions(), (std::vector<int>{21, 28}));  // 28 * {0.85, 0.7} -> 3 patches
  const auto inh = inherit(f.base, "taylor", f.calib);
  Genome g = mixed_genome(space);
  g.resolution = 21;
  g = space.repair(g);
  ASSERT_EQ(g.resolution, 21);
  auto searched = build_fp32(f.base, inh, g);
  EXPECT_EQ(searched->config().image_size, 21);
  EXPECT_EQ(io::count_params(searched->config()), io::count_params(genome_config(f.config, g)));
  EXPECT_LT(io::count_macs(genome_config(f.config, g)),
            io::count_macs(genome_config(f.config, mixed_genome(space))));
  // The same model as the structure edits at full resolution, then the resolution edit.
  Genome native = g;
  native.resolution = 0;
  auto full_side = build_fp32(f.base, inh, native);
  auto resized = edit::resize_input(full_side, 21);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 1, 21, 21});
  const auto a = searched->forward(x);
  EXPECT_TRUE(torch::equal(a, resized->forward(x)));
  // The runtime runs the saved file at 21 x 21 with the same logits.
  const auto path = tmp / "r.safetensors";
  save_candidate(searched, std::nullopt, g, {}, {}, path);
  auto engine = runtime::Engine::load(path);
  EXPECT_EQ(engine->info().image_size, 21);
  std::vector<float> logits(3 * 10);
  const auto xc = x.contiguous();
  engine->run(xc.data_ptr<float>(), 3, logits.data());
  const auto got = torch::from_blob(logits.data(), {3, 10}).clone();
  EXPECT_TRUE(torch::allclose(got, a, 1e-4, 1e-4)) << (got - a).abs().max().item<float>();
}

TEST(SearchCandidate, EapOrderRanksADeadHeadAndNeuronLast) {
  Fixture f;
  const int D = f.config.head_dim;
  {
    // Head 0 of block 0 and neuron 5 of block 1 write nothing: removing them changes nothing,
    // so their EAP scores are 0 and they come last (index order would put them first).
    torch::NoGradGuard no_grad;
    f.base->block(0).attn->proj->weight.slice(1, 0, D).zero_();
    f.base->block(1).mlp->fc2->weight.select(1, 5).zero_();
  }
  const auto inh = inherit(f.base, "eap", f.calib);
  EXPECT_EQ(inh.criterion, "eap");
  EXPECT_EQ(inh.head_order[0], (std::vector<int>{1, 0}));
  ASSERT_EQ(inh.neuron_order[1].size(), 64u);
  EXPECT_EQ(inh.neuron_order[1].back(), 5);
}

TEST(SearchSupernet, GatedParentComputesWhatTheSlimmedCandidateComputes) {
  // The supernet trains sub-networks as gated forwards of the parent; that is only right if a
  // gated forward equals the candidate the search then builds.
  Fixture f;
  const Space space(SpaceSpec{}, f.config);
  const auto inh = inherit(f.base, "taylor", f.calib);
  std::mt19937_64 rng(5);
  torch::NoGradGuard no_grad;
  const auto x = testing::random_images(f.config, 4, 13);
  for (int trial = 0; trial < 5; ++trial) {
    Genome g = space.random(rng);
    g.resolution = 0;           // the supernet trains at the model's own side
    for (auto& b : g.blocks) {  // structure genes only
      b.share = false;
      b.rank_ratio = 1.0;
      b.wbits = b.abits = 32;
      b.merge_r = 0;
    }
    g = space.repair(g);
    model::Trace trace;
    edit::plan_gates(structure_plan(f.config, inh, g), f.config, trace);
    edit::set_ablation_means(trace, inh.means);
    const auto gated = f.base->forward(x, &trace);
    auto built = build_fp32(f.base, inh, g);
    const auto slim = built->forward(x);
    EXPECT_TRUE(torch::allclose(gated, slim, 1e-4, 1e-4))
        << g.key() << " " << (gated - slim).abs().max().item<float>();
  }
}

TEST(SearchSupernet, TrainsTheParentAndRemeasuresTheMeans) {
  Fixture f;
  testing::TempDir tmp;
  const Space space(SpaceSpec{}, f.config);
  auto inh = inherit(f.base, "l2", f.calib);
  auto parent = edit::copy_model(f.base);
  const auto before = parent->block(0).mlp->fc1->weight.clone();
  const auto means_before = inh.means.neurons[0].clone();
  prune::FinetuneOptions o;
  o.data = "synthetic";
  o.limit = 64;
  o.batch_size = 16;
  o.quiet = true;
  o.work_dir = tmp.path();
  const auto history = train_supernet(parent, f.base, space, inh, f.calib, o, {1.0, 1, 3});
  EXPECT_FALSE(history.empty());
  EXPECT_FALSE(torch::equal(before, parent->block(0).mlp->fc1->weight));
  EXPECT_FALSE(torch::equal(means_before, inh.means.neurons[0]));
  EXPECT_TRUE(torch::isfinite(inh.means.neurons[0]).all().item<bool>());
  // The teacher is left as it was.
  EXPECT_TRUE(torch::equal(before, f.base->block(0).mlp->fc1->weight));
}

SearchRequest tiny_request(const testing::TempDir& tmp, const std::filesystem::path& model) {
  SearchRequest r;
  r.model = model;
  r.out_dir = tmp / "search";
  r.data = "synthetic";
  r.calib_images = 32;
  r.holdout_images = 64;
  r.evolution.population = 6;
  r.evolution.generations = 2;
  r.measure.runs = 3;
  r.budgets = {"params=60%", "macs=80%"};
  r.single_techniques = true;
  r.evaluate = false;
  r.quiet = true;
  return r;
}

TEST(SearchJob, ReturnedModelsMeetTheirBudgetsAndTheRunResumes) {
  Fixture f;
  testing::TempDir tmp;
  const auto model = tmp / "base.safetensors";
  exporter::save_model(f.base, model);
  auto r = tiny_request(tmp, model);
  const auto j = run_search(r);
  const double params = static_cast<double>(io::count_params(f.config));
  const double macs = static_cast<double>(io::count_macs(f.config));
  ASSERT_EQ(j["returned"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& rec = j["returned"][i];
    ASSERT_TRUE(rec.contains("model")) << rec.dump();
    auto engine = runtime::Engine::load(rec["model"].get<std::string>());
    if (i == 0) {
      EXPECT_LE(static_cast<double>(engine->info().params), 0.6 * params);
    } else {
      EXPECT_LE(static_cast<double>(engine->info().macs), 0.8 * macs);
    }
  }
  EXPECT_TRUE(std::filesystem::exists(r.out_dir / "arch_pareto_top1_latency-ms.csv"));
  EXPECT_TRUE(std::filesystem::exists(r.out_dir / "single_techniques.csv"));
  // One more generation on the saved state: the earlier candidates are not evaluated again.
  const auto evaluated = j["evaluated"].get<size_t>();
  r.evolution.generations = 3;
  const auto k = run_search(r);
  EXPECT_EQ(k["resumed_from_generation"].get<int>(), 2);
  EXPECT_GE(k["evaluated"].get<size_t>(), evaluated);
  // Other settings on the same folder are refused instead of mixed in.
  r.evolution.population = 8;
  testing::expect_input_error([&] { run_search(r); }, {"search_state.json", "other settings"});
}

TEST(SearchJob, StudentPresetIsDistilledOnceAndSearchedAsABase) {
  Fixture f;
  testing::TempDir tmp;
  const auto model = tmp / "base.safetensors";
  exporter::save_model(f.base, model);
  const auto space_file = tmp / "space.yaml";
  core::write_file_atomic(space_file, std::string("model:\n  students: [vit-tiny-test]\n"));
  auto r = tiny_request(tmp, model);
  r.space = space_file;
  r.student_epochs = 0.5;
  r.finetune.limit = 64;
  r.finetune.batch_size = 16;
  r.single_techniques = false;
  r.budgets = {"params=60%"};
  r.criterion = "l2";
  const auto j = run_search(r);
  ASSERT_EQ(j["students"].size(), 1u) << j.dump();
  const auto& st = j["students"][0];
  EXPECT_FALSE(st.contains("reused"));
  EXPECT_FALSE(st["history"].empty());
  auto student = model::load_model(st["model"].get<std::string>());
  EXPECT_EQ(student->config().depth, io::preset("vit-tiny-test").depth);
  EXPECT_EQ(student->config().num_classes, f.config.num_classes);
  // Candidates of both bases were evaluated (random genomes draw the base uniformly).
  const auto state = core::json_parse(core::read_file_text(r.out_dir / "search_state.json"), "");
  int of_student = 0, of_model = 0;
  for (const auto& [key, e] : state["state"]["archive"].items())
    (key.rfind("T1:", 0) == 0 ? of_student : of_model) += 1;
  EXPECT_GT(of_student, 0);
  EXPECT_GT(of_model, 0);
  // A resumed search reloads the student instead of training it again.
  r.evolution.generations = 3;
  const auto k = run_search(r);
  EXPECT_TRUE(k["students"][0].value("reused", false));
}

}  // namespace
}  // namespace vitopt::search
