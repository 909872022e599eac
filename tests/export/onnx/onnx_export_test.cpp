// ONNX export against the vitopt runtime, every model kind the project makes, in ONNX Runtime with
// graph optimizations off and on: fp32 kinds (slimmed heads/widths, skipped sub-blocks, low-rank,
// shared blocks, distillation token, average pooling) to 1e-4 of the logit scale on a random
// batch; quantized kinds (static/dynamic, symmetric/asymmetric, per channel/tensor, 4/6/8/16 bits,
// quantized attention) by top-1 agreement on the 10k Fashion-MNIST test images (>= 99.5%), at
// opset 17 and 21. Models are random-weight files written without LibTorch; the predictions are
// checked to be spread over the classes so that agreement is not trivially 100%.
#include "export/onnx_export.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "data/dataset.h"
#include "data/transforms.h"
#include "io/metadata_keys.h"
#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "io/vit_config.h"
#include "ort_harness.h"
#include "runtime/model_loader.h"
#include "runtime/random_model.h"

namespace vitopt::exporter {
namespace {

using nlohmann::json;
using testing::find_ort;
using testing::run_ort;
using testing::run_runtime;

// A normalized config (RandomModelOptions wants one): the small test shape with `j` merged in.
io::ViTConfig config(json j) {
  json base = {{"name", "onnx-test"}, {"image_size", 28}, {"in_channels", 1},
               {"patch_size", 7},     {"embed_dim", 32},  {"depth", 3},
               {"num_heads", 2},      {"mlp_dim", 64},    {"num_classes", 10}};
  base.update(j);
  io::ViTConfig c = io::ViTConfig::from_json(base, "test config");
  c.normalize("test config");
  return c;
}

std::vector<float> random_images(int n, const io::ViTConfig& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * c.in_channels * c.image_size * c.image_size));
  for (auto& v : x) v = d(rng);
  return x;
}

onnx::ModelProto read_onnx(const std::filesystem::path& p) {
  const auto bytes = core::read_file_bytes(p);
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return m;
}

std::map<std::string, std::string> metadata(const onnx::ModelProto& m) {
  std::map<std::string, std::string> out;
  for (const auto& p : m.metadata_props()) out[p.key()] = p.value();
  return out;
}

TEST(OnnxExport, Fp32KindsMatchRuntime) {
  const auto ort = find_ort();
  VITOPT_REQUIRE_ORT(ort);
  vitopt::testing::TempDir dir;
  const std::map<std::string, json> kinds = {
      {"plain", json::object()},
      {"slimmed_skipped",
       {{"blocks", json::array({{{"num_heads", 1}, {"mlp_dim", 40}},
                                {{"skip_attn", true}, {"mlp_dim", 17}},
                                {{"num_heads", 3}, {"skip_mlp", true}}})}}},
      {"low_rank",
       {{"blocks", json::array({{{"qkv_rank", 8}, {"fc1_rank", 6}},
                                {{"proj_rank", 5}, {"fc2_rank", 7}},
                                json::object()})}}},
      {"shared_distilled",
       {{"distill_token", true},
        {"blocks",
         json::array({json::object(),
                      {{"attn_shared_with", 0}, {"mlp_shared_with", 0}, {"delta_rank", 3}},
                      {{"mlp_shared_with", 0}}})}}},
      {"avg_pool_no_qkv_bias",
       {{"pool", "avg"},
        {"qkv_bias", false},
        {"image_size", 32},
        {"in_channels", 3},
        {"patch_size", 8}}},
      // timm layouts: no class token + registers + positions on patches only + fc_norm; a class
      // token with registers; fc_norm under a distillation token.
      {"timm_no_cls_regs_fc_norm",
       {{"class_token", false},
        {"reg_tokens", 4},
        {"no_embed_class", true},
        {"fc_norm", true},
        {"pool", "avg"}}},
      {"timm_cls_regs", {{"reg_tokens", 2}}},
      {"distilled_fc_norm", {{"distill_token", true}, {"fc_norm", true}}},
  };
  for (const auto& [name, j] : kinds) {
    SCOPED_TRACE(name);
    runtime::RandomModelOptions o;
    o.config = config(j);
    o.seed = 7;
    o.weight_std = 0.15f;
    o.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    const auto model = dir / (name + ".safetensors");
    runtime::write_random_model(o, model);
    const int n = 5, C = o.config.in_channels, S = o.config.image_size;
    const auto x = random_images(n, o.config, 11);
    const auto want = run_runtime(model, x, n);
    float scale = 0;
    for (float v : want) scale = std::max(scale, std::abs(v));
    ASSERT_GT(scale, 0.1f);
    for (int opset : {17, 21}) {
      const auto onnx_file = dir / (name + std::to_string(opset) + ".onnx");
      const auto summary = export_onnx(model, {opset}, onnx_file);
      EXPECT_EQ(summary.precision, "fp32");
      const std::vector<std::string> opts{"disabled", "all"};
      const auto results = run_ort(ort, onnx_file, x, n, C, S, opts, dir.path());
      for (size_t r = 0; r < opts.size(); ++r) {
        const auto& got = results[r];
        const char* opt = opts[r].c_str();
        ASSERT_EQ(got.size(), want.size()) << opset << " " << opt;
        float diff = 0;
        for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::abs(got[i] - want[i]));
        std::printf("[onnx] %-22s opset %d %-8s max |diff| %.3g (logit scale %.3g)\n", name.c_str(),
                    opset, opt, diff, scale);
        EXPECT_LE(diff, 1e-4f * scale) << "opset " << opset << ", optimizations " << opt;
      }
    }
  }
}

TEST(OnnxExport, MetadataCarriesPreprocessingAndClasses) {
  vitopt::testing::TempDir dir;
  runtime::RandomModelOptions o;
  o.config = config({{"preprocess", {{"mean", {0.25}}, {"std", {0.75}}, {"crop_pct", 0.875}}}});
  o.class_names = {"t-shirt", "trouser", "c", "d", "e", "f", "g", "h", "i", "boot"};
  runtime::write_random_model(o, dir / "m.safetensors");
  export_onnx(dir / "m.safetensors", {17}, dir / "m.onnx");
  const auto m = read_onnx(dir / "m.onnx");
  EXPECT_EQ(m.opset_import(0).version(), 17);
  EXPECT_EQ(m.graph().input(0).name(), "pixel_values");
  EXPECT_EQ(m.graph().output(0).name(), "logits");
  const auto meta = metadata(m);
  ASSERT_TRUE(meta.count(kOnnxPreprocessKey));
  const auto pre = json::parse(meta.at(kOnnxPreprocessKey));
  EXPECT_EQ(pre["mean"], json::array({0.25}));
  EXPECT_EQ(pre["std"], json::array({0.75}));
  EXPECT_FLOAT_EQ(pre["crop_pct"].get<float>(), 0.875f);
  EXPECT_EQ(pre["image_size"], 28);
  EXPECT_EQ(json::parse(meta.at(kOnnxClassNamesKey)), json(o.class_names));
  EXPECT_EQ(json::parse(meta.at(kOnnxConfigKey))["embed_dim"], 32);
}

TEST(OnnxExport, RefusesUnknownOpset) {
  vitopt::testing::TempDir dir;
  runtime::RandomModelOptions o;
  o.config = config(json::object());
  runtime::write_random_model(o, dir / "m.safetensors");
  try {
    export_onnx(dir / "m.safetensors", {18}, dir / "m.onnx");
    FAIL() << "opset 18 accepted";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 17 or 21, got 18"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.onnx"));
}

// A quantized file with extras.attention (static q/k/v quantizers, coded probabilities) added to
// a random quantized model's spec.
void add_attention_quant(const std::filesystem::path& path, bool log2, int prob_bits) {
  const auto file = io::SafeTensorsFile::load(path);
  io::SafeTensorsWriter w;
  for (const auto& name : file.names()) {
    const auto& info = file.info(name);
    w.add(name, info.dtype, info.shape, file.data(name), info.nbytes);
  }
  for (const auto& [k, v] : file.metadata()) w.set_metadata(k, v);
  auto spec = io::QuantSpec::from_json(json::parse(*file.metadata_value(io::kQuantKey)), "t");
  io::AttentionQuant a;
  a.bits = 8;
  a.symmetric = true;
  a.prob_bits = prob_bits;
  a.prob_quantizer = log2 ? "log2" : "uniform";
  const auto c = runtime::load_model_data(file).config;
  for (int b = 0; b < c.depth; ++b) {
    io::AttentionQuant::Block blk;
    for (io::InputQuant* q : {&blk.q, &blk.k, &blk.v}) {
      q->bits = 8;
      q->symmetric = true;
      q->scale = 0.04f;
    }
    a.blocks[b] = blk;
  }
  spec.attention = a;
  w.set_metadata(io::kQuantKey, spec.to_json().dump());
  w.write(path);
}

struct QuantKind {
  std::string name;
  int wbits, abits;
  bool wsym, per_channel, asym_inputs, dynamic;
  int attention = 0;  // 0: none, 1: uniform 8-bit probability codes, 2: log2 4-bit codes
};

TEST(OnnxExport, QuantizedKindsAgreeOnFashionMnist) {
  const auto ort = find_ort();
  VITOPT_REQUIRE_ORT(ort);
  vitopt::testing::TempDir dir;
  data::DatasetSpec spec;
  const auto test_set = data::open_dataset(spec, data::Split::Test);
  const int n = static_cast<int>(test_set->size());
  ASSERT_EQ(n, 10000);
  const io::ViTConfig c = config(json::object());
  data::TransformOptions t;
  t.mean = c.preprocess.mean;
  t.std = c.preprocess.std;
  std::vector<float> x(static_cast<size_t>(n) * 28 * 28);
  std::mt19937_64 rng(0);
  for (int i = 0; i < n; ++i)
    data::apply_transform(test_set->image(static_cast<size_t>(i)), t, rng,
                          x.data() + static_cast<size_t>(i) * 784);

  const std::vector<QuantKind> kinds = {
      {"w8a8_static_asym", 8, 8, true, true, true, false},
      {"w8a8_dynamic_sym_pertensor_asymw", 8, 8, false, false, false, true},
      {"w4a8_dynamic_asym", 4, 8, true, true, true, true},
      {"w6a6_static_sym", 6, 6, true, true, false, false},
      {"w16a16_static_asym", 16, 16, false, true, true, false},
      {"w8a8_attention_log2", 8, 8, true, true, true, false, 2},
      {"w4a8_attention_uniform", 4, 8, false, true, true, true, 1},
  };
  std::vector<float> control;  // the fp32 twin's logits: how far quantization moves them
  for (const QuantKind& k : kinds) {
    SCOPED_TRACE(k.name);
    runtime::RandomModelOptions o;
    o.config = c;
    o.seed = 3;
    o.weight_std = 0.6f;  // spreads a random model's predictions over 6 Fashion-MNIST classes
    o.input_range = 8.0f;
    o.weight_bits = k.wbits;
    o.weight_symmetric = k.wsym;
    o.per_channel = k.per_channel;
    o.input_bits = k.abits;
    o.input_symmetric = !k.asym_inputs;
    o.input_dynamic = k.dynamic;
    const auto model = dir / (k.name + ".safetensors");
    runtime::write_random_model(o, model);
    if (k.attention) add_attention_quant(model, k.attention == 2, k.attention == 2 ? 4 : 8);
    const auto logits = run_runtime(model, x, n);
    const auto want = testing::argmax_rows(logits, c.num_classes);
    // The predictions must be spread, or agreement would say nothing.
    std::vector<int> per_class(static_cast<size_t>(c.num_classes));
    for (int p : want) ++per_class[static_cast<size_t>(p)];
    int spread = 0;
    for (int cnt : per_class) spread += cnt >= n / 50;
    ASSERT_GE(spread, 4) << "random model predicts too few classes to make agreement meaningful";
    if (control.empty()) {  // negative control: quantization is visible in these logits
      runtime::RandomModelOptions fp = o;
      fp.weight_bits = fp.input_bits = 0;
      runtime::write_random_model(fp, dir / "fp32.safetensors");
      control = run_runtime(dir / "fp32.safetensors", x, n);
    }
    // Opset 21 differs from 17 only in how weight codes are stored (INT4, INT16): run it for
    // those, optimized only, to keep the test short.
    const bool opset21_differs = k.wbits <= 4 || k.wbits > 8;
    for (int opset : {17, 21}) {
      if (opset == 21 && !opset21_differs) continue;
      const auto onnx_file = dir / (k.name + std::to_string(opset) + ".onnx");
      const auto summary = export_onnx(model, {opset}, onnx_file);
      EXPECT_NE(summary.precision, "fp32");
      const auto opts = opset == 17 ? std::vector<std::string>{"disabled", "all"}
                                    : std::vector<std::string>{"all"};
      const auto results = run_ort(ort, onnx_file, x, n, 1, 28, opts, dir.path());
      for (size_t r = 0; r < opts.size(); ++r) {
        const auto& got = results[r];
        ASSERT_EQ(got.size(), logits.size()) << opset << " " << opts[r];
        const auto top = testing::argmax_rows(got, c.num_classes);
        int same = 0;
        for (int i = 0; i < n; ++i)
          same += top[static_cast<size_t>(i)] == want[static_cast<size_t>(i)];
        const double agree = static_cast<double>(same) / n;
        // Logits: images whose every logit is within 1e-3 (most: an input on a rounding boundary
        // moves a few; 16-bit codes are so fine, and 8-bit uniform probability codes so often on a
        // boundary, that fp32 summation order moves more), against the fp32 twin (none).
        auto close_rows = [&](const std::vector<float>& a) {
          int rows = 0;
          for (int i = 0; i < n; ++i) {
            float d = 0;
            for (int j = 0; j < c.num_classes; ++j) {
              const size_t e = static_cast<size_t>(i * c.num_classes + j);
              d = std::max(d, std::abs(a[e] - logits[e]));
            }
            rows += d <= 1e-3f;
          }
          return static_cast<double>(rows) / n;
        };
        const double close = close_rows(got), control_close = close_rows(control);
        std::printf(
            "[onnx] %-32s opset %d %-8s top-1 agreement %.4f, logits within 1e-3: %.4f "
            "(fp32 twin: %.4f; %d classes predicted)\n",
            k.name.c_str(), opset, opts[r].c_str(), agree, close, control_close, spread);
        EXPECT_GE(agree, 0.995) << "opset " << opset << ", optimizations " << opts[r];
        EXPECT_GE(close, k.abits > 8 || k.attention == 1 ? 0.5 : 0.95)
            << "opset " << opset << ", optimizations " << opts[r];
        EXPECT_LT(control_close, 0.5) << "the fp32 twin is as close: quantization not visible";
      }
    }
  }
}

}  // namespace
}  // namespace vitopt::exporter
