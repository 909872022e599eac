// Random model files for tests and benchmarks (see random_model.h). Quantization here follows the
// spec literally (round half to even of w / scale, codes clamped to [qmin, qmax], nibbles stored
// as q - qmin) so these files double as the runtime's own reference for the format.
#include "runtime/random_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/file_util.h"
#include "io/safetensors.h"
#include "runtime/kernels/kernels.h"
#include "runtime/quant_spec.h"

namespace vitopt::runtime {
namespace {

class Writer {
 public:
  explicit Writer(const RandomModelOptions& o) : o_(o), rng_(o.seed) {}

  std::vector<float> normal(size_t n, float mean, float sd) {
    std::normal_distribution<float> d(mean, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng_);
    return v;
  }
  void add(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
    w_.add_f32(name, std::move(shape), v.data());
  }
  void norm(const std::string& pre, int C) {
    add(pre + ".weight", {C}, normal(static_cast<size_t>(C), 1.0f, 0.1f));
    add(pre + ".bias", {C}, normal(static_cast<size_t>(C), 0.0f, 0.05f));
  }
  // A Linear (dense or low-rank); `conv` is the fp32 shape of the patch embedding.
  void linear(const std::string& name, int in, int out, bool bias, int rank, bool quantizable,
              const std::vector<int64_t>& conv = {}) {
    if (rank > 0) {
      weight(name, name + ".weight_v", in, rank, quantizable, {});
      weight(name + "#u", name + ".weight_u", rank, out, quantizable, {});
    } else {
      weight(name, name + ".weight", in, out, quantizable, conv);
    }
    if (bias) add(name + ".bias", {out}, normal(static_cast<size_t>(out), 0.0f, 0.05f));
  }
  void finish(const ModelConfig& c) {
    w_.set_metadata("format", "pt");
    w_.set_metadata("vitopt.format_version", "1");
    w_.set_metadata("vitopt.config", c.to_json().dump());
    if (!o_.class_names.empty())
      w_.set_metadata("vitopt.class_names", nlohmann::json(o_.class_names).dump());
    if (!spec_.weights.empty() || !spec_.inputs.empty())
      w_.set_metadata(kQuantKey, spec_.to_json().dump());
  }
  io::SafeTensorsWriter& writer() { return w_; }

 private:
  void weight(const std::string& lname, const std::string& wname, int in, int out, bool quantizable,
              const std::vector<int64_t>& conv) {
    const auto w = normal(static_cast<size_t>(in) * static_cast<size_t>(out), 0.0f, o_.weight_std);
    // Input quantization keys on the Linear name; the second low-rank factor ("#u") has none.
    const bool first_factor = lname.find('#') == std::string::npos;
    if (quantizable && o_.input_bits > 0 && first_factor) {
      InputQuant iq;
      iq.bits = o_.input_bits;
      iq.symmetric = o_.input_symmetric;
      iq.dynamic = o_.input_dynamic;
      if (!iq.dynamic) {
        kernels::ActQuant aq{iq.qmin(), iq.qmax(), iq.symmetric, false, 1.0f, 0};
        kernels::dynamic_params(-o_.input_range, 0.8f * o_.input_range, aq, &iq.scale, &iq.zero_point);
      }
      spec_.inputs[lname] = iq;
    }
    if (!quantizable || o_.weight_bits == 0) {
      add(wname, conv.empty() ? std::vector<int64_t>{out, in} : conv, w);
      return;
    }
    WeightQuant wq;
    wq.bits = o_.weight_bits;
    wq.symmetric = o_.weight_symmetric;
    wq.per_channel = o_.per_channel;
    spec_.weights[wname] = wq;
    kernels::ActQuant aq{wq.qmin(), wq.qmax(), wq.symmetric, false, 1.0f, 0};
    const int groups = wq.per_channel ? out : 1;
    const size_t per = wq.per_channel ? static_cast<size_t>(in) : w.size();
    std::vector<float> scales(static_cast<size_t>(groups));
    std::vector<int32_t> zps(static_cast<size_t>(groups));
    for (int g = 0; g < groups; ++g) {
      const auto first = w.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(g) * per);
      const auto [mn, mx] = std::minmax_element(first, first + static_cast<std::ptrdiff_t>(per));
      kernels::dynamic_params(*mn, *mx, aq, &scales[static_cast<size_t>(g)], &zps[static_cast<size_t>(g)]);
    }
    std::vector<int> q(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      const size_t g = wq.per_channel ? i / static_cast<size_t>(in) : 0;
      q[i] = kernels::quantize_value(w[i], scales[g], zps[g], wq.qmin(), wq.qmax());
    }
    if (wq.bits <= 4) {
      const int half = (in + 1) / 2;
      std::vector<uint8_t> packed(static_cast<size_t>(out) * static_cast<size_t>(half), 0);
      for (int r = 0; r < out; ++r) {
        for (int i = 0; i < in; ++i) {
          const auto nib = static_cast<uint8_t>(q[static_cast<size_t>(r) * static_cast<size_t>(in) + static_cast<size_t>(i)] - wq.qmin());
          packed[static_cast<size_t>(r) * static_cast<size_t>(half) + static_cast<size_t>(i / 2)] |=
              static_cast<uint8_t>(i % 2 == 0 ? nib : nib << 4);
        }
      }
      w_.add(wname, io::DType::U8, {out, half}, packed.data(), packed.size());
    } else if (wq.bits <= 8) {
      std::vector<int8_t> v(q.begin(), q.end());
      w_.add(wname, io::DType::I8, {out, in}, v.data(), v.size());
    } else {
      std::vector<int16_t> v(q.begin(), q.end());
      w_.add(wname, io::DType::I16, {out, in}, v.data(), v.size() * 2);
    }
    w_.add_f32(wname + ".scale", {groups}, scales.data());
    if (!wq.symmetric) w_.add(wname + ".zero_point", io::DType::I32, {groups}, zps.data(), zps.size() * 4);
  }

  const RandomModelOptions& o_;
  std::mt19937_64 rng_;
  io::SafeTensorsWriter w_;
  QuantSpec spec_;
};

}  // namespace

std::vector<uint8_t> random_model_bytes(const RandomModelOptions& o) {
  const ModelConfig& c = o.config;
  Writer w(o);
  const int C = c.embed_dim, N = c.num_tokens(), P = c.patch_size;
  const bool qe = o.quantize_patch_and_head;
  w.add("cls_token", {1, 1, C}, w.normal(static_cast<size_t>(C), 0.0f, 0.5f));
  if (c.distill_token) w.add("dist_token", {1, 1, C}, w.normal(static_cast<size_t>(C), 0.0f, 0.5f));
  w.add("pos_embed", {1, N, C}, w.normal(static_cast<size_t>(N) * static_cast<size_t>(C), 0.0f, 0.5f));
  w.linear("patch_embed.proj", c.patch_features(), C, true, 0, qe, {C, c.in_channels, P, P});
  for (int b = 0; b < c.depth; ++b) {
    const BlockShape& s = c.blocks[static_cast<size_t>(b)];
    if (s.shared_with >= 0) continue;
    const std::string pre = fmt::format("blocks.{}.", b);
    const int hd = s.num_heads * c.head_dim;
    if (!s.skip_attn) {
      w.norm(pre + "norm1", C);
      w.linear(pre + "attn.qkv", C, 3 * hd, c.qkv_bias, s.qkv_rank, true);
      w.linear(pre + "attn.proj", hd, C, true, s.proj_rank, true);
    }
    if (!s.skip_mlp) {
      w.norm(pre + "norm2", C);
      w.linear(pre + "mlp.fc1", C, s.mlp_dim, true, s.fc1_rank, true);
      w.linear(pre + "mlp.fc2", s.mlp_dim, C, true, s.fc2_rank, true);
    }
  }
  w.norm("norm", C);
  w.linear("head", C, c.num_classes, true, 0, qe);
  if (c.distill_token) w.linear("head_dist", C, c.num_classes, true, 0, qe);
  w.finish(c);
  return w.writer().serialize();
}

void write_random_model(const RandomModelOptions& o, const std::filesystem::path& path) {
  const auto bytes = random_model_bytes(o);
  core::write_file_atomic(path, bytes.data(), bytes.size());
}

ModelConfig preset_config(const std::string& name) {
  nlohmann::json j;
  const nlohmann::json fm = {{"image_size", 28}, {"in_channels", 1}, {"num_classes", 10},
                             {"preprocess", {{"mean", {0.2860}}, {"std", {0.3530}}}}};
  auto imagenet = [](int dim, int heads) {
    return nlohmann::json{{"image_size", 224}, {"in_channels", 3}, {"patch_size", 16},
                          {"embed_dim", dim}, {"depth", 12}, {"num_heads", heads},
                          {"mlp_dim", 4 * dim}, {"num_classes", 1000},
                          {"preprocess", {{"mean", {0.485, 0.456, 0.406}},
                                          {"std", {0.229, 0.224, 0.225}},
                                          {"interpolation", "bicubic"}, {"crop_pct", 0.875}}}};
  };
  if (name == "vit-fmnist") {
    j = fm;
    j.update({{"patch_size", 4}, {"embed_dim", 128}, {"depth", 6}, {"num_heads", 4}, {"mlp_dim", 256}});
  } else if (name == "vit-fmnist-student") {
    j = fm;
    j.update({{"patch_size", 4}, {"embed_dim", 64}, {"depth", 6}, {"num_heads", 2}, {"mlp_dim", 128}});
  } else if (name == "vit-tiny-test") {
    j = fm;
    j.update({{"patch_size", 7}, {"embed_dim", 32}, {"depth", 2}, {"num_heads", 2}, {"mlp_dim", 64}});
  } else if (name == "deit-tiny") {
    j = imagenet(192, 3);
  } else if (name == "deit-small") {
    j = imagenet(384, 6);
  } else if (name == "vit-base-16") {
    j = imagenet(768, 12);
  } else {
    core::throw_input("unknown preset '{}': expected vit-fmnist, vit-fmnist-student, vit-tiny-test, "
                      "deit-tiny, deit-small or vit-base-16", name);
  }
  j["name"] = name;
  return ModelConfig::from_json(j, "preset " + name);
}

}  // namespace vitopt::runtime
