// Quantizer arithmetic by hand (ranges at 2 and 16 bits, zero range, negative-only, clamping,
// half-to-even), bit-exact packing for 2..16 bits, observers on known distributions, STE/LSQ
// forward equal to the format's fake quant, LayerNorm folding keeps the function, the knapsack
// allocation on a hand table, and bad input.
#include "compress/quant/quantizer.h"

#include <gtest/gtest.h>

#include <functional>

#include "compress/quant/calibration.h"
#include "compress/quant/mixed_precision.h"
#include "compress/quant/observer.h"
#include "compress/quant/reparam.h"
#include "core/error.h"

namespace vitopt::quant {
namespace {

using model::choose_qparams;
using model::quant_range;

void expect_input_error(const std::function<void()>& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError with '" << part << "'";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

torch::Tensor codes_of(const std::vector<float>& x, float scale, int64_t zp, int bits, bool sym) {
  return model::quantize_codes(torch::tensor(x), torch::tensor(scale), torch::tensor(zp),
                               quant_range(bits, sym));
}

TEST(Quantizer, RangesAtTheEdges) {
  EXPECT_EQ(quant_range(2, true).qmin, -1);
  EXPECT_EQ(quant_range(2, true).qmax, 1);
  EXPECT_EQ(quant_range(2, false).qmin, -2);
  EXPECT_EQ(quant_range(2, false).qmax, 1);
  EXPECT_EQ(quant_range(16, true).qmin, -32767);
  EXPECT_EQ(quant_range(16, false).qmin, -32768);
  EXPECT_EQ(quant_range(16, false).qmax, 32767);
  expect_input_error([] { quant_range(1, true, "--wbits"); }, "--wbits");
  expect_input_error([] { quant_range(17, false, "--abits"); }, "got 17");
}

TEST(Quantizer, QParamsByHand) {
  // Zero range: scale 1, zp = qmin - rne(0) = -128; 0 still decodes to exactly 0.
  auto p = choose_qparams(0.0f, 0.0f, 8, false);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero_point, -128);
  EXPECT_EQ(choose_qparams(0.0f, 0.0f, 8, true).zero_point, 0);
  // Negative-only [-4, -2] widens to [-4, 0]: scale 4/255, zp = -128 - rne(-255) = 127.
  p = choose_qparams(-4.0f, -2.0f, 8, false);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 127);
  EXPECT_TRUE(torch::equal(codes_of({-4.0f, -1.0f, 0.0f}, p.scale, p.zero_point, 8, false),
                           torch::tensor({-128L, 63L, 127L})));  // -1/(4/255) = -63.75 -> -64
  p = choose_qparams(-4.0f, -2.0f, 8, true);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 127.0f);
  EXPECT_EQ(p.zero_point, 0);
  // Positive-only [0, 2.55] at 8 bits asym: scale 0.01, zp -128.
  p = choose_qparams(0.5f, 2.55f, 8, false);
  EXPECT_FLOAT_EQ(p.scale, 2.55f / 255.0f);
  EXPECT_EQ(p.zero_point, -128);
  // 2 bits symmetric: codes {-1, 0, 1}; 16 bits: the full 32767.
  EXPECT_TRUE(torch::equal(codes_of({-1.0f, -0.4f, 0.0f, 0.6f, 1.0f}, 1.0f, 0, 2, true),
                           torch::tensor({-1L, 0L, 0L, 1L, 1L})));
  p = choose_qparams(-1.0f, 1.0f, 16, true);
  EXPECT_TRUE(torch::equal(codes_of({1.0f, -1.0f}, p.scale, 0, 16, true),
                           torch::tensor({32767L, -32767L})));
}

TEST(Quantizer, HalfToEvenAndClamping) {
  EXPECT_TRUE(torch::equal(codes_of({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f}, 1.0f, 0, 8, true),
                           torch::tensor({0L, 2L, 2L, 0L, -2L, -2L})));
  EXPECT_TRUE(
      torch::equal(codes_of({200.0f, -200.0f}, 1.0f, 0, 8, true), torch::tensor({127L, -127L})));
  EXPECT_TRUE(
      torch::equal(codes_of({200.0f, -200.0f}, 1.0f, 0, 8, false), torch::tensor({127L, -128L})));
  EXPECT_TRUE(torch::equal(codes_of({9.0f, -9.0f}, 1.0f, 3, 4, false), torch::tensor({7L, -6L})));
}

TEST(Quantizer, PackUnpackRoundTripIsBitExact) {
  auto gen = at::detail::createCPUGenerator(3);
  for (int bits = 2; bits <= 16; ++bits) {
    for (bool sym : {true, false}) {
      const auto r = quant_range(bits, sym);
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 17}, {5, 33}, {2, 128}}) {
        auto codes = torch::randint(r.qmin, r.qmax + 1, {rows, cols}, gen, torch::kLong);
        codes[0][0] = r.qmin;  // the extremes always appear
        codes[rows - 1][cols - 1] = r.qmax;
        const auto p = model::pack_codes(codes, bits, sym);
        EXPECT_EQ(p.shape[1], bits <= 4 ? (cols + 1) / 2 : cols);
        const auto back =
            model::unpack_codes(p.bytes.data(), p.dtype, p.shape, cols, bits, sym, "t");
        EXPECT_TRUE(torch::equal(back, codes))
            << bits << " bits, sym " << sym << ", " << rows << "x" << cols;
      }
    }
  }
  // Nibble layout: element 2k low, 2k+1 high, stored as q - qmin; pad nibble 0.
  const auto p = model::pack_codes(torch::tensor({{-8L, 7L, 0L}}), 4, false);
  ASSERT_EQ(p.bytes.size(), 2u);
  EXPECT_EQ(p.bytes[0], 0xF0);
  EXPECT_EQ(p.bytes[1], 0x08);
}

TEST(Observer, KnownDistributions) {
  // Values 0..999 in one row: min-max is exact, the 99% percentile cuts the tails.
  const auto x = torch::arange(1000, torch::kFloat).view({1, -1});
  ObserverOptions o;
  auto [lo, hi] = observe_rows(x, 8, false, o);
  EXPECT_EQ(lo.item<float>(), 0.0f);
  EXPECT_EQ(hi.item<float>(), 999.0f);
  o.kind = ObserverKind::Percentile;
  o.percentile = 99.0;
  std::tie(lo, hi) = observe_rows(x, 8, false, o);
  EXPECT_NEAR(lo.item<float>(), 9.99f, 0.01f);
  EXPECT_NEAR(hi.item<float>(), 989.01f, 0.01f);
  // Gaussian with one huge outlier per row: MSE clipping shrinks the range and lowers the error.
  auto g = torch::randn({4, 4096}, at::detail::createCPUGenerator(5));
  g.select(1, 0).fill_(40.0f);
  o.kind = ObserverKind::Mse;
  std::tie(lo, hi) = observe_rows(g, 4, true, o);
  EXPECT_TRUE((hi < 30.0f).all().item<bool>());
  auto err = [&](const torch::Tensor& l, const torch::Tensor& h) {
    auto [s, z] = choose_qparams(l, h, 4, true);
    return (model::dequantize_codes(
                model::quantize_codes(g, s.view({-1, 1}), z.view({-1, 1}), quant_range(4, true)),
                s.view({-1, 1}), z.view({-1, 1})) -
            g)
        .pow(2)
        .sum()
        .item<double>();
  };
  EXPECT_LT(err(lo, hi), 0.5 * err(g.amin(1), g.amax(1)));
  // The activation observer: exact extremes and per-channel ranges, a bounded sample of rows.
  ActivationObserver ob(64, 0);
  ob.observe(torch::tensor({{1.0f, -2.0f}, {3.0f, 0.5f}}));
  ob.observe(torch::full({100, 2}, 0.25f));
  EXPECT_EQ(ob.min(), -2.0f);
  EXPECT_EQ(ob.max(), 3.0f);
  EXPECT_TRUE(torch::equal(ob.channel_max(), torch::tensor({3.0f, 0.5f})));
  EXPECT_EQ(ob.rows_seen(), 102);
  EXPECT_EQ(ob.sample().size(0), 64);
  expect_input_error([] { parse_observer("kl"); }, "--observer");
  expect_input_error([] { parse_scheme("affine"); }, "--scheme");
}

TEST(Quantizer, SteAndLsqForwardEqualTheFormatAndPassGradients) {
  auto x = torch::linspace(-3, 3, 101).requires_grad_(true);
  model::InputQuant q{4, false, false, 0.25f, -2};
  const auto r = quant_range(4, false);
  auto y = fake_quant_ste(x, torch::tensor(0.25f), torch::tensor(-2.0f), r);
  EXPECT_TRUE(torch::equal(y.detach(), model::fake_quant_input(x.detach(), q)));
  y.sum().backward();
  // Inside [s(qmin - z), s(qmax - z)] = [-1.5, 2.25] gradient 1, outside 0.
  auto inside = (x.detach() >= -1.5f).logical_and(x.detach() <= 2.25f);
  EXPECT_TRUE(torch::equal(x.grad(), inside.to(torch::kFloat)));
  auto s = torch::tensor(0.25f).requires_grad_(true);
  auto y2 = fake_quant_lsq(x.detach(), s, torch::tensor(-2.0f), r, 0.1);
  EXPECT_TRUE(torch::allclose(y2.detach(), y.detach()));
  y2.pow(2).sum().backward();
  EXPECT_TRUE(s.grad().defined());
  EXPECT_NE(s.grad().item<float>(), 0.0f);
}

TEST(Reparam, FoldingKeepsTheFunctionAndEqualizesRanges) {
  model::ViT m(model::preset("vit-tiny-test"));
  {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(2);
    for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * 0.3);
    m->block(0).norm1->weight.mul_(torch::linspace(0.1, 5.0, 32));  // uneven channel ranges
  }
  auto x = torch::randn({8, 1, 28, 28}, at::detail::createCPUGenerator(4));
  const auto before = predict(m, x);
  auto obs = observe_linear_inputs(m, x, 4, 64, 0);
  ReparamOptions o;
  o.alpha = 1.0;
  const auto summary = fold_layernorm_scales(m, obs, o);
  EXPECT_LE((predict(m, x) - before).abs().max().item<float>(), 1e-3f);
  EXPECT_GT(summary["blocks.0.norm1"]["range_spread_before"].get<double>(), 5.0);
  EXPECT_LT(summary["blocks.0.norm1"]["range_spread_after"].get<double>(), 1.01);
  EXPECT_TRUE(summary.contains("norm"));
}

TEST(MixedPrecision, KnapsackPicksTheCheapestFeasibleLoss) {
  // Layer a: 8 bits 1000 B / loss 0, 4 bits 500 B / loss 1. Layer b: 8 bits 1000 B / 0,
  // 4 bits 500 B / loss 5. Budget 1500 B: quantize a (cheaper loss) to 4 bits.
  std::vector<Sensitivity> t = {
      {"a", 8, 0.0, 0, 1000}, {"a", 4, 1.0, 0, 500}, {"b", 8, 0.0, 0, 1000}, {"b", 4, 5.0, 0, 500}};
  auto alloc = allocate_bits(t, 1500, 0);
  EXPECT_EQ(alloc.bits.at("a"), 4);
  EXPECT_EQ(alloc.bits.at("b"), 8);
  EXPECT_EQ(alloc.weight_bytes, 1500);
  EXPECT_EQ(allocate_bits(t, 5000, 0).bits.at("a"), 8);
  expect_input_error([&] { allocate_bits(t, 900, 100); }, "--size-budget-mb");
  EXPECT_EQ(quantized_weight_bytes(3, 5, 4, false, true), 3 * 3 + 12 + 12);
}

}  // namespace
}  // namespace vitopt::quant
