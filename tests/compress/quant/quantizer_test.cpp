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
#include "io/code_packing.h"
#include "io/model_counts.h"
#include "io/presets.h"

namespace vitopt::quant {
namespace {

using io::choose_qparams;     // scalar (the format's rule)
using model::choose_qparams;  // per row, on tensors
using io::quant_range;

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

TEST(Quantizer, TensorCodesFollowTheScalarQParams) {
  // Ranges and qparams themselves: tests/io/quant_spec_test.cpp. Here: the tensor quantizer with
  // them. [-4, -2] widens to [-4, 0]: scale 4/255, zp 127; -1/(4/255) = -63.75 -> -64.
  auto p = choose_qparams(-4.0f, -2.0f, 8, false);
  EXPECT_TRUE(torch::equal(codes_of({-4.0f, -1.0f, 0.0f}, p.scale, p.zero_point, 8, false),
                           torch::tensor({-128L, 63L, 127L})));
  // 2 bits symmetric: codes {-1, 0, 1}; 16 bits: the full 32767.
  EXPECT_TRUE(torch::equal(codes_of({-1.0f, -0.4f, 0.0f, 0.6f, 1.0f}, 1.0f, 0, 2, true),
                           torch::tensor({-1L, 0L, 0L, 1L, 1L})));
  p = choose_qparams(-1.0f, 1.0f, 16, true);
  EXPECT_TRUE(torch::equal(codes_of({1.0f, -1.0f}, p.scale, 0, 16, true),
                           torch::tensor({32767L, -32767L})));
  // The per-row tensor version computes the scalar rule element by element.
  const auto lo = torch::tensor({-4.0f, 0.5f, 0.0f}), hi = torch::tensor({-2.0f, 2.55f, 0.0f});
  const auto [scale, zp] = choose_qparams(lo, hi, 8, false);
  for (int i = 0; i < 3; ++i) {
    const auto want = choose_qparams(lo[i].item<float>(), hi[i].item<float>(), 8, false);
    EXPECT_EQ(scale[i].item<float>(), want.scale) << i;
    EXPECT_EQ(zp[i].item<int64_t>(), want.zero_point) << i;
  }
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

TEST(Quantizer, TensorsThroughIoPackingAreBitExact) {
  // The LibTorch side packs through io (tests/io/code_packing_test.cpp checks the byte layout):
  // tensors -> plain arrays -> packed bytes -> plain arrays -> tensors gives the same codes.
  auto gen = at::detail::createCPUGenerator(3);
  for (int bits = 2; bits <= 16; ++bits) {
    for (bool sym : {true, false}) {
      const auto r = quant_range(bits, sym);
      model::QuantizedWeight w;
      w.spec = {bits, sym, true};
      w.codes = torch::randint(r.qmin, r.qmax + 1, {3, 17}, gen, torch::kLong);
      w.codes[0][0] = r.qmin;
      w.codes[2][16] = r.qmax;
      w.scale = torch::rand({3}, gen) + 0.1;
      w.zero_point = sym ? torch::zeros({3}, torch::kLong) : torch::tensor({r.qmin, 0, r.qmax}, torch::kLong);
      const auto plain = model::to_plain(w);
      const auto packed = io::pack_codes(plain.codes.data(), 3, 17, bits, sym);
      auto round = plain;
      round.codes = io::unpack_codes(packed.bytes.data(), packed.dtype, packed.shape, 3, 17, bits,
                                     sym, "t");
      const auto back = model::from_plain(round);
      EXPECT_TRUE(torch::equal(back.codes, w.codes)) << bits << " bits, sym " << sym;
      EXPECT_TRUE(torch::equal(back.scale, w.scale.to(torch::kFloat)));
      EXPECT_TRUE(torch::equal(back.zero_point, w.zero_point));
      EXPECT_TRUE(torch::equal(back.dequantize(), w.dequantize()));
    }
  }
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
  io::InputQuant q{4, false, false, 0.25f, -2};
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
  model::ViT m(io::preset("vit-tiny-test"));
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
  EXPECT_EQ(io::quantized_weight_bytes(3, 5, {4, false, true}), 3 * 3 + 12 + 12);
}

}  // namespace
}  // namespace vitopt::quant
