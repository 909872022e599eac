// Compression steps compose: prune (structured) -> W8A8, factorize -> W8A8 (factors quantized per
// channel, both factors' inputs quantized), the factorize and share jobs -> W8A8, distill a
// student -> prune -> W8A8. Each result loads
// in LibTorch and in the runtime, every Linear factor of it qualifies for the runtime's integer
// kernels (int weights and int input, <= 8 bits), and the runtime's logits match LibTorch's exact
// simulation. Pruning a quantized file is refused with a message naming the order that works.
#include <gtest/gtest.h>

#include "compress/distill/distill_job.h"
#include "compress/lowrank/factorize_job.h"
#include "compress/lowrank/share_job.h"
#include "compress/prune/prune_job.h"
#include "compress/quant/quantize_job.h"
#include "core/error.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "model/edit/factor.h"
#include "model/model_file.h"
#include "runtime/model_loader.h"
#include "test_util.h"
#include "vit_test_util.h"
#include "vitopt/runtime.h"

namespace vitopt {
namespace {

io::ViTConfig small_config() {
  auto c = testing::tiny_config(2, 4);
  c.normalize("compose");
  return c;
}

model::ViT random_model(const io::ViTConfig& c, uint64_t seed) {
  return testing::parity_vit(c, seed);
}

std::filesystem::path prune_file(const std::filesystem::path& in,
                                 const std::filesystem::path& out) {
  prune::PruneRequest r;
  r.model = in;
  r.out = out;
  r.methods = {"heads", "neurons"};
  r.amount = 0.5;
  r.data = "synthetic";
  r.measure = false;
  r.quiet = true;
  prune::run_prune(r);
  return out;
}

std::filesystem::path w8a8_file(const std::filesystem::path& in, const std::filesystem::path& out) {
  quant::QuantizeRequest q;
  q.model = in;
  q.out = out;
  q.data = "synthetic";
  q.ptq.wbits = 8;
  q.ptq.abits = 8;
  q.calib_images = 64;
  q.evaluate = false;
  q.workers = 1;
  q.quiet = true;
  quant::run_quantize(q);
  return out;
}

// Every Linear factor of the file has integer weights and an integer input of <= 8 bits, which
// is what makes the runtime choose its integer GEMM (linear_layer.h); weights are per channel.
void expect_all_integer(const std::filesystem::path& file) {
  const auto st = io::SafeTensorsFile::load(file);
  const auto m = runtime::load_model_data(st);
  int factors = 0;
  auto check = [&](const runtime::LinearData& d) {
    ++factors;
    ASSERT_TRUE(d.wq.has_value()) << d.weight_name;
    ASSERT_TRUE(d.iq.has_value()) << d.weight_name;
    EXPECT_LE(d.wq->bits, 8) << d.weight_name;
    EXPECT_LE(d.iq->bits, 8) << d.weight_name;
    EXPECT_TRUE(d.wq->per_channel) << d.weight_name;
  };
  check(m.patch);
  check(m.head);
  for (const auto& b : m.blocks)
    for (const auto* f : {&b.qkv, &b.proj, &b.fc1, &b.fc2})
      for (const auto& d : *f) check(d);
  EXPECT_GT(factors, 2);
}

// Runtime logits vs LibTorch's simulation of the same quantized file.
void expect_runtime_matches(const std::filesystem::path& file) {
  auto sim = model::load_model(file);
  sim->eval();
  const auto& c = sim->config();
  const int B = 16;
  torch::manual_seed(77);
  auto x = torch::randn({B, c.in_channels, c.image_size, c.image_size});
  torch::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = sim->forward(x).contiguous();  // (B, K)
  }
  auto engine = runtime::Engine::load(file);
  std::vector<float> got_v(static_cast<size_t>(B * c.num_classes));
  engine->run(x.data_ptr<float>(), B, got_v.data());
  const auto got = torch::from_blob(got_v.data(), {B, c.num_classes}, torch::kFloat32);
  const double scale = want.abs().max().item<double>();
  EXPECT_GT(scale, 0.1) << "test model too degenerate to compare";
  EXPECT_LE((got - want).abs().flatten().median().item<double>(), 1e-4 * std::max(1.0, scale));
  EXPECT_GE(got.argmax(1).eq(want.argmax(1)).sum().item<int64_t>(), B - 1);
}

TEST(Compose, PrunedThenW8A8RunsOnIntegerKernels) {
  testing::TempDir dir;
  const auto c = small_config();
  auto m = random_model(c, 1);
  exporter::save_model(m, dir / "fp32.safetensors");
  const auto pruned = prune_file(dir / "fp32.safetensors", dir / "pruned.safetensors");
  const auto q = w8a8_file(pruned, dir / "pruned_w8a8.safetensors");
  // The quantized file carries the pruned structure forward.
  const auto qc = model::load_model(q)->config();
  EXPECT_EQ(qc.to_json()["blocks"], model::load_model(pruned)->config().to_json()["blocks"]);
  EXPECT_LT(io::count_params(qc), io::count_params(c));
  expect_all_integer(q);
  expect_runtime_matches(q);
  // Pruning the quantized file is refused, naming the order that works.
  try {
    prune_file(q, dir / "again.safetensors");
    ADD_FAILURE() << "pruning a quantized file was accepted";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("then quantize"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "again.safetensors"));
}

TEST(Compose, FactorizedThenW8A8QuantizesBothFactorsPerChannel) {
  testing::TempDir dir;
  const auto c = small_config();
  auto m = random_model(c, 2);
  std::vector<edit::BlockRanks> ranks(c.depth);
  ranks[0] = {16, 8, 8, 16};
  ranks[1].fc1 = 8;
  auto f = edit::factorize(m, ranks);
  exporter::save_model(f, dir / "lowrank.safetensors");
  const auto q = w8a8_file(dir / "lowrank.safetensors", dir / "lowrank_w8a8.safetensors");
  const auto header = io::read_model_header(q);
  ASSERT_TRUE(header.quant.has_value());
  const io::QuantSpec& spec = *header.quant;
  for (const char* w :
       {"blocks.0.attn.qkv.weight_u", "blocks.0.attn.qkv.weight_v", "blocks.1.mlp.fc1.weight_u",
        "blocks.1.mlp.fc1.weight_v", "blocks.1.mlp.fc2.weight"}) {
    ASSERT_TRUE(spec.weights.count(w)) << w;
    EXPECT_TRUE(spec.weights.at(w).per_channel) << w;
  }
  EXPECT_TRUE(spec.inputs.count("blocks.0.attn.qkv.weight_u"));
  EXPECT_TRUE(spec.inputs.count("blocks.0.attn.qkv"));
  EXPECT_EQ(model::load_model(q)->config().blocks[0].qkv_rank, 16);
  expect_all_integer(q);
  expect_runtime_matches(q);
}

TEST(Compose, DistilledStudentThenPrunedThenW8A8) {
  testing::TempDir dir;
  auto teacher = random_model(small_config(), 3);
  exporter::save_model(teacher, dir / "teacher.safetensors");
  distill::DistillRequest d;
  d.teacher = dir / "teacher.safetensors";
  d.student = "vit-tiny-test";
  d.runs = {"logit"};
  d.data = "synthetic";
  d.limit = 64;
  d.validate = false;
  d.report = false;
  d.options.epochs = 1;
  d.options.batch_size = 32;
  d.options.workers = 1;
  d.options.quiet = true;
  d.out_dir = dir / "distill";
  const auto summary = distill::run_distill(d);
  const std::filesystem::path student = summary["runs"][0]["model"].get<std::string>();
  ASSERT_TRUE(std::filesystem::exists(student));
  const auto pruned = prune_file(student, dir / "student_pruned.safetensors");
  const auto q = w8a8_file(pruned, dir / "student_pruned_w8a8.safetensors");
  EXPECT_LT(io::count_params(model::load_model(q)->config()),
            io::count_params(model::load_model(student)->config()));
  expect_all_integer(q);
  expect_runtime_matches(q);
}

TEST(Compose, FactorizeJobThenW8A8MatchesOnTheRuntime) {
  testing::TempDir dir;
  auto m = random_model(small_config(), 4);
  exporter::save_model(m, dir / "fp32.safetensors");
  lowrank::FactorizeRequest r;
  r.model = dir / "fp32.safetensors";
  r.out = dir / "factorized.safetensors";
  r.report_dir = dir.path();
  r.rank_ratio = 0.5;  // rank 16 of 32: saves weights in qkv, fc1, fc2 (not in the square proj)
  r.method = "activation-aware";
  r.require_speedup = false;
  r.data = "synthetic";
  r.calib_images = 32;
  r.measure = false;
  r.quiet = true;
  lowrank::run_factorize(r);
  const auto fc = model::load_model(r.out)->config();
  EXPECT_EQ(fc.blocks[0].qkv_rank, 16);
  EXPECT_EQ(fc.blocks[0].proj_rank, 0);
  expect_runtime_matches(r.out);
  const auto q = w8a8_file(r.out, dir / "factorized_w8a8.safetensors");
  expect_all_integer(q);
  expect_runtime_matches(q);
  // Structured pruning refuses low-rank layers with a message saying why.
  try {
    prune_file(r.out, dir / "pruned.safetensors");
    ADD_FAILURE() << "pruning a factorized file was accepted";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("low-rank"), std::string::npos) << e.what();
  }
}

TEST(Compose, ShareJobThenW8A8MatchesOnTheRuntime) {
  testing::TempDir dir;
  auto c = testing::tiny_config(4, 4);
  auto m = random_model(c, 5);
  exporter::save_model(m, dir / "fp32.safetensors");
  lowrank::ShareRequest r;
  r.model = dir / "fp32.safetensors";
  r.out = dir / "shared.safetensors";
  r.report_dir = dir.path();
  r.groups = "auto";
  r.num_groups = 2;
  r.data = "synthetic";
  r.calib_images = 32;
  r.measure = false;
  r.quiet = true;
  lowrank::run_share(r);
  const auto sc = model::load_model(r.out)->config();
  int sharing = 0;
  for (const auto& b : sc.blocks) sharing += b.attn_shared_with >= 0 && b.mlp_shared_with >= 0;
  EXPECT_EQ(sharing, 2);  // 4 blocks in 2 groups
  EXPECT_LT(std::filesystem::file_size(r.out), std::filesystem::file_size(r.model));
  expect_runtime_matches(r.out);
  const auto q = w8a8_file(r.out, dir / "shared_w8a8.safetensors");
  expect_runtime_matches(q);
}

}  // namespace
}  // namespace vitopt
