// load_model_data: the model file -> LoadedModel with every check docs/model-format.md implies. The
// header (config, quant spec and its names, class names) comes from io::read_model_header; here
// tensors are claimed as they are read, and anything left unclaimed is an error (a pruned-away
// tensor left in the file, a typo, a quantization sibling without its weight).
#include "runtime/model_loader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "io/checkpoint_convert.h"
#include "io/code_packing.h"
#include "io/model_counts.h"

namespace vitopt::runtime {
namespace {

using io::DType;

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

class Reader {
 public:
  Reader(const io::SafeTensorsFile& file, const std::optional<io::QuantSpec>& quant)
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

 private:
  // Codes, scales and zero points through io (every check there), expanded to one scale and zero
  // point per output row.
  void read_quantized(LinearData& l, const io::WeightQuant& wq) {
    claimed_.insert(l.weight_name);
    claimed_.insert(l.weight_name + ".scale");
    if (!wq.symmetric) claimed_.insert(l.weight_name + ".zero_point");
    io::QuantizedWeightData w = io::read_quantized_weight(file_, l.weight_name, wq, l.out, l.in);
    l.wq = wq;
    l.q = std::move(w.codes);
    l.scale.resize(static_cast<size_t>(l.out));
    l.zero.resize(static_cast<size_t>(l.out));
    for (int64_t o = 0; o < l.out; ++o) {
      l.scale[static_cast<size_t>(o)] = w.scale_of(o);
      l.zero[static_cast<size_t>(o)] = w.zero_of(o);
    }
  }

  const io::SafeTensorsFile& file_;
  const std::optional<io::QuantSpec>& quant_;
  std::set<std::string> claimed_;
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

LoadedModel load_model_data(const io::SafeTensorsFile& file, const io::ImportHints& hints) {
  // A timm / HF checkpoint is read as the vitopt file its one conversion makes (names, layer
  // scale folded), exactly as the LibTorch loader and `vitopt import` read it.
  if (io::is_foreign_checkpoint(file))
    return load_model_data(io::convert_checkpoint(file, hints), hints);
  io::ModelHeader header = io::read_model_header(file, hints);
  LoadedModel m;
  m.config = std::move(header.config);
  m.class_names = std::move(header.class_names);
  m.quant = std::move(header.quant);
  m.precision = header.precision;

  const io::ViTConfig& c = m.config;
  const int C = c.embed_dim;
  Reader r(file, m.quant);
  // `weights`: the Linear whose weight tensors it multiplies by (itself, or a shared owner's).
  auto linear = [&](const std::string& name, int in, int out, bool bias, int rank,
                    const std::string& weights) {
    std::vector<LinearData> f;
    if (rank > 0) {
      f.push_back(r.linear(name, weights + ".weight_v", in, rank, false));
      f.push_back(r.linear(name, weights + ".weight_u", rank, out, bias));
    } else {
      f.push_back(r.linear(name, weights + ".weight", in, out, bias));
    }
    return f;
  };
  auto delta = [&](const std::string& name, int in, int out, int rank) {
    std::vector<LinearData> f;
    if (rank == 0) return f;
    f.push_back(r.linear(name + ".delta", name + ".delta_v", in, rank, false));
    f.push_back(r.linear(name + ".delta", name + ".delta_u", rank, out, false));
    return f;
  };
  // Only the tensors this layout has: a stray one (a cls_token in a class-token-free file) is
  // left unclaimed and refused below.
  if (c.class_token) m.cls_token = r.floats("cls_token", {1, 1, C});
  if (c.distill_token) m.dist_token = r.floats("dist_token", {1, 1, C});
  if (c.reg_tokens > 0) m.reg_token = r.floats("reg_token", {1, c.reg_tokens, C});
  m.pos_embed = r.floats("pos_embed", {1, c.pos_embed_tokens(), C});
  const int P = c.patch_size;
  m.patch = r.linear("patch_embed.proj", "patch_embed.proj.weight", c.patch_features(), C, true,
                     {C, c.in_channels, P, P});
  for (int b = 0; b < c.depth; ++b) {
    const io::BlockConfig& s = c.blocks[static_cast<size_t>(b)];
    BlockData bd;
    bd.index = b;
    const std::string pre = fmt::format("blocks.{}.", b);
    const int hd = s.num_heads * c.head_dim;
    // A shared branch reads its owner's weight tensors and its own biases and delta.
    auto owner_pre = [&](int owner) { return owner >= 0 ? fmt::format("blocks.{}.", owner) : pre; };
    if (!s.skip_attn) {
      const std::string w = owner_pre(s.attn_shared_with);
      const int dr = s.attn_shared_with >= 0 ? s.delta_rank : 0;
      bd.norm1 = {r.floats(pre + "norm1.weight", {C}), r.floats(pre + "norm1.bias", {C})};
      bd.qkv = linear(pre + "attn.qkv", C, 3 * hd, c.qkv_bias, s.qkv_rank, w + "attn.qkv");
      bd.proj = linear(pre + "attn.proj", hd, C, true, s.proj_rank, w + "attn.proj");
      bd.qkv_delta = delta(pre + "attn.qkv", C, 3 * hd, dr);
      bd.proj_delta = delta(pre + "attn.proj", hd, C, dr);
    }
    if (!s.skip_mlp) {
      const std::string w = owner_pre(s.mlp_shared_with);
      const int dr = s.mlp_shared_with >= 0 ? s.delta_rank : 0;
      bd.norm2 = {r.floats(pre + "norm2.weight", {C}), r.floats(pre + "norm2.bias", {C})};
      bd.fc1 = linear(pre + "mlp.fc1", C, s.mlp_dim, true, s.fc1_rank, w + "mlp.fc1");
      bd.fc2 = linear(pre + "mlp.fc2", s.mlp_dim, C, true, s.fc2_rank, w + "mlp.fc2");
      bd.fc1_delta = delta(pre + "mlp.fc1", C, s.mlp_dim, dr);
      bd.fc2_delta = delta(pre + "mlp.fc2", s.mlp_dim, C, dr);
    }
    m.blocks.push_back(std::move(bd));
  }
  const std::string final_norm = c.final_norm_name();
  m.norm = {r.floats(final_norm + ".weight", {C}), r.floats(final_norm + ".bias", {C})};
  m.head = r.linear("head", "head.weight", C, c.num_classes, true);
  if (c.distill_token) {
    m.head_dist = r.linear("head_dist", "head_dist.weight", C, c.num_classes, true);
  }
  r.check_all_claimed();

  if (m.quant) {  // names were checked by the header reader: attach input quantization
    auto attach = [&](std::vector<LinearData>& f) {
      if (f.empty()) return;
      if (auto it = m.quant->inputs.find(f.front().name); it != m.quant->inputs.end())
        f.front().iq = it->second;
      // Low-rank: "<linear>.weight_u" quantizes the (tokens, r) input of the second factor.
      if (f.size() == 2)
        if (auto it = m.quant->inputs.find(f.front().name + ".weight_u"); it != m.quant->inputs.end())
          f.back().iq = it->second;
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
  m.params = io::count_params(c);  // (the reader reads a shared weight once per user)
  return m;
}

}  // namespace vitopt::runtime
