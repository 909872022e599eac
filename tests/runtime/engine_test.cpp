// End-to-end engine checks without LibTorch: logits against the naive double-precision forward
// (fp32 and quantized-simulation semantics), integer kernels against the exact simulation, every
// kernel level against the reference level, and batch/thread/schedule invariance (bit-exact).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "io/presets.h"
#include "io/safetensors.h"
#include "runtime/model_loader.h"
#include "runtime_test_util.h"
#include "vitopt/runtime.h"

namespace vitopt::runtime {
namespace {

using testing::naive_forward;
using testing::randn;

std::unique_ptr<Engine> load(const RandomModelOptions& o, RuntimeOptions ro = {}) {
  return Engine::load_bytes(random_model_bytes(o), "test.safetensors", ro);
}

std::vector<float> run(Engine& e, const std::vector<float>& images, int batch) {
  std::vector<float> logits(static_cast<size_t>(batch * e.info().num_classes));
  e.run(images.data(), batch, logits.data());
  return logits;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

std::vector<std::string> levels() {
  std::vector<std::string> v{"ref"};
  for (auto isa : testing::simd_levels()) v.emplace_back(kernels::isa_name(isa));
  return v;
}

// An engine on 2 threads at one ISA level, block schedule and --merge-r override ("": the file's).
std::unique_ptr<Engine> two_thread_engine(const std::vector<uint8_t>& bytes, const char* name,
                                          const std::string& isa, const char* schedule,
                                          const char* merge) {
  RuntimeOptions ro;
  ro.isa = isa;
  ro.threads = 2;
  ro.schedule = schedule;
  ro.merge_r = merge;
  return Engine::load_bytes(bytes, name, ro);
}

// fp32 models, every structural feature, every level: logits within 1e-4 x logit scale of the
// double-precision oracle.
TEST(Engine, Fp32LogitsMatchNaiveForwardOnEveryLevel) {
  for (const auto& [distill, pool] : {std::pair{true, "token"}, std::pair{false, "avg"}}) {
    RandomModelOptions o;
    o.config = testing::slimmed_config(distill, pool);
    o.seed = 7;
    o.weight_std = 0.3f;
    const auto bytes = random_model_bytes(o);
    const LoadedModel m = load_model_data(io::SafeTensorsFile::parse(bytes, "slim"));
    const int B = 3, per = 3 * 12 * 12;
    const auto images = randn(static_cast<size_t>(B * per), 3);
    for (const auto& isa : levels()) {
      RuntimeOptions ro;
      ro.isa = isa;
      ro.threads = 2;
      auto e = Engine::load_bytes(bytes, "slim", ro);
      EXPECT_EQ(e->info().isa, isa);
      EXPECT_EQ(e->info().precision, "fp32");
      const auto logits = run(*e, images, B);
      for (int b = 0; b < B; ++b) {
        const auto want = naive_forward(m, images.data() + b * per);
        const double tol = 1e-4 * std::max(1.0, max_abs(want));
        for (size_t k = 0; k < want.size(); ++k)
          ASSERT_NEAR(logits[static_cast<size_t>(b) * want.size() + k], want[k], tol)
              << isa << " distill=" << distill << " image " << b << " class " << k;
      }
    }
  }
}

// timm's VisionTransformer layouts, small enough for the oracle: 16 patches plus the prefix.
struct Layout {
  const char* label;
  bool class_token;
  int reg_tokens;
  bool no_embed_class, fc_norm;
  const char* pool;
  bool distill_token;
};

io::ViTConfig layout_config(const Layout& l) {
  io::ViTConfig c;
  c.name = l.label;
  c.image_size = 8;
  c.in_channels = 3;
  c.patch_size = 2;
  c.embed_dim = 16;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_dim = 32;
  c.num_classes = 5;
  c.class_token = l.class_token;
  c.reg_tokens = l.reg_tokens;
  c.no_embed_class = l.no_embed_class;
  c.fc_norm = l.fc_norm;
  c.pool = l.pool;
  c.distill_token = l.distill_token;
  c.normalize(l.label);
  return c;
}

// Every prefix-token layout and final-norm placement against the oracle (which assembles the
// tokens, merges and pools from the config on its own), on every level and both schedules, with
// token merging off, at r = 0 (bit-identical to off) and at r = 2 per block (20 -> 18 -> 16 tokens
// with four registers; the prefix tokens protected, proportional attention, size-weighted pool).
TEST(Engine, TimmLayoutsMatchNaiveForwardWithAndWithoutMerging) {
  const Layout layouts[] = {
      {"no class token, 4 registers, patch-only pos_embed, fc_norm, avg", false, 4, true, true,
       "avg", false},
      {"class token, 2 registers, token pool", true, 2, false, false, "token", false},
      {"fc_norm with token pool and a distillation token", true, 0, false, true, "token", true},
      {"no prefix tokens at all, avg", false, 0, false, false, "avg", false},
      {"class token, 1 register, patch-only pos_embed, fc_norm, avg", true, 1, true, true, "avg",
       false}};
  for (const Layout& l : layouts) {
    RandomModelOptions o;
    o.config = layout_config(l);
    o.seed = 13;
    o.weight_std = 0.3f;
    const auto bytes = random_model_bytes(o);
    const auto file = io::SafeTensorsFile::parse(bytes, "layout");
    const int B = 3, per = 3 * 8 * 8;
    const auto images = randn(static_cast<size_t>(B * per), 17);
    for (const char* merge : {"", "0", "2"}) {
      io::ImportHints hints;
      if (*merge != '\0') hints.merge_r = merge;
      const LoadedModel m = load_model_data(file, hints);
      EXPECT_EQ(m.config.merges_tokens(), *merge == '2') << l.label;
      std::vector<std::vector<double>> want;
      for (int b = 0; b < B; ++b) want.push_back(naive_forward(m, images.data() + b * per));
      for (const auto& isa : levels()) {
        std::vector<float> by_schedule[2];
        for (int s = 0; s < 2; ++s) {
          const char* schedule = s == 0 ? "layer" : "rows";
          auto e = two_thread_engine(bytes, "layout", isa, schedule, merge);
          by_schedule[s] = run(*e, images, B);
          for (int b = 0; b < B; ++b) {
            const double tol = 1e-4 * std::max(1.0, max_abs(want[static_cast<size_t>(b)]));
            for (size_t k = 0; k < want[static_cast<size_t>(b)].size(); ++k)
              ASSERT_NEAR(by_schedule[s][static_cast<size_t>(b) * want[0].size() + k],
                          want[static_cast<size_t>(b)][k], tol)
                  << l.label << " " << isa << " " << schedule << " merge '" << merge << "' image "
                  << b << " class " << k;
          }
        }
        EXPECT_EQ(by_schedule[0], by_schedule[1])
            << l.label << " " << isa << " merge '" << merge << "'";
      }
    }
    // r = 0 runs exactly the unmerged arithmetic.
    RuntimeOptions off, zero;
    zero.merge_r = "0";
    EXPECT_EQ(run(*Engine::load_bytes(bytes, "layout", off), images, B),
              run(*Engine::load_bytes(bytes, "layout", zero), images, B))
        << l.label;
  }
}

TEST(Engine, BatchAndThreadCountDoNotChangeResultsBitwise) {
  RandomModelOptions o;
  o.config = io::preset("vit-tiny-test");
  o.weight_bits = 8;
  o.input_bits = 8;
  o.input_dynamic = true;
  const auto bytes = random_model_bytes(o);
  const int B = 5, per = 28 * 28;
  const auto images = randn(static_cast<size_t>(B * per), 4);
  RuntimeOptions one;
  one.threads = 1;
  RuntimeOptions two;
  two.threads = 2;
  auto e1 = Engine::load_bytes(bytes, "m", one);
  auto e2 = Engine::load_bytes(bytes, "m", two);
  const auto all = run(*e2, images, B);
  EXPECT_EQ(run(*e1, images, B), all);
  for (int b = 0; b < B; ++b) {
    const std::vector<float> img(images.begin() + b * per, images.begin() + (b + 1) * per);
    const auto single = run(*e2, img, 1);
    for (int k = 0; k < 10; ++k) ASSERT_EQ(single[static_cast<size_t>(k)], all[static_cast<size_t>(b * 10 + k)]);
  }
  EXPECT_EQ(run(*e2, images, B), all);  // plan reuse: same again
}

// The two thread schedules run the same arithmetic in the same order, so they agree bit for bit,
// on every level, for fp32, integer and simulated Linears and quantized attention. The slimmed
// config has blocks of different widths and ranks in one row chain (a skipped attention joins two
// MLPs), which is what a shared buffer with per-op row strides would get wrong.
TEST(Engine, RowAndLayerSchedulesAgreeBitwise) {
  struct Variant {
    int wbits, ibits;
    bool dynamic;
  };
  for (const Variant v : {Variant{0, 0, true}, Variant{8, 8, true}, Variant{4, 8, false}, Variant{8, 12, true}}) {
    RandomModelOptions o;
    o.config = testing::slimmed_config(true, "token");
    o.weight_bits = v.wbits;
    o.input_bits = v.ibits;
    o.input_dynamic = v.dynamic;
    o.weight_std = 0.3f;
    const auto bytes = random_model_bytes(o);
    const int B = 3, per = 3 * 12 * 12;
    const auto images = randn(static_cast<size_t>(B * per), 5);
    for (const auto& isa : levels()) {
      // Token merging too: a merging block ends a row chain, and r = 0 changes nothing.
      std::vector<float> unmerged;
      for (const char* merge : {"", "0", "2"}) {
        std::vector<float> by[2];
        for (int s = 0; s < 2; ++s) {
          const char* schedule = s == 0 ? "layer" : "rows";
          auto e = two_thread_engine(bytes, "slim", isa, schedule, merge);
          by[s] = run(*e, images, B);
          // Merged token counts put an image's last rows in a GEMM remainder tile (1-3 rows,
          // another summation order) at batch 1 but not at batch 3: equal up to rounding there.
          const auto one = run(*e, images, 1);
          for (size_t i = 0; i < one.size(); ++i) {
            if (*merge == '2') {
              EXPECT_NEAR(one[i], by[s][i], 1e-5) << isa << " " << schedule;
            } else {
              EXPECT_EQ(one[i], by[s][i]) << isa << " " << schedule << " merge " << merge;
            }
          }
        }
        EXPECT_EQ(by[0], by[1]) << isa << " w" << v.wbits << "a" << v.ibits << " merge " << merge;
        if (*merge == '\0') {
          unmerged = by[0];
        } else if (*merge == '0') {
          EXPECT_EQ(by[0], unmerged) << isa;
        } else {
          EXPECT_NE(by[0], unmerged) << isa;
        }
      }
    }
  }
  RandomModelOptions tiny;
  tiny.config = io::preset("vit-tiny-test");
  RuntimeOptions bad;
  bad.schedule = "columns";
  EXPECT_THROW(Engine::load_bytes(random_model_bytes(tiny), "m", bad), core::InputError);
}

// Weights shared between blocks are packed once: the engine holds one copy, each block only its
// own LayerNorms and biases (vit-tiny-test: block 1's qkv 96x32, proj 32x32, fc1 64x32 and fc2
// 32x64 are 8192 floats).
TEST(Engine, SharedWeightsArePackedOnce) {
  RandomModelOptions o;
  o.config = io::preset("vit-tiny-test");
  o.config.normalize("tiny");
  auto loaded_bytes = [&] {
    const size_t before = allocated_bytes();
    auto engine = Engine::load_bytes(random_model_bytes(o), "m");
    return allocated_bytes() - before;
  };
  const size_t plain = loaded_bytes();
  o.config.blocks[1].attn_shared_with = 0;
  o.config.blocks[1].mlp_shared_with = 0;
  const size_t shared = loaded_bytes();
  ASSERT_LT(shared, plain);
  EXPECT_GE(plain - shared, size_t{8192} * 4);
  EXPECT_LT(plain - shared, size_t{8192} * 4 * 3 / 2);  // packing pads, it does not duplicate
  // A delta adds its own two small fp32 factors, nothing else.
  o.config.blocks[1].delta_rank = 2;
  const size_t with_delta = loaded_bytes();
  EXPECT_GE(with_delta, shared + 4 * size_t{2 * ((32 + 96) + (32 + 32) + 2 * (32 + 64))});
  EXPECT_LT(with_delta, plain);
}

struct QuantCase {
  int wbits;
  bool wsym, per_channel;
  int ibits;
  bool isym, dynamic;
};

// Quantized files: the simulation path equals the naive oracle's semantics, and the integer
// kernels agree with the simulation (same predictions, logits close).
TEST(Engine, QuantizedModelsIntegerKernelsMatchExactSimulation) {
  const QuantCase cases[] = {{8, true, true, 8, false, true},   {8, false, true, 8, true, false},
                             {4, true, true, 8, false, true},   {4, false, false, 8, false, false},
                             {3, true, true, 8, true, true},    {8, true, false, 7, false, true},
                             {12, true, true, 8, false, true},  {8, true, true, 12, false, true},
                             {2, false, true, 8, false, true}};
  for (const auto& qc : cases) {
    RandomModelOptions o;
    o.config = testing::slimmed_config(true, "token");
    o.seed = 11;
    o.weight_std = 0.3f;
    o.weight_bits = qc.wbits;
    o.weight_symmetric = qc.wsym;
    o.per_channel = qc.per_channel;
    o.input_bits = qc.ibits;
    o.input_symmetric = qc.isym;
    o.input_dynamic = qc.dynamic;
    o.input_range = 3.0f;
    const auto bytes = random_model_bytes(o);
    const LoadedModel m = load_model_data(io::SafeTensorsFile::parse(bytes, "q"));
    const int B = 16, per = 3 * 12 * 12;
    const auto images = randn(static_cast<size_t>(B * per), 21);
    RuntimeOptions sim;
    sim.simulate_quant = true;
    sim.isa = "ref";
    auto es = Engine::load_bytes(bytes, "q", sim);
    const auto ls = run(*es, images, B);
    const std::string label = fmt::format("w{}{}{} in{}{}{}", qc.wbits, qc.wsym ? "s" : "a",
                                          qc.per_channel ? "c" : "t", qc.ibits,
                                          qc.isym ? "s" : "a", qc.dynamic ? "d" : "s");
    // Simulation vs the oracle on a few images (fp32 vs double can flip a rounding: allow a
    // rare small excursion by checking the median error and the prediction).
    for (int b = 0; b < 3; ++b) {
      const auto want = naive_forward(m, images.data() + b * per);
      std::vector<double> err;
      for (size_t k = 0; k < want.size(); ++k) err.push_back(std::abs(ls[static_cast<size_t>(b) * want.size() + k] - want[k]));
      std::nth_element(err.begin(), err.begin() + static_cast<long>(err.size() / 2), err.end());
      EXPECT_LT(err[err.size() / 2], 1e-3 * std::max(1.0, max_abs(want))) << label;
    }
    for (const auto& isa : levels()) {
      RuntimeOptions ro;
      ro.isa = isa;
      auto ei = Engine::load_bytes(bytes, "q", ro);
      const auto li = run(*ei, images, B);
      int agree = 0;
      double scale = 0, worst = 0;
      for (int b = 0; b < B; ++b) {
        const auto first = ls.begin() + b * 7, firsti = li.begin() + b * 7;
        agree += std::max_element(first, first + 7) - first == std::max_element(firsti, firsti + 7) - firsti;
        for (int k = 0; k < 7; ++k) {
          scale = std::max(scale, static_cast<double>(std::abs(ls[static_cast<size_t>(b * 7 + k)])));
          worst = std::max(worst, static_cast<double>(std::abs(ls[static_cast<size_t>(b * 7 + k)] - li[static_cast<size_t>(b * 7 + k)])));
        }
      }
      EXPECT_GE(agree, B - 1) << label << " " << isa;
      EXPECT_LT(worst, 0.05 * scale) << label << " " << isa;
    }
  }
}

// Weights of 2..4 bits: the nibble-packed kernels and the int8 kernels compute the same integer
// sums with the same epilogue, so the logits agree bit for bit at every level and schedule.
TEST(Engine, PackedInt4KernelsGiveTheInt8KernelsLogitsExactly) {
  for (int bits : {4, 3, 2}) {
    RandomModelOptions o;
    o.config = testing::slimmed_config(true, "token");
    o.seed = 5;
    o.weight_std = 0.3f;
    o.weight_bits = bits;
    o.weight_symmetric = bits != 3;
    o.input_bits = 8;
    o.input_dynamic = bits != 2;
    const auto bytes = random_model_bytes(o);
    const int B = 5, per = 3 * 12 * 12;
    const auto images = randn(static_cast<size_t>(B * per), 9);
    for (const auto& isa : levels()) {
      for (const std::string schedule : {"layer", "rows"}) {
        std::vector<float> got[2];
        for (int packed = 0; packed < 2; ++packed) {
          RuntimeOptions ro;
          ro.isa = isa;
          ro.threads = 2;
          ro.schedule = schedule;
          ro.int4 = packed ? "packed" : "int8";
          auto e = Engine::load_bytes(bytes, "q", ro);
          EXPECT_EQ(e->info().int4_kernel, ro.int4);
          got[packed] = run(*e, images, B);
        }
        EXPECT_EQ(got[0], got[1]) << isa << " " << schedule << " w" << bits;
      }
    }
  }
}

TEST(Engine, InfoReportsPrecisionAndPreprocessing) {
  RandomModelOptions o;
  o.config = io::preset("vit-fmnist");
  o.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  auto e = load(o);
  EXPECT_EQ(e->info().image_size, 28);
  EXPECT_EQ(e->info().in_channels, 1);
  EXPECT_EQ(e->info().num_classes, 10);
  EXPECT_EQ(e->info().class_names.size(), 10u);
  EXPECT_NEAR(e->info().mean[0], 0.2860f, 1e-6);
  EXPECT_EQ(e->info().precision, "fp32");
  o.weight_bits = 4;
  o.input_bits = 8;
  EXPECT_EQ(load(o)->info().precision, "int4");
  o.weight_bits = 8;
  EXPECT_EQ(load(o)->info().precision, "int8");
  EXPECT_THROW(e->run(nullptr, 1, nullptr), core::InputError);
}

}  // namespace
}  // namespace vitopt::runtime
