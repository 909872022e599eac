// load_model_data: the model file -> LoadedModel with every check docs/model-format.md implies.
// Tensors are claimed as they are read; anything left unclaimed is an error (a pruned-away tensor
// left in the file, a typo, a quantization sibling without its weight).
#include "runtime/model_loader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/json_util.h"

namespace vitopt::runtime {
namespace {

using io::DType;

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

class Reader {
 public:
  Reader(const io::SafeTensorsFile& file, const std::optional<QuantSpec>& quant)
      : file_(file), quant_(quant) {}

  const io::TensorInfo& expect(const std::string& name, const std::vector<int64_t>& shape) {
    if (!file_.has(name))
      core::throw_input("{}: tensor '{}' not found (expected shape {} from the config)",
                        file_.source(), name, shape_str(shape));
    const io::TensorInfo& info = file_.info(name);
    if (info.shape != shape)
      core::throw_input("{}: tensor '{}': expected shape {}, got {}", file_.source(), name,
                        shape_str(shape), shape_str(info.shape));
    claimed_.insert(name);
    return info;
  }

  std::vector<float> floats(const std::string& name, const std::vector<int64_t>& shape) {
    const io::TensorInfo& info = expect(name, shape);
    if (!io::dtype_is_float(info.dtype))
      core::throw_input("{}: tensor '{}': expected a float dtype (F32/F16/BF16/F64), got {}",
                        file_.source(), name, io::dtype_name(info.dtype));
    auto v = file_.read_f32(name, &shape);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i]))
        core::throw_input("{}: tensor '{}': element {} is {} (weights must be finite)",
                          file_.source(), name, i, v[i]);
    }
    params_ += static_cast<int64_t>(v.size());
    return v;
  }

  // One Linear factor. `conv_shape` is the fp32 shape when it differs from (out, in) (patch conv).
  LinearData linear(const std::string& lname, const std::string& wname, int in, int out,
                    bool bias, const std::vector<int64_t>& conv_shape = {}) {
    LinearData l;
    l.name = lname;
    l.weight_name = wname;
    l.in = in;
    l.out = out;
    const bool quantized = quant_ && quant_->weights.count(wname) != 0;
    if (!quantized) {
      const auto shape = conv_shape.empty() ? std::vector<int64_t>{out, in} : conv_shape;
      l.w = floats(wname, shape);
    } else {
      read_quantized(l, quant_->weights.at(wname));
      ++quantized_count_;
      bits_seen_.insert(l.wq->bits);
    }
    if (bias) l.bias = floats(lname + ".bias", {out});
    return l;
  }

  void check_all_claimed() const {
    for (const std::string& name : file_.names()) {
      if (claimed_.count(name) == 0)
        core::throw_input("{}: unexpected tensor '{}' (not part of the model its config describes)",
                          file_.source(), name);
    }
  }
  int64_t params() const { return params_; }
  int quantized_count() const { return quantized_count_; }
  const std::set<int>& bits_seen() const { return bits_seen_; }

 private:
  void read_quantized(LinearData& l, const WeightQuant& wq) {
    const std::string& name = l.weight_name;
    const int64_t out = l.out, in = l.in;
    l.wq = wq;
    const int qmin = wq.qmin(), qmax = wq.qmax();
    const DType want = wq.bits <= 4 ? DType::U8 : wq.bits <= 8 ? DType::I8 : DType::I16;
    const std::vector<int64_t> shape = wq.bits <= 4 ? std::vector<int64_t>{out, (in + 1) / 2}
                                                    : std::vector<int64_t>{out, in};
    const io::TensorInfo& info = expect(name, shape);
    if (info.dtype != want)
      core::throw_input("{}: tensor '{}': {}-bit weights must be stored as {}, got {}",
                        file_.source(), name, wq.bits, io::dtype_name(want), io::dtype_name(info.dtype));
    const uint8_t* raw = file_.data(name);
    l.q.resize(static_cast<size_t>(out * in));
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t i = 0; i < in; ++i) {
        int v = 0;
        if (want == DType::U8) {
          const uint8_t byte = raw[o * ((in + 1) / 2) + i / 2];
          v = ((i % 2 == 0) ? (byte & 0xF) : (byte >> 4)) + qmin;
        } else if (want == DType::I8) {
          v = static_cast<int8_t>(raw[o * in + i]);
        } else {
          int16_t s;
          std::memcpy(&s, raw + 2 * (o * in + i), 2);
          v = s;
        }
        if (v < qmin || v > qmax)
          core::throw_input("{}: tensor '{}': element [{}, {}] = {} outside the {}-bit {} range [{}, {}]",
                            file_.source(), name, o, i, v, wq.bits,
                            wq.symmetric ? "symmetric" : "asymmetric", qmin, qmax);
        l.q[static_cast<size_t>(o * in + i)] = static_cast<int16_t>(v);
      }
      if (want == DType::U8 && in % 2 == 1 && (raw[o * ((in + 1) / 2) + in / 2] >> 4) != 0)
        core::throw_input("{}: tensor '{}': row {}: the pad nibble must be 0", file_.source(), name, o);
    }
    params_ += out * in;
    const int64_t ns = wq.per_channel ? out : 1;
    const auto& sinfo = expect(name + ".scale", {ns});
    if (sinfo.dtype != DType::F32)
      core::throw_input("{}: tensor '{}.scale': expected F32, got {}", file_.source(), name,
                        io::dtype_name(sinfo.dtype));
    const auto scales = file_.read_f32(name + ".scale");
    for (float s : scales) {
      if (!(s > 0) || !std::isfinite(s))
        core::throw_input("{}: tensor '{}.scale': expected positive finite scales, got {}",
                          file_.source(), name, s);
    }
    l.scale.resize(static_cast<size_t>(out));
    l.zero.assign(static_cast<size_t>(out), 0);
    for (int64_t o = 0; o < out; ++o) l.scale[static_cast<size_t>(o)] = scales[static_cast<size_t>(wq.per_channel ? o : 0)];
    const std::string zname = name + ".zero_point";
    if (wq.symmetric) {
      if (file_.has(zname))
        core::throw_input("{}: tensor '{}': symmetric weights have no zero point", file_.source(), zname);
    } else {
      const auto& zinfo = expect(zname, {ns});
      if (zinfo.dtype != DType::I32)
        core::throw_input("{}: tensor '{}': expected I32, got {}", file_.source(), zname,
                          io::dtype_name(zinfo.dtype));
      const uint8_t* zraw = file_.data(zname);
      for (int64_t o = 0; o < out; ++o) {
        int32_t z;
        std::memcpy(&z, zraw + 4 * (wq.per_channel ? o : 0), 4);
        if (z < qmin || z > qmax)
          core::throw_input("{}: tensor '{}': zero point {} outside [{}, {}]", file_.source(), zname,
                            z, qmin, qmax);
        l.zero[static_cast<size_t>(o)] = z;
      }
    }
  }

  const io::SafeTensorsFile& file_;
  const std::optional<QuantSpec>& quant_;
  std::set<std::string> claimed_;
  int64_t params_ = 0;
  int quantized_count_ = 0;
  std::set<int> bits_seen_;
};

}  // namespace

std::vector<float> LinearData::dequantized() const {
  if (!wq) return w;
  std::vector<float> out_w(q.size());
  for (int o = 0; o < out; ++o) {
    for (int i = 0; i < in; ++i) {
      const size_t k = static_cast<size_t>(o) * static_cast<size_t>(in) + static_cast<size_t>(i);
      out_w[k] = scale[static_cast<size_t>(o)] * static_cast<float>(q[k] - zero[static_cast<size_t>(o)]);
    }
  }
  return out_w;
}

LoadedModel load_model_data(const io::SafeTensorsFile& file) {
  const std::string& src = file.source();
  LoadedModel m;
  if (const std::string* v = file.metadata_value("vitopt.format_version"); v != nullptr && *v != "1")
    core::throw_input("{}: metadata 'vitopt.format_version': expected 1, got '{}'", src, *v);
  const std::string* cfg = file.metadata_value("vitopt.config");
  if (cfg == nullptr)
    core::throw_input("{}: metadata 'vitopt.config' missing: the runtime needs a vitopt model file "
                      "(a timm checkpoint must first be loaded and saved by vitopt)", src);
  m.config = ModelConfig::from_json(core::json_parse(*cfg, src + " metadata 'vitopt.config'"),
                                    src + " metadata 'vitopt.config'");
  if (const std::string* names = file.metadata_value("vitopt.class_names")) {
    const auto j = core::json_parse(*names, src + " metadata 'vitopt.class_names'");
    if (!j.is_array()) core::throw_input("{}: metadata 'vitopt.class_names': expected a JSON array", src);
    for (const auto& e : j) {
      if (!e.is_string())
        core::throw_input("{}: metadata 'vitopt.class_names': expected strings, got {}", src, e.dump());
      m.class_names.push_back(e.get<std::string>());
    }
  }
  if (const std::string* q = file.metadata_value(kQuantKey))
    m.quant = QuantSpec::from_json(core::json_parse(*q, src + " metadata 'vitopt.quant'"), src);

  const ModelConfig& c = m.config;
  const int C = c.embed_dim, N = c.num_tokens();
  Reader r(file, m.quant);
  std::set<std::string> linear_names;
  auto linear = [&](const std::string& name, int in, int out, bool bias, int rank) {
    linear_names.insert(name);
    std::vector<LinearData> f;
    if (rank > 0) {
      f.push_back(r.linear(name, name + ".weight_v", in, rank, false));
      f.push_back(r.linear(name, name + ".weight_u", rank, out, bias));
    } else {
      f.push_back(r.linear(name, name + ".weight", in, out, bias));
    }
    return f;
  };
  m.cls_token = r.floats("cls_token", {1, 1, C});
  if (c.distill_token) m.dist_token = r.floats("dist_token", {1, 1, C});
  m.pos_embed = r.floats("pos_embed", {1, N, C});
  const int P = c.patch_size;
  linear_names.insert("patch_embed.proj");
  m.patch = r.linear("patch_embed.proj", "patch_embed.proj.weight", c.patch_features(), C, true,
                     {C, c.in_channels, P, P});
  for (int b = 0; b < c.depth; ++b) {
    const BlockShape& s = c.blocks[static_cast<size_t>(b)];
    BlockData bd;
    bd.index = b;
    bd.owner = s.shared_with;
    if (s.shared_with < 0) {
      const std::string pre = fmt::format("blocks.{}.", b);
      const int hd = s.num_heads * c.head_dim;
      if (!s.skip_attn) {
        bd.norm1 = {r.floats(pre + "norm1.weight", {C}), r.floats(pre + "norm1.bias", {C})};
        bd.qkv = linear(pre + "attn.qkv", C, 3 * hd, c.qkv_bias, s.qkv_rank);
        bd.proj = linear(pre + "attn.proj", hd, C, true, s.proj_rank);
      }
      if (!s.skip_mlp) {
        bd.norm2 = {r.floats(pre + "norm2.weight", {C}), r.floats(pre + "norm2.bias", {C})};
        bd.fc1 = linear(pre + "mlp.fc1", C, s.mlp_dim, true, s.fc1_rank);
        bd.fc2 = linear(pre + "mlp.fc2", s.mlp_dim, C, true, s.fc2_rank);
      }
    }
    m.blocks.push_back(std::move(bd));
  }
  m.norm = {r.floats("norm.weight", {C}), r.floats("norm.bias", {C})};
  linear_names.insert("head");
  m.head = r.linear("head", "head.weight", C, c.num_classes, true);
  if (c.distill_token) {
    linear_names.insert("head_dist");
    m.head_dist = r.linear("head_dist", "head_dist.weight", C, c.num_classes, true);
  }
  r.check_all_claimed();

  if (m.quant) {
    for (const auto& [wname, q] : m.quant->weights) {
      if (!file.has(wname))
        core::throw_input("{}: metadata 'vitopt.quant' weights['{}']: no such weight in this model",
                          src, wname);
    }
    // Attach input quantization to the first factor of each Linear.
    for (const auto& [lname, iq] : m.quant->inputs) {
      if (linear_names.count(lname) == 0)
        core::throw_input("{}: metadata 'vitopt.quant' inputs['{}']: no Linear of that name in this "
                          "model (expected e.g. 'blocks.0.attn.qkv')", src, lname);
    }
    if (m.quant->attention) {
      for (const auto& [index, b] : m.quant->attention->blocks) {
        const bool ok = index < static_cast<int>(m.blocks.size()) &&
                        m.blocks[static_cast<size_t>(index)].owner < 0 &&
                        !m.config.blocks[static_cast<size_t>(index)].skip_attn;
        if (!ok)
          core::throw_input("{}: metadata 'vitopt.quant' extras.attention.blocks['{}']: expected "
                            "the index of a block with its own attention (depth {})",
                            src, index, m.blocks.size());
      }
    }
    auto attach = [&](std::vector<LinearData>& f) {
      if (f.empty()) return;
      if (auto it = m.quant->inputs.find(f.front().name); it != m.quant->inputs.end())
        f.front().iq = it->second;
    };
    for (auto& bd : m.blocks) {
      attach(bd.qkv);
      attach(bd.proj);
      attach(bd.fc1);
      attach(bd.fc2);
    }
    for (LinearData* l : {&m.patch, &m.head, &m.head_dist}) {
      if (auto it = m.quant->inputs.find(l->name); it != m.quant->inputs.end() && l->out > 0) l->iq = it->second;
    }
  }
  m.params = r.params();
  if (r.quantized_count() == 0) {
    m.precision = "fp32";
  } else {
    const auto& bits = r.bits_seen();
    if (bits.size() == 1 && *bits.begin() == 8) m.precision = "int8";
    else if (bits.size() == 1 && *bits.begin() == 4) m.precision = "int4";
    else m.precision = "mixed";
  }
  return m;
}

}  // namespace vitopt::runtime
