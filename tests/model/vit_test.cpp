// The ViT module: timm parameter names, exact parameter counts, initialization, skipped / shared /
// low-rank blocks, masks, and the Trace (recorded shapes, gates, fast path == traced path).
#include "model/vit.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "io/model_counts.h"
#include "io/presets.h"

namespace vitopt::model {
namespace {

int64_t numel_of_parameters(ViT& m) {
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  return n;
}

torch::Tensor input_for(const io::ViTConfig& c, int64_t batch, uint64_t seed = 7) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randn({batch, c.in_channels, c.image_size, c.image_size}, gen);
}

// Random non-trivial weights (init_weights gives tiny logits).
void randomize(ViT& m, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * 0.1);
}

float max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<float>();
}

TEST(ViT, ParamsCountMatchesNamedParametersForPresets) {
  for (const auto& name : io::preset_names()) {
    ViT m(io::preset(name));
    EXPECT_EQ(numel_of_parameters(m), io::count_params(m->config())) << name;
  }
}

TEST(ViT, TimmParameterNames) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.distill_token = true;
  ViT m(c);
  std::set<std::string> names;
  for (const auto& item : m->named_parameters()) names.insert(item.key());
  std::set<std::string> want{"cls_token",
                             "dist_token",
                             "pos_embed",
                             "patch_embed.proj.weight",
                             "patch_embed.proj.bias",
                             "norm.weight",
                             "norm.bias",
                             "head.weight",
                             "head.bias",
                             "head_dist.weight",
                             "head_dist.bias"};
  for (int b = 0; b < 2; ++b) {
    for (const char* s : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                          "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                          "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}) {
      want.insert("blocks." + std::to_string(b) + "." + s);
    }
  }
  EXPECT_EQ(names, want);
  const auto params = m->named_parameters();
  EXPECT_EQ(params["pos_embed"].sizes(), (std::vector<int64_t>{1, 18, 32}));
  EXPECT_EQ(params["blocks.1.attn.qkv.weight"].sizes(), (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(params["patch_embed.proj.weight"].sizes(), (std::vector<int64_t>{32, 1, 7, 7}));
}

TEST(ViT, InitIsDeterministicAndTimmLike) {
  const io::ViTConfig c = io::preset("vit-fmnist");
  ViT a(c), b(c);
  a->init_weights(3);
  b->init_weights(3);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  b->init_weights(4);
  EXPECT_FALSE(torch::equal(pa["blocks.0.mlp.fc1.weight"], pb["blocks.0.mlp.fc1.weight"]));
  const auto w = pa["blocks.2.attn.qkv.weight"];
  EXPECT_NEAR(w.std().item<double>(), 0.02 * 0.88, 0.002);  // truncated at 2 sigma
  EXPECT_LE(w.abs().max().item<double>(), 0.04 + 1e-6);
  EXPECT_TRUE(torch::equal(pa["blocks.0.attn.qkv.bias"], torch::zeros({384})));
  EXPECT_TRUE(torch::equal(pa["norm.weight"], torch::ones({128})));
  EXPECT_GT(pa["pos_embed"].std().item<double>(), 0.01);
}

TEST(ViT, ForwardShapesAndInputCheck) {
  ViT m(io::preset("vit-tiny-test"));
  torch::NoGradGuard no_grad;
  EXPECT_EQ(m->forward(input_for(m->config(), 3)).sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(m->forward_features(input_for(m->config(), 2)).sizes(),
            (std::vector<int64_t>{2, 17, 32}));
  EXPECT_THROW(m->forward(torch::zeros({1, 3, 28, 28})), core::InputError);
  EXPECT_THROW(m->forward(torch::zeros({1, 1, 32, 32})), core::InputError);
}

TEST(ViT, DistilledAveragesBothHeadsAndAvgPool) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.distill_token = true;
  ViT m(c);
  randomize(m, 1);
  m->eval();
  torch::NoGradGuard no_grad;
  const auto x = input_for(c, 2);
  auto [cls, dist] = m->forward_heads(x);
  ASSERT_TRUE(dist.defined());
  EXPECT_LT(max_abs_diff(m->forward(x), (cls + dist) / 2), 1e-6);

  io::ViTConfig a = io::preset("vit-tiny-test");
  a.pool = "avg";
  ViT ma(a);
  randomize(ma, 2);
  const auto feats = ma->forward_features(x);
  const auto want = ma->head->forward(feats.slice(1, 1).mean(1));
  EXPECT_LT(max_abs_diff(ma->forward(x), want), 1e-6);
}

TEST(ViT, SkippedSubBlocksHaveNoParametersAndRun) {
  const io::ViTConfig full = io::preset("vit-tiny-test");
  io::ViTConfig c = full;
  c.blocks[0].skip_attn = true;
  c.blocks[1].skip_mlp = true;
  c.blocks[1].num_heads = 1;
  c.blocks[0].mlp_dim = 24;
  ViT m(c);
  EXPECT_EQ(numel_of_parameters(m), io::count_params(m->config()));
  EXPECT_LT(io::count_params(c), io::count_params(full));
  const auto params = m->named_parameters();
  EXPECT_EQ(params.find("blocks.0.norm1.weight"), nullptr);
  EXPECT_EQ(params.find("blocks.0.attn.qkv.weight"), nullptr);
  EXPECT_EQ(params.find("blocks.1.norm2.weight"), nullptr);
  EXPECT_EQ(params["blocks.0.mlp.fc1.weight"].sizes(), (std::vector<int64_t>{24, 32}));
  EXPECT_EQ(params["blocks.1.attn.qkv.weight"].sizes(), (std::vector<int64_t>{48, 32}));
  EXPECT_EQ(params["blocks.1.attn.proj.weight"].sizes(), (std::vector<int64_t>{32, 16}));
  torch::NoGradGuard no_grad;
  Trace t;
  t.record_attn = t.record_mlp = t.record_heads = t.record_hidden = true;
  const auto y = m->forward(input_for(c, 2), &t);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_FALSE(t.attn_probs[0].defined());
  EXPECT_FALSE(t.mlp_act[1].defined());
  EXPECT_EQ(t.attn_probs[1].sizes(), (std::vector<int64_t>{2, 1, 17, 17}));
  EXPECT_EQ(t.mlp_act[0].sizes(), (std::vector<int64_t>{2, 17, 24}));
}

// Block 1 runs block 0's attention weight matrices; its LayerNorms, biases and MLP are its own.
TEST(ViT, SharedAttentionReusesWeightsAndKeepsNormsAndBiases) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.blocks[1].attn_shared_with = 0;
  ViT shared(c);
  randomize(shared, 5);
  EXPECT_EQ(numel_of_parameters(shared), io::count_params(shared->config()));
  const auto params = shared->named_parameters();
  EXPECT_EQ(params.find("blocks.1.attn.qkv.weight"), nullptr);
  EXPECT_EQ(params.find("blocks.1.attn.proj.weight"), nullptr);
  for (const char* own : {"blocks.1.norm1.weight", "blocks.1.attn.qkv.bias",
                          "blocks.1.attn.proj.bias", "blocks.1.mlp.fc1.weight"})
    EXPECT_NE(params.find(own), nullptr) << own;
  // The same network written out with block 0's attention weights copied into block 1.
  ViT plain(io::preset("vit-tiny-test"));
  {
    torch::NoGradGuard no_grad;
    for (auto& item : plain->named_parameters()) {
      std::string key = item.key();
      if (!params.contains(key)) key = "blocks.0." + key.substr(9);  // blocks.1.attn.*.weight
      item.value().copy_(params[key]);
    }
  }
  const auto x = input_for(c, 2);
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT(max_abs_diff(shared->forward(x), plain->forward(x)), 1e-6);
  }
  // One parameter, two users: its gradient is the sum of what each block's copy would get.
  shared->zero_grad();
  plain->zero_grad();
  shared->forward(x).square().sum().backward();
  plain->forward(x).square().sum().backward();
  const auto pp = plain->named_parameters();
  for (const char* w : {"attn.qkv.weight", "attn.proj.weight"}) {
    const auto sum =
        pp[std::string("blocks.0.") + w].grad() + pp[std::string("blocks.1.") + w].grad();
    EXPECT_LT(max_abs_diff(params[std::string("blocks.0.") + w].grad(), sum), 1e-5) << w;
  }
  EXPECT_LT(
      max_abs_diff(params["blocks.1.attn.qkv.bias"].grad(), pp["blocks.1.attn.qkv.bias"].grad()),
      1e-5);
}

// A shared Linear with a delta multiplies by W_owner + delta_u delta_v; the delta gets gradients.
TEST(ViT, SharedMlpDeltaAddsItsLowRankProduct) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.blocks[1].mlp_shared_with = 0;
  c.blocks[1].delta_rank = 3;
  ViT shared(c);
  randomize(shared, 7);
  EXPECT_EQ(numel_of_parameters(shared), io::count_params(shared->config()));
  auto params = shared->named_parameters();
  EXPECT_EQ(params["blocks.1.mlp.fc1.delta_u"].sizes(), (std::vector<int64_t>{64, 3}));
  EXPECT_EQ(params["blocks.1.mlp.fc1.delta_v"].sizes(), (std::vector<int64_t>{3, 32}));
  EXPECT_EQ(params.find("blocks.1.attn.qkv.delta_u"), nullptr);  // the attention is not shared
  ViT plain(io::preset("vit-tiny-test"));
  {
    torch::NoGradGuard no_grad;
    for (auto& item : plain->named_parameters()) {
      const std::string& key = item.key();
      if (params.contains(key)) {
        item.value().copy_(params[key]);
        continue;
      }
      const std::string linear = key.substr(0, key.rfind('.'));  // blocks.1.mlp.fc1
      item.value().copy_(params["blocks.0." + key.substr(9)] +
                         params[linear + ".delta_u"].mm(params[linear + ".delta_v"]));
    }
  }
  const auto x = input_for(c, 2);
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT(max_abs_diff(shared->forward(x), plain->forward(x)), 1e-5);
  }
  shared->forward(x).square().sum().backward();
  EXPECT_GT(params["blocks.1.mlp.fc1.delta_u"].grad().abs().max().item<double>(), 0);
}

TEST(ViT, LowRankLinearEqualsItsProduct) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.blocks[0].qkv_rank = 8;
  c.blocks[0].proj_rank = 4;
  c.blocks[1].fc1_rank = 3;
  c.blocks[1].fc2_rank = 5;
  ViT m(c);
  EXPECT_EQ(numel_of_parameters(m), io::count_params(m->config()));
  const auto params = m->named_parameters();
  EXPECT_EQ(params["blocks.0.attn.qkv.weight_u"].sizes(), (std::vector<int64_t>{96, 8}));
  EXPECT_EQ(params["blocks.0.attn.qkv.weight_v"].sizes(), (std::vector<int64_t>{8, 32}));
  EXPECT_EQ(params.find("blocks.0.attn.qkv.weight"), nullptr);
  auto& fc1 = *m->block(1).mlp->fc1;
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 5, 32});
  const auto dense = torch::linear(x, fc1.effective_weight(), fc1.bias);
  EXPECT_LT(max_abs_diff(fc1.forward(x), dense), 1e-5);
  const auto y = m->forward(input_for(c, 2));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_FALSE(torch::isnan(y).any().item<bool>());
}

TEST(ViT, MaskZeroesWeightsInForward) {
  Linear lin(6, 4);
  auto mask = torch::ones({4, 6});
  mask.index_put_({1, 2}, 0.0);
  mask.index_put_({3, 0}, 0.0);
  lin->set_mask(mask);
  EXPECT_EQ(lin->weight[1][2].item<float>(), 0.0f);
  EXPECT_EQ(lin->named_buffers()["mask"].sum().item<float>(), 22.0f);
  {
    torch::NoGradGuard no_grad;
    lin->weight.fill_(1.0);  // as if an optimizer moved them: forward still masks
  }
  const auto y = lin->forward(torch::ones({1, 6}));
  EXPECT_FLOAT_EQ(y[0][1].item<float>() - lin->bias[1].item<float>(), 5.0f);
  EXPECT_FLOAT_EQ(y[0][0].item<float>() - lin->bias[0].item<float>(), 6.0f);
}

TEST(ViT, TraceRecordsShapesAndFastPathMatches) {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.distill_token = true;  // N = 18
  ViT m(c);
  randomize(m, 11);
  m->eval();
  torch::NoGradGuard no_grad;
  const auto x = input_for(c, 3);
  const auto fast = m->forward(x);
  Trace t;
  t.record_attn = t.record_hidden = t.record_heads = t.record_mlp = t.record_features = true;
  const auto traced = m->forward(x, &t);
  EXPECT_TRUE(torch::equal(fast, traced));
  ASSERT_EQ(t.attn_probs.size(), 2u);
  ASSERT_EQ(t.hidden.size(), 3u);
  ASSERT_EQ(t.head_out.size(), 2u);
  ASSERT_EQ(t.mlp_act.size(), 2u);
  EXPECT_EQ(t.attn_probs[1].sizes(), (std::vector<int64_t>{3, 2, 18, 18}));
  EXPECT_LT(max_abs_diff(t.attn_probs[0].sum(-1), torch::ones({3, 2, 18})), 1e-5);
  EXPECT_EQ(t.hidden[0].sizes(), (std::vector<int64_t>{3, 18, 32}));
  EXPECT_EQ(t.hidden[2].sizes(), (std::vector<int64_t>{3, 18, 32}));
  EXPECT_EQ(t.head_out[0].sizes(), (std::vector<int64_t>{3, 18, 2, 16}));
  EXPECT_EQ(t.mlp_act[1].sizes(), (std::vector<int64_t>{3, 18, 64}));
  EXPECT_EQ(t.features.sizes(), (std::vector<int64_t>{3, 18, 32}));
  EXPECT_LT(max_abs_diff(t.features, m->norm->forward(t.hidden[2])), 1e-6);

  // Empty trace: same output, nothing recorded.
  Trace none;
  EXPECT_TRUE(torch::equal(m->forward(x, &none), fast));
  EXPECT_TRUE(none.attn_probs.empty() && none.hidden.empty() && !none.features.defined());
}

TEST(ViT, GatesOfOnesLeaveLogitsUnchangedAndCarryGradients) {
  ViT m(io::preset("vit-tiny-test"));
  randomize(m, 12);
  const auto x = input_for(m->config(), 2);
  const auto base = m->forward(x).detach();
  Trace t;
  for (int b = 0; b < 2; ++b) {
    t.head_gates.push_back(torch::ones({2}, torch::requires_grad()));
    t.neuron_gates.push_back(torch::ones({64}, torch::requires_grad()));
    t.attn_gates.push_back(torch::ones({1}, torch::requires_grad()));
    t.mlp_gates.push_back(torch::ones({1}, torch::requires_grad()));
  }
  const auto y = m->forward(x, &t);
  EXPECT_LT(max_abs_diff(y, base), 1e-6);
  y.sum().backward();
  for (int b = 0; b < 2; ++b) {
    EXPECT_TRUE(t.head_gates[b].grad().defined());
    EXPECT_EQ(t.neuron_gates[b].grad().sizes(), (std::vector<int64_t>{64}));
    EXPECT_TRUE(t.attn_gates[b].grad().defined());
    EXPECT_TRUE(t.mlp_gates[b].grad().defined());
  }
}

TEST(ViT, ZeroHeadGateEqualsZeroedProjColumns) {
  ViT m(io::preset("vit-tiny-test"));
  randomize(m, 13);
  torch::NoGradGuard no_grad;
  const auto x = input_for(m->config(), 2);
  Trace t;
  t.head_gates = {torch::Tensor(), torch::tensor({1.0f, 0.0f})};  // block 1, head 1 off
  const auto gated = m->forward(x, &t);
  EXPECT_GT(max_abs_diff(gated, m->forward(x)), 1e-4);      // the gate did something
  m->block(1).attn->proj->weight.slice(1, 16, 32).zero_();  // head 1's D=16 input columns
  const auto zeroed = m->forward(x);
  EXPECT_LT(max_abs_diff(gated, zeroed), 1e-5);

  // And a zero MLP gate equals removing the MLP sub-block.
  io::ViTConfig c = io::preset("vit-tiny-test");
  ViT full(c);
  randomize(full, 14);
  Trace g;
  g.mlp_gates = {torch::zeros({1}), torch::Tensor()};
  const auto y = full->forward(x, &g);
  c.blocks[0].skip_mlp = true;
  ViT skipped(c);
  auto src = full->named_parameters();
  for (auto& item : skipped->named_parameters()) item.value().copy_(src[item.key()]);
  EXPECT_LT(max_abs_diff(y, skipped->forward(x)), 1e-5);
}

}  // namespace
}  // namespace vitopt::model
