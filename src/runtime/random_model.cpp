// Random model files for tests and benchmarks (see random_model.h). Quantization here follows the
// spec literally (io::choose_qparams ranges, round half to even of w / scale, codes clamped to
// [qmin, qmax]) and stores through io's one writer of quantized weights.
#include "runtime/random_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/file_util.h"
#include "io/code_packing.h"
#include "io/metadata_keys.h"
#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "runtime/kernels/kernels.h"

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
  // A Linear of a shared branch: its own input quantization, bias and fp32 delta; the weights are
  // its owner's (not written again).
  void shared_linear(const std::string& name, int in, int out, bool bias, int delta_rank) {
    input_quant(name);
    if (bias) add(name + ".bias", {out}, normal(static_cast<size_t>(out), 0.0f, 0.05f));
    if (delta_rank == 0) return;
    const size_t r = static_cast<size_t>(delta_rank);
    add(name + ".delta_u", {out, delta_rank},
        normal(static_cast<size_t>(out) * r, 0.0f, o_.weight_std));
    add(name + ".delta_v", {delta_rank, in},
        normal(r * static_cast<size_t>(in), 0.0f, o_.weight_std));
  }
  void finish(const io::ViTConfig& c) {
    w_.set_metadata(io::kFormatKey, io::kFormatValue);
    w_.set_metadata(io::kFormatVersionKey, std::to_string(io::kFormatVersion));
    w_.set_metadata(io::kConfigKey, c.to_json().dump());
    if (!o_.class_names.empty())
      w_.set_metadata(io::kClassNamesKey, nlohmann::json(o_.class_names).dump());
    if (!spec_.weights.empty() || !spec_.inputs.empty())
      w_.set_metadata(io::kQuantKey, spec_.to_json().dump());
  }
  io::SafeTensorsWriter& writer() { return w_; }

 private:
  void input_quant(const std::string& lname) {
    if (o_.input_bits <= 0) return;
    io::InputQuant iq;
    iq.bits = o_.input_bits;
    iq.symmetric = o_.input_symmetric;
    iq.dynamic = o_.input_dynamic;
    if (!iq.dynamic) {
      const io::QParams p =
          io::choose_qparams(-o_.input_range, 0.8f * o_.input_range, iq.bits, iq.symmetric);
      iq.scale = p.scale;
      iq.zero_point = p.zero_point;
    }
    spec_.inputs[lname] = iq;
  }
  void weight(const std::string& lname, const std::string& wname, int in, int out, bool quantizable,
              const std::vector<int64_t>& conv) {
    const auto w = normal(static_cast<size_t>(in) * static_cast<size_t>(out), 0.0f, o_.weight_std);
    // Input quantization keys on the Linear name; the second low-rank factor ("#u") has none.
    const bool first_factor = lname.find('#') == std::string::npos;
    if (quantizable && first_factor) input_quant(lname);
    if (!quantizable || o_.weight_bits == 0) {
      add(wname, conv.empty() ? std::vector<int64_t>{out, in} : conv, w);
      return;
    }
    io::QuantizedWeightData q;
    q.spec = {o_.weight_bits, o_.weight_symmetric, o_.per_channel};
    q.rows = out;
    q.cols = in;
    spec_.weights[wname] = q.spec;
    const io::QRange r = q.spec.range();
    const size_t groups = q.spec.per_channel ? static_cast<size_t>(out) : 1;
    const size_t per = w.size() / groups;
    q.scale.resize(groups);
    q.zero_point.resize(groups);
    for (size_t g = 0; g < groups; ++g) {
      const auto first = w.begin() + static_cast<std::ptrdiff_t>(g * per);
      const auto [mn, mx] = std::minmax_element(first, first + static_cast<std::ptrdiff_t>(per));
      const io::QParams p = io::choose_qparams(*mn, *mx, r, q.spec.symmetric);
      q.scale[g] = p.scale;
      q.zero_point[g] = p.zero_point;
    }
    q.codes.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      const size_t g = i / per;
      q.codes[i] = static_cast<int16_t>(
          kernels::quantize_value(w[i], q.scale[g], q.zero_point[g], r.qmin, r.qmax));
    }
    io::add_quantized_weight(w_, wname, q);
  }

  const RandomModelOptions& o_;
  std::mt19937_64 rng_;
  io::SafeTensorsWriter w_;
  io::QuantSpec spec_;
};

}  // namespace

std::vector<uint8_t> random_model_bytes(const RandomModelOptions& o) {
  const io::ViTConfig& c = o.config;
  Writer w(o);
  const int C = c.embed_dim, NP = c.pos_embed_tokens(), R = c.reg_tokens, P = c.patch_size;
  const bool qe = o.quantize_patch_and_head;
  const size_t uC = static_cast<size_t>(C);
  // The tensors of io::model_tensors(c); the random draws keep their order of the classic layout
  // (cls, dist, pos_embed, ...), so files of that layout stay the same for a seed.
  if (c.class_token) w.add("cls_token", {1, 1, C}, w.normal(uC, 0.0f, 0.5f));
  if (c.distill_token) w.add("dist_token", {1, 1, C}, w.normal(uC, 0.0f, 0.5f));
  if (R > 0) w.add("reg_token", {1, R, C}, w.normal(static_cast<size_t>(R) * uC, 0.0f, 0.5f));
  w.add("pos_embed", {1, NP, C}, w.normal(static_cast<size_t>(NP) * uC, 0.0f, 0.5f));
  w.linear("patch_embed.proj", c.patch_features(), C, true, 0, qe, {C, c.in_channels, P, P});
  for (int b = 0; b < c.depth; ++b) {
    const io::BlockConfig& s = c.blocks[static_cast<size_t>(b)];
    const std::string pre = fmt::format("blocks.{}.", b);
    const int hd = s.num_heads * c.head_dim;
    // A Linear with its own weights, or (shared branch) its bias, input quantization and delta.
    auto lin = [&](bool shared, const std::string& name, int in, int out, bool bias, int rank) {
      if (shared) {
        w.shared_linear(name, in, out, bias, s.delta_rank);
      } else {
        w.linear(name, in, out, bias, rank, true);
      }
    };
    if (!s.skip_attn) {
      const bool sh = s.attn_shared_with >= 0;
      w.norm(pre + "norm1", C);
      lin(sh, pre + "attn.qkv", C, 3 * hd, c.qkv_bias, s.qkv_rank);
      lin(sh, pre + "attn.proj", hd, C, true, s.proj_rank);
    }
    if (!s.skip_mlp) {
      const bool sh = s.mlp_shared_with >= 0;
      w.norm(pre + "norm2", C);
      lin(sh, pre + "mlp.fc1", C, s.mlp_dim, true, s.fc1_rank);
      lin(sh, pre + "mlp.fc2", s.mlp_dim, C, true, s.fc2_rank);
    }
  }
  w.norm(c.final_norm_name(), C);
  w.linear("head", C, c.num_classes, true, 0, qe);
  if (c.distill_token) w.linear("head_dist", C, c.num_classes, true, 0, qe);
  w.finish(c);
  return w.writer().serialize();
}

void write_random_model(const RandomModelOptions& o, const std::filesystem::path& path) {
  const auto bytes = random_model_bytes(o);
  core::write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace vitopt::runtime
