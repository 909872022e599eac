// Quantized model files: save -> load keeps every code bit-exact with the documented dtypes and
// shapes, and the loaded ViT equals a naive re-implementation of the format's arithmetic (scalar
// loops with nearbyint). Malformed metadata and codes: tests/io (one reader for both halves).
#include "model/quantized_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "export/model_writer.h"
#include "io/model_header.h"
#include "io/presets.h"
#include "model/model_file.h"
#include "test_util.h"

namespace vitopt::model {
namespace {

using vitopt::testing::TempDir;

ViT random_tiny(uint64_t seed) {
  ViT m(io::preset("vit-tiny-test"));
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * 0.3);
  return m;
}

torch::Tensor weight_of(ViT& m, const std::string& linear) {
  if (linear == "patch_embed.proj")
    return m->patch_embed_proj->weight.reshape({m->config().embed_dim, -1});
  return m->named_parameters()[linear + ".weight"];
}

// Naive scalar fake quant of one row (the spec's formula, written independently).
void naive_fq_row(float* x, int64_t k, float s, int64_t zp, int64_t qmin, int64_t qmax) {
  for (int64_t i = 0; i < k; ++i) {
    double q = std::nearbyint(static_cast<double>(x[i] / s)) + static_cast<double>(zp);
    q = std::min<double>(std::max<double>(q, static_cast<double>(qmin)), static_cast<double>(qmax));
    x[i] = s * static_cast<float>(static_cast<int64_t>(q) - zp);
  }
}

torch::Tensor naive_fq(const torch::Tensor& x, const io::InputQuant& q) {
  auto y = x.contiguous().clone().reshape({-1, x.size(-1)});
  const int64_t half = int64_t{1} << (q.bits - 1);
  const int64_t qmin = q.symmetric ? -(half - 1) : -half, qmax = half - 1;
  for (int64_t r = 0; r < y.size(0); ++r) {
    float* row = y[r].data_ptr<float>();
    float s = q.scale;
    int64_t zp = q.zero_point;
    if (q.dynamic) {
      float lo = 0, hi = 0;
      for (int64_t i = 0; i < y.size(1); ++i) lo = std::min(lo, row[i]), hi = std::max(hi, row[i]);
      s = q.symmetric ? std::max(-lo, hi) / static_cast<float>(qmax)
                      : (hi - lo) / static_cast<float>(qmax - qmin);
      zp = q.symmetric ? 0
                       : std::clamp<int64_t>(qmin - static_cast<int64_t>(std::nearbyint(lo / s)),
                                             qmin, qmax);
    }
    naive_fq_row(row, y.size(1), s, zp, qmin, qmax);
  }
  return y.view(x.sizes());
}

struct Fixture {
  std::map<std::string, QuantizedWeight> weights;
  io::QuantSpec spec;
};

// Mixed widths/schemes over the tiny model's layers, static and dynamic inputs.
Fixture quantize_tiny(ViT& m) {
  Fixture f;
  const std::vector<io::WeightQuant> specs = {{8, true, true}, {4, false, true},  {12, true, false},
                                          {3, true, true}, {2, false, false}, {6, false, true}};
  const auto names = quantizable_linears(m);
  for (size_t i = 0; i < names.size(); ++i) {
    f.weights[names[i] + ".weight"] =
        quantize_weight(weight_of(m, names[i]), specs[i % specs.size()]);
    io::InputQuant in;
    in.bits = i % 2 ? 8 : 6;
    in.symmetric = i % 3 == 0;
    in.dynamic = i % 4 == 1;
    if (!in.dynamic) {
      const auto p = io::choose_qparams(-2.0f, 3.0f, in.bits, in.symmetric);
      in.scale = p.scale;
      in.zero_point = p.zero_point;
    }
    f.spec.inputs[names[i]] = in;
  }
  return f;
}

TEST(QuantizedModel, SaveLoadIsBitExactAndMatchesNaiveSimulation) {
  TempDir tmp;
  auto m = random_tiny(1);
  auto f = quantize_tiny(m);
  exporter::save_quantized_model(m, f.weights, f.spec, tmp / "q.safetensors");

  const auto file = io::SafeTensorsFile::load(tmp / "q.safetensors");
  const io::ModelHeader header = io::read_model_header(file);
  ASSERT_TRUE(header.quant.has_value());
  EXPECT_EQ(header.precision, "mixed");
  // Storage: dtypes and shapes as docs/model-format.md says (patch in = 49: odd, nibble pad).
  EXPECT_EQ(file.info("patch_embed.proj.weight").dtype, io::DType::I8);
  EXPECT_EQ(file.info("patch_embed.proj.weight").shape, (std::vector<int64_t>{32, 49}));
  EXPECT_EQ(file.info("blocks.0.attn.qkv.weight").dtype, io::DType::U8);  // 4 bits, asym
  EXPECT_EQ(file.info("blocks.0.attn.qkv.weight").shape, (std::vector<int64_t>{96, 16}));
  EXPECT_TRUE(file.has("blocks.0.attn.qkv.weight.zero_point"));
  EXPECT_EQ(file.info("blocks.0.attn.proj.weight").dtype, io::DType::I16);
  EXPECT_EQ(file.info("blocks.0.attn.proj.weight.scale").shape, (std::vector<int64_t>{1}));
  EXPECT_FALSE(file.has("blocks.0.attn.proj.weight.zero_point"));

  const io::QuantSpec& spec = *header.quant;
  auto back = quantized_weights_from_file(file, header);
  for (const auto& [name, qw] : f.weights) {
    EXPECT_TRUE(torch::equal(back.at(name).codes, qw.codes)) << name;
    EXPECT_TRUE(torch::equal(back.at(name).scale, qw.scale)) << name;
    EXPECT_TRUE(torch::equal(back.at(name).zero_point, qw.zero_point)) << name;
  }
  for (const auto& [name, in] : f.spec.inputs) {
    EXPECT_EQ(spec.inputs.at(name).scale, in.scale) << name;  // float survives the JSON exactly
    EXPECT_EQ(spec.inputs.at(name).zero_point, in.zero_point) << name;
  }

  // Naive reference: fp32 model with weights decoded by hand and inputs fake-quantized by loops.
  auto ref = random_tiny(1);
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, qw] : f.weights) {
      auto w = torch::empty(qw.codes.sizes());
      for (int64_t o = 0; o < w.size(0); ++o) {
        const int64_t k = qw.spec.per_channel ? o : 0;
        for (int64_t i = 0; i < w.size(1); ++i) {
          w[o][i] =
              qw.scale[k].item<float>() *
              static_cast<float>(qw.codes[o][i].item<int64_t>() - qw.zero_point[k].item<int64_t>());
        }
      }
      auto& p = ref->named_parameters()[name];
      p.copy_(w.view(p.sizes()));
    }
  }
  const int patch = ref->config().patch_size;
  for (const auto& [name, in] : f.spec.inputs) {
    auto q = in;
    if (name == "patch_embed.proj") {
      ref->patch_input_transform = [q, patch](const torch::Tensor& x) {
        const int64_t B = x.size(0), g = x.size(2) / patch;
        auto rows = x.reshape({B, 1, g, patch, g, patch})
                        .permute({0, 2, 4, 1, 3, 5})
                        .reshape({B, g * g, -1});
        return naive_fq(rows, q)
            .reshape({B, g, g, 1, patch, patch})
            .permute({0, 3, 1, 4, 2, 5})
            .reshape(x.sizes());
      };
    } else {
      ref->named_modules()[name]->as<LinearImpl>()->input_transform = [q](const torch::Tensor& x) {
        return naive_fq(x, q);
      };
    }
  }
  auto loaded = load_model(tmp / "q.safetensors");
  loaded->eval();
  ref->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({3, 1, 28, 28}, at::detail::createCPUGenerator(7));
  auto a = loaded->forward(x), b = ref->forward(x);
  EXPECT_LE((a - b).abs().max().item<float>(), 1e-5f);
  // And it is really quantized: differs from the fp32 model.
  EXPECT_GT((a - m->forward(x)).abs().max().item<float>(), 1e-3f);
}

}  // namespace
}  // namespace vitopt::model
