// Parity of the LibTorch-free runtime with the LibTorch model (model::ViT) on the same file:
// fp32 logits within 1e-4 x logit scale, on a preset and on a slimmed model (per-block heads and
// MLP widths, skipped attention/MLP sub-blocks, low-rank factors, a shared block, distillation
// token), for every kernel level this CPU supports.
#include <gtest/gtest.h>

#include "export/model_writer.h"
#include "io/merge_schedule.h"
#include "io/presets.h"
#include "model/attention_quant.h"
#include "model/model_file.h"
#include "model/vit.h"
#include "test_util.h"
#include "vit_test_util.h"
#include "vitopt/runtime.h"

namespace vitopt {
namespace {

// Random weights large enough that attention is far from uniform and logits are O(1).
void randomize(model::ViT& vit, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto r = testing::parity_vit(vit->config(), seed);
  auto src = r->named_parameters();
  for (auto& p : vit->named_parameters()) p.value().copy_(src[p.key()]);
}

// Compares the runtime's logits with LibTorch's at every ISA level the CPU has, in both block
// schedules; returns how many levels were compared (each with its own EXPECT), so callers can
// assert that none was skipped.
int check_parity(const io::ViTConfig& config, uint64_t seed) {
  testing::TempDir dir;
  model::ViT vit(config);
  randomize(vit, seed);
  vit->eval();
  const auto path = dir / "model.safetensors";
  exporter::save_model(vit, path);
  const auto& c = vit->config();
  const int B = 3;
  torch::manual_seed(seed + 1);
  auto x = torch::randn({B, c.in_channels, c.image_size, c.image_size});
  torch::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = vit->forward(x).contiguous();  // (B, K)
  }
  const double scale = want.abs().max().item<double>();
  EXPECT_GT(scale, 0.1) << "test model too degenerate to compare";
  if (!(scale > 0.1)) return 0;
  int compared = 0;
  for (const auto& isa : runtime::supported_isas()) {
    ++compared;
    for (const char* schedule : {"layer", "rows"}) {
      runtime::RuntimeOptions ro;
      ro.isa = isa;
      ro.schedule = schedule;
      ro.threads = 2;
      auto engine = runtime::Engine::load(path, ro);
      std::vector<float> got(static_cast<size_t>(B * c.num_classes));
      engine->run(x.data_ptr<float>(), B, got.data());
      auto got_t = torch::from_blob(got.data(), {B, c.num_classes}, torch::kFloat32);
      const double diff = (got_t - want).abs().max().item<double>();
      EXPECT_LE(diff, 1e-4 * std::max(1.0, scale))
          << c.name << " level " << isa << " schedule " << schedule << " (scale " << scale << ")";
      // Batch 1 on 2 threads: the paths where one image's merge is shared by the threads (layer:
      // it rides on the proj GEMM's column tasks; rows: its columns are split over the threads).
      std::vector<float> one(static_cast<size_t>(c.num_classes));
      engine->run(x.data_ptr<float>(), 1, one.data());
      auto one_t = torch::from_blob(one.data(), {1, c.num_classes}, torch::kFloat32);
      EXPECT_LE((one_t - want.slice(0, 0, 1)).abs().max().item<double>(),
                1e-4 * std::max(1.0, scale))
          << c.name << " level " << isa << " schedule " << schedule << " batch 1";
    }
  }
  return compared;
}

TEST(RuntimeParity, FmnistPresetMatchesLibTorch) {
  EXPECT_GE(check_parity(io::preset("vit-fmnist"), 1), 1);
}

TEST(RuntimeParity, SlimmedModelWithDistillTokenMatchesLibTorch) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.name = "slimmed";
  c.image_size = 16;
  c.in_channels = 3;
  c.patch_size = 4;
  c.embed_dim = 48;
  c.num_heads = 4;
  c.head_dim = 0;
  c.mlp_dim = 96;
  c.depth = 5;
  c.num_classes = 9;
  c.distill_token = true;
  c.preprocess.mean = {0.5f};
  c.preprocess.std = {0.5f};
  c.blocks.assign(5, io::BlockConfig{});
  c.blocks[0].num_heads = 3;
  c.blocks[0].mlp_dim = 37;
  c.blocks[1].skip_attn = true;
  c.blocks[1].mlp_dim = 64;
  c.blocks[2].num_heads = 1;
  c.blocks[2].skip_mlp = true;
  c.blocks[3].qkv_rank = 8;
  c.blocks[3].fc1_rank = 6;
  c.blocks[4] = c.blocks[0];
  c.blocks[4].attn_shared_with = 0;  // the MLP stays block 4's own
  c.blocks[4].delta_rank = 3;
  c.normalize("slimmed");
  EXPECT_GE(check_parity(c, 2), 1);
}

// Token merging: per-block token counts (the cap engages in the last blocks), proportional
// attention and the merge order agree between the two engines.
TEST(RuntimeParity, TokenMergingMatchesLibTorch) {
  io::ViTConfig c = io::preset("vit-fmnist");
  c.normalize();
  io::set_merge_schedule(c, io::parse_merge_schedule("8", c.depth, "test"));
  EXPECT_GE(check_parity(c, 11), 1);
  c.pool = "avg";  // size-weighted mean of the merged tokens
  io::set_merge_schedule(c, io::parse_merge_schedule("decreasing:6", c.depth, "test"));
  EXPECT_GE(check_parity(c, 12), 1);
}

TEST(RuntimeParity, TokenMergingWithDistillTokenAndSkippedAttentionMatchesLibTorch) {
  io::ViTConfig c = io::preset("vit-fmnist");
  c.name = "merged-distilled";
  c.depth = 4;
  c.distill_token = true;
  c.blocks.assign(4, io::BlockConfig{});
  for (auto& b : c.blocks) b.merge_r = 6;
  c.blocks[1].skip_attn = true;  // merges nothing: no keys
  c.blocks[2].num_heads = 3;
  c.blocks[3].qkv_rank = 16;
  c.normalize("merged-distilled");
  EXPECT_EQ(c.token_counts(), (std::vector<int>{51, 45, 45, 39, 33}));
  EXPECT_GE(check_parity(c, 13), 1);
}

// The runtime's --merge-r override computes what a file storing that schedule computes.
TEST(RuntimeParity, MergeOverrideEqualsStoredSchedule) {
  testing::TempDir dir;
  io::ViTConfig c = io::preset("vit-fmnist");
  c.normalize();
  model::ViT vit(c);
  randomize(vit, 14);
  exporter::save_model(vit, dir / "plain.safetensors");
  vit->set_merge(io::parse_merge_schedule("decreasing:8", c.depth, "test"));
  exporter::save_model(vit, dir / "merged.safetensors");
  const auto x = testing::random_images(c, 2, 15);
  auto run = [&](const std::filesystem::path& f, const std::string& merge) {
    runtime::RuntimeOptions ro;
    ro.merge_r = merge;
    auto engine = runtime::Engine::load(f, ro);
    std::vector<float> got(static_cast<size_t>(2 * c.num_classes));
    engine->run(x.data_ptr<float>(), 2, got.data());
    return std::make_pair(got, engine->info().macs);
  };
  const auto stored = run(dir / "merged.safetensors", "");
  EXPECT_EQ(run(dir / "plain.safetensors", "decreasing:8"), stored);
  // r = 0 is bit-identical to a model without merging.
  EXPECT_EQ(run(dir / "merged.safetensors", "0"), run(dir / "plain.safetensors", ""));
  EXPECT_LT(stored.second, run(dir / "plain.safetensors", "").second);
  EXPECT_THROW(run(dir / "plain.safetensors", "many"), std::exception);
}

TEST(RuntimeParity, AveragePoolingMatchesLibTorch) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.pool = "avg";
  c.normalize("avg");
  EXPECT_GE(check_parity(c, 3), 1);
}

// timm's layouts: no class token (average pool), register tokens, position embedding on the
// patches only, final norm after pooling (fc_norm); each alone and together, with token merging
// (prefix tokens never merge) and with a distillation token under fc_norm.
TEST(RuntimeParity, TimmLayoutsMatchLibTorch) {
  struct Layout {
    const char* name;
    bool class_token;
    int reg_tokens;
    bool no_embed_class, fc_norm, distill;
    const char* pool;
    const char* merge;
  };
  for (const Layout& l : {Layout{"gap-fc-norm", true, 0, false, true, false, "avg", "0"},
                          Layout{"no-cls-regs", false, 4, true, true, false, "avg", "0"},
                          Layout{"no-cls-regs-merged", false, 4, true, true, false, "avg", "3"},
                          Layout{"cls-regs-token", true, 3, true, false, false, "token", "4"},
                          Layout{"cls-regs-embedded", true, 2, false, false, false, "avg", "0"},
                          Layout{"no-cls-merged", false, 0, false, false, false, "avg", "5"},
                          Layout{"distilled-fc-norm", true, 1, false, true, true, "token", "2"}}) {
    SCOPED_TRACE(l.name);
    io::ViTConfig c = io::preset("vit-tiny-test");
    c.name = l.name;
    c.class_token = l.class_token;
    c.reg_tokens = l.reg_tokens;
    c.no_embed_class = l.no_embed_class;
    c.fc_norm = l.fc_norm;
    c.distill_token = l.distill;
    c.pool = l.pool;
    c.normalize(l.name);
    io::set_merge_schedule(c, io::parse_merge_schedule(l.merge, c.depth, "test"));
    c.normalize(l.name);
    EXPECT_GE(check_parity(c, 21), 1);
  }
}

// Quantized attention matmuls (extras.attention): the runtime's path computes what the LibTorch
// simulation computes. A rounding that lands on a code boundary differently (fp32 summation
// order) may move one value by one code, so the check is the median error and the predictions.
TEST(RuntimeParity, QuantizedAttentionMatchesLibTorchSimulation) {
  testing::TempDir dir;
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.num_heads = 4;
  c.normalize("attnq");
  model::ViT vit(c);
  randomize(vit, 9);
  // Also with token merging: the key bias enters the quantized kernel's scores.
  for (const char* kind : {"log2", "uniform", "log2+merge"}) {
    vit->set_merge(std::string(kind).find("merge") != std::string::npos ? std::vector<int>{4, 4}
                                                                        : std::vector<int>{0, 0});
    io::AttentionQuant aq;
    aq.bits = 8;
    aq.prob_bits = 4;
    aq.prob_quantizer = std::string(kind).substr(0, std::string(kind).find('+'));
    for (int b = 0; b < c.depth; ++b) {
      io::AttentionQuant::Block blk;
      for (auto* q : {&blk.q, &blk.k, &blk.v}) {
        q->bits = 8;
        q->symmetric = true;
        q->scale = 0.02f + 0.005f * static_cast<float>(b);
      }
      aq.blocks[b] = blk;
    }
    io::QuantSpec spec;
    spec.attention = aq;
    const auto path = dir / (std::string(kind) + ".safetensors");
    exporter::save_quantized_model(vit, {}, spec, path);
    const auto plain = dir / "plain.safetensors";
    exporter::save_model(vit, plain);

    auto sim = model::load_model(path);
    sim->eval();
    const int B = 16;
    torch::manual_seed(10);
    auto x = torch::randn({B, c.in_channels, c.image_size, c.image_size});
    torch::Tensor want;
    {
      torch::NoGradGuard no_grad;
      want = sim->forward(x).contiguous();  // (B, K)
    }
    auto run = [&](const std::filesystem::path& f) {
      auto engine = runtime::Engine::load(f);
      std::vector<float> got(static_cast<size_t>(B * c.num_classes));
      engine->run(x.data_ptr<float>(), B, got.data());
      return torch::from_blob(got.data(), {B, c.num_classes}, torch::kFloat32).clone();
    };
    const auto got = run(path);
    const double scale = want.abs().max().item<double>();
    const double median = (got - want).abs().flatten().median().item<double>();
    EXPECT_LE(median, 1e-4 * std::max(1.0, scale)) << kind;
    EXPECT_GE(got.argmax(1).eq(want.argmax(1)).sum().item<int64_t>(), B - 1) << kind;
    // The quantized path really runs: fp32 attention gives clearly different logits.
    EXPECT_GT((run(plain) - got).abs().max().item<double>(), 1e-3) << kind;
  }
}

}  // namespace
}  // namespace vitopt
