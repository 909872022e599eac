// Attention-matmul quantization (extras.attention): the probability quantizers on hand-computed
// values, the hooked attention against a naive re-computation of the documented arithmetic, the
// file round trip (saved extras load into the same function). JSON validation: tests/io.
#include "model/attention_quant.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "export/model_writer.h"
#include "io/presets.h"
#include "model/model_file.h"
#include "model/quantized_model.h"
#include "test_util.h"

namespace vitopt::model {
namespace {

TEST(AttentionQuant, ProbabilityQuantizersByHand) {
  // log2, 3 bits: c = rne(-log2 p) kept when c <= 6, else 0.
  const auto p = torch::tensor({1.0f, 0.7f, 0.3f, 0.015625f, 0.01f, 0.0078125f, 0.0f});
  const auto l = quantize_probs(p, 3, "log2");
  const float want_log2[] = {1.0f, 0.5f, 0.25f, 0.015625f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(l[i].item<float>(), want_log2[i]) << "log2 index " << i;
  // uniform, 2 bits: rne(p * 3) / 3, half to even (0.5 * 3 = 1.5 -> 2).
  const auto u = quantize_probs(torch::tensor({0.0f, 0.25f, 0.5f, 0.9f, 1.0f}), 2, "uniform");
  const float want_uniform[] = {0.0f, 1 / 3.0f, 2 / 3.0f, 1.0f, 1.0f};
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(u[i].item<float>(), want_uniform[i]) << "uniform " << i;
  EXPECT_THROW(quantize_probs(p, 3, "log10"), core::InputError);
  EXPECT_THROW(quantize_probs(p, 1, "log2"), core::InputError);
}

io::AttentionQuant example_quant(int depth) {
  io::AttentionQuant aq;
  aq.bits = 4;
  aq.prob_bits = 4;
  aq.prob_quantizer = "log2";
  for (int b = 0; b < depth; ++b) {
    io::AttentionQuant::Block blk;
    for (auto* q : {&blk.q, &blk.k, &blk.v}) {
      q->bits = 4;
      q->symmetric = true;
    }
    blk.q.scale = 0.11f + 0.01f * static_cast<float>(b);
    blk.k.scale = 0.13f;
    blk.v.scale = 0.17f;
    aq.blocks[b] = blk;
  }
  return aq;
}

// q/k/v fake-quantized per the format (symmetric 4-bit: codes -7..7), probabilities log2-coded.
torch::Tensor naive_attention(AttentionImpl& at, const torch::Tensor& x,
                              const io::AttentionQuant::Block& b, const io::AttentionQuant& aq) {
  const int64_t B = x.size(0), N = x.size(1), H = at.heads, D = at.head_dim;
  auto fq = [](const torch::Tensor& t, float s) { return torch::round(t / s).clamp(-7, 7) * s; };
  auto qkv = torch::linear(x, at.qkv->weight, at.qkv->bias).reshape({B, N, 3, H, D});
  auto q = fq(qkv.select(2, 0).permute({0, 2, 1, 3}) / std::sqrt(static_cast<double>(D)), b.q.scale);
  auto k = fq(qkv.select(2, 1).permute({0, 2, 1, 3}), b.k.scale);
  auto v = fq(qkv.select(2, 2).permute({0, 2, 1, 3}), b.v.scale);
  auto probs = quantize_probs(torch::softmax(torch::matmul(q, k.transpose(-2, -1)), -1),
                              aq.prob_bits, aq.prob_quantizer);
  auto ctx = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({B, N, H * D});
  return torch::linear(ctx, at.proj->weight, at.proj->bias);
}

TEST(AttentionQuant, HookedAttentionEqualsNaiveArithmetic) {
  ViT m(io::preset("vit-tiny-test"));
  torch::manual_seed(5);
  const auto aq = example_quant(m->config().depth);
  apply_attention_quant(m, &aq);
  auto& at = *m->block(1).attn;
  const auto x = torch::randn({2, 17, m->config().embed_dim}) * 2;
  torch::NoGradGuard no_grad;
  const auto got = at.forward(x);
  const auto want = naive_attention(at, x, aq.blocks.at(1), aq);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
  apply_attention_quant(m, nullptr);  // cleared: back to fp32 attention
  EXPECT_FALSE(at.q_transform || at.probs_transform);
  EXPECT_GT((at.forward(x) - want).abs().max().item<double>(), 1e-3);
}

TEST(AttentionQuant, FileRoundTripAppliesTheSameFunction) {
  testing::TempDir tmp;
  ViT m(io::preset("vit-tiny-test"));
  torch::manual_seed(6);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes()) * 0.3);
  }
  const auto aq = example_quant(m->config().depth);
  io::QuantSpec spec;
  spec.attention = aq;
  exporter::save_quantized_model(m, {}, spec, tmp / "q.safetensors");
  auto loaded = load_model(tmp / "q.safetensors");
  apply_attention_quant(m, &aq);
  m->eval();
  loaded->eval();
  const auto x = torch::randn({3, 1, 28, 28});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded->forward(x), m->forward(x)));
  // JSON round trip keeps every field.
  EXPECT_EQ(io::AttentionQuant::from_json(aq.to_json(), "t"), aq);
}

}  // namespace
}  // namespace vitopt::model
