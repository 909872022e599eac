// Every kind of model file the project writes goes through the one header reader
// (io::read_model_header), the LibTorch loader (model::load_model) and the runtime loader
// (runtime::load_model_data): all three accept it and agree on the config, the precision, the
// parameter count (io::count_params) and the stored bytes (io::tensor_bytes). Kinds: fp32 presets,
// pruned per-block heads/widths with kept_heads, skipped sub-blocks, low-rank factors, a shared
// block, distillation token, avg pooling, every weight width 2..16 (symmetric/asymmetric, per
// channel/tensor), static/dynamic inputs, quantized attention, the runtime's own random files and
// a timm checkpoint without metadata. Lives here because it links both halves.
#include <gtest/gtest.h>

#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "io/presets.h"
#include "io/tensor_layout.h"
#include "model/model_file.h"
#include "model/quantized_model.h"
#include "runtime/model_loader.h"
#include "runtime/random_model.h"
#include "test_util.h"

namespace vitopt {
namespace {

// Reads `path` three ways and checks they agree; `want_precision` as the one rule gives it.
void check_file(const std::filesystem::path& path, const std::string& want_precision,
                const io::ImportHints& hints = {}) {
  SCOPED_TRACE(path.filename().string());
  const auto file = io::SafeTensorsFile::load(path);
  const io::ModelHeader h = io::read_model_header(file, hints);
  EXPECT_EQ(h.precision, want_precision);
  model::ViT vit = model::load_model(file, hints);
  EXPECT_EQ(vit->config().to_json(), h.config.to_json());
  const runtime::LoadedModel rt = runtime::load_model_data(file, hints);
  EXPECT_EQ(rt.config.to_json(), h.config.to_json());
  EXPECT_EQ(rt.precision, h.precision);
  EXPECT_EQ(rt.quant.has_value(), h.quant.has_value());
  if (h.quant) {
    EXPECT_EQ(*rt.quant, *h.quant);
  }
  EXPECT_EQ(rt.params, io::count_params(h.config));
  int64_t module_params = 0;
  for (const auto& p : vit->parameters()) module_params += p.numel();
  EXPECT_EQ(module_params, io::count_params(h.config));
  int64_t stored = 0;
  for (const auto& name : file.names()) stored += static_cast<int64_t>(file.info(name).nbytes);
  if (!h.imported) {
    EXPECT_EQ(stored, io::tensor_bytes(h.config, h.quant));
  }
}

model::ViT random_vit(const io::ViTConfig& c, uint64_t seed) {
  model::ViT vit(c);
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : vit->parameters()) p.normal_(0.0, 0.2);
  return vit;
}

// The slimmed shapes pruning, factorization and sharing produce, all in one model.
io::ViTConfig edited_config() {
  io::ViTConfig c = io::preset("vit-tiny-test");
  c.depth = 5;
  c.num_heads = 4;
  c.head_dim = 8;
  c.distill_token = true;
  c.blocks.assign(5, {});
  c.blocks[0].num_heads = 3;
  c.blocks[0].kept_heads = {0, 2, 3};
  c.blocks[0].mlp_dim = 40;
  c.blocks[1].skip_attn = true;
  c.blocks[1].qkv_rank = 0;
  c.blocks[2].skip_mlp = true;
  c.blocks[2].qkv_rank = 6;
  c.blocks[2].proj_rank = 5;
  c.blocks[3].fc1_rank = 7;
  c.blocks[3].fc2_rank = 9;
  c.blocks[4] = c.blocks[3];
  c.blocks[4].attn_shared_with = 3;  // low-rank factors shared, with a delta on each
  c.blocks[4].mlp_shared_with = 3;
  c.blocks[4].delta_rank = 2;
  c.normalize("edited");
  return c;
}

TEST(ModelFiles, Fp32FilesOfEveryShape) {
  testing::TempDir dir;
  for (const char* name : {"vit-tiny-test", "vit-fmnist-student"}) {
    auto vit = random_vit(io::preset(name), 1);
    exporter::save_model(vit, dir / (std::string(name) + ".safetensors"));
    check_file(dir / (std::string(name) + ".safetensors"), "fp32");
  }
  auto edited = random_vit(edited_config(), 2);
  exporter::save_model(edited, dir / "edited.safetensors", {{io::kClassNamesKey, "[\"a\",\"b\"]"}});
  check_file(dir / "edited.safetensors", "fp32");
  EXPECT_EQ(io::read_model_header(dir / "edited.safetensors").config.blocks[0].kept_heads,
            (std::vector<int>{0, 2, 3}));
  io::ViTConfig avg = io::preset("vit-tiny-test");
  avg.pool = "avg";
  auto avg_vit = random_vit(avg, 3);
  exporter::save_model(avg_vit, dir / "avg.safetensors");
  check_file(dir / "avg.safetensors", "fp32");
  io::ViTConfig regs = io::preset("vit-tiny-test");  // timm layout: registers, no class token
  regs.class_token = false;
  regs.reg_tokens = 4;
  regs.no_embed_class = true;
  regs.fc_norm = true;
  regs.pool = "avg";
  auto regs_vit = random_vit(regs, 4);
  exporter::save_model(regs_vit, dir / "regs.safetensors");
  check_file(dir / "regs.safetensors", "fp32");
  const auto names = io::SafeTensorsFile::load(dir / "regs.safetensors").names();
  for (const char* want : {"reg_token", "fc_norm.weight", "pos_embed"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  for (const char* absent : {"cls_token", "norm.weight"})
    EXPECT_EQ(std::find(names.begin(), names.end(), absent), names.end()) << absent;
}

// Every width 2..16 on the edited model (low-rank factors quantized under their own names),
// alternating schemes, static and dynamic inputs, attention quantized on blocks with their own.
TEST(ModelFiles, QuantizedFilesOfEveryWidth) {
  testing::TempDir dir;
  const io::ViTConfig c = edited_config();
  auto vit = random_vit(c, 4);
  for (int bits = 2; bits <= 16; ++bits) {
    std::map<std::string, model::QuantizedWeight> weights;
    io::QuantSpec spec;
    int i = 0;
    for (const auto& l : io::model_linears(c)) {
      for (const auto& w : l.weights) {
        const io::WeightQuant wq{bits, (i % 2) == 0, (i % 3) != 0};
        weights[w.name] = model::quantize_weight(vit->named_parameters()[w.name].detach(), wq);
        ++i;
      }
      if (bits <= 8) {  // inputs: static on even Linears, dynamic on odd ones
        io::InputQuant in{8, i % 2 == 1, i % 2 == 1, 1.0f, 0};
        if (!in.dynamic) {
          const auto p = io::choose_qparams(-3.0f, 2.0f, in.bits, in.symmetric);
          in.scale = p.scale;
          in.zero_point = p.zero_point;
        }
        spec.inputs[l.name] = in;
      }
    }
    if (bits == 8) {
      io::AttentionQuant a;
      a.prob_quantizer = bits % 2 ? "uniform" : "log2";
      for (int b : {0, 2}) {  // blocks 1 (skipped), 3 (low-rank, fine) and 4 (shared) vary
        io::AttentionQuant::Block blk;
        for (auto* q : {&blk.q, &blk.k, &blk.v}) q->scale = 0.05f;
        a.blocks[b] = blk;
      }
      spec.attention = a;
    }
    const auto path = dir / ("w" + std::to_string(bits) + ".safetensors");
    exporter::save_quantized_model(vit, weights, spec, path);
    check_file(path, "int" + std::to_string(bits));
  }
}

TEST(ModelFiles, RuntimeRandomFilesAndTimmImports) {
  testing::TempDir dir;
  runtime::RandomModelOptions o;
  o.config = edited_config();
  runtime::write_random_model(o, dir / "rt_fp32.safetensors");
  check_file(dir / "rt_fp32.safetensors", "fp32");
  o.weight_bits = 6;  // all 6-bit: "int6" for every reader (the runtime said "mixed" before)
  o.input_bits = 8;
  runtime::write_random_model(o, dir / "rt_int6.safetensors");
  check_file(dir / "rt_int6.safetensors", "int6");
  o.weight_bits = 3;
  o.weight_symmetric = false;
  o.per_channel = false;
  o.input_dynamic = false;
  runtime::write_random_model(o, dir / "rt_int3.safetensors");
  check_file(dir / "rt_int3.safetensors", "int3");

  // A timm checkpoint: a vitopt fp32 file without its metadata (same tensor names).
  auto vit = random_vit(io::preset("vit-fmnist-student"), 5);
  exporter::save_model(vit, dir / "full.safetensors");
  const auto full = io::SafeTensorsFile::load(dir / "full.safetensors");
  io::SafeTensorsWriter w;
  for (const auto& name : full.names()) {
    const auto& info = full.info(name);
    w.add(name, info.dtype, info.shape, full.data(name), info.nbytes);
  }
  w.write(dir / "timm.safetensors");
  io::ImportHints hints;
  hints.num_heads = 2;  // 64 / 64 = 1 would be the default guess
  check_file(dir / "timm.safetensors", "fp32", hints);
  EXPECT_TRUE(io::read_model_header(dir / "timm.safetensors", hints).imported);
}

}  // namespace
}  // namespace vitopt
