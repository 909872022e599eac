// The ViT as an ONNX graph, op for op what src/runtime/engine.cpp computes:
//   pixel_values (B, C, H, W) -> patches (B, Np, C*P*P) -> Linear -> [cls, (dist), (regs),
//   patches] + pos (no_embed_class: pos added to the patches only)
//   per block: x += proj(attn(LN1(x)));  x += fc2(gelu(fc1(LN2(x))))   (skips, shares honoured)
//   LN(x)[:, 0] -> head   (avg pool: mean of LN'd patch tokens; fc_norm: LN after pooling;
//   dist token: mean of both heads)
// Patches are cut with Reshape/Transpose rather than a Conv so that the patch Linear takes the
// same per-patch input quantization as every other Linear.
// Legend: B batch, N tokens, Np patches, C embed dim, H heads, D head dim, K classes, P patch.
#include "export/onnx_export.h"

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/defs/attr_proto_util.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "export/onnx_graph.h"
#include "export/onnx_quant.h"
#include "io/quant_spec.h"
#include "io/safetensors.h"
#include "io/vit_config.h"

namespace vitopt::exporter {
namespace {

using onnx::MakeAttribute;
using runtime::LinearData;

class VitGraph {
 public:
  VitGraph(const runtime::LoadedModel& m, OnnxGraph& g) : m_(m), c_(m.config), g_(g) {}

  void build() {
    const int S = c_.image_size, P = c_.patch_size, G = c_.grid(), Cin = c_.in_channels;
    g_.input_f32("pixel_values", {Cin, S, S});
    // (B, Cin, G, P, G, P) -> (B, G, G, Cin, P, P) -> (B, Np, Cin*P*P): features ordered like
    // the conv weight (channel, py, px).
    std::string x = g_.op("Reshape", {"pixel_values", g_.ints({0, Cin, G, P, G, P})});
    x = g_.op("Transpose", {x}, {MakeAttribute("perm", std::vector<int64_t>{0, 2, 4, 1, 3, 5})});
    x = g_.op("Reshape", {x, g_.ints({0, c_.num_patches(), c_.patch_features()})}, {}, "patches");
    x = linear({m_.patch}, x);  // (B, Np, C)

    const int64_t C = c_.embed_dim, N = c_.num_tokens();
    const std::string batch =
        g_.op("Shape", {"pixel_values"},
              {MakeAttribute("start", int64_t{0}), MakeAttribute("end", int64_t{1})});
    const std::string expand_to =
        g_.op("Concat", {batch, g_.ints({1, C})}, {MakeAttribute("axis", int64_t{0})});
    // Prefix tokens in the layout's order: class, distillation, registers.
    std::vector<std::string> tokens;
    if (c_.class_token)
      tokens.push_back(
          g_.op("Expand", {param("cls_token", {1, 1, C}, m_.cls_token), expand_to}, {}, "cls"));
    if (c_.distill_token)
      tokens.push_back(
          g_.op("Expand", {param("dist_token", {1, 1, C}, m_.dist_token), expand_to}, {}, "dist"));
    if (c_.reg_tokens > 0) {
      const std::string reg_to = g_.op("Concat", {batch, g_.ints({c_.reg_tokens, C})},
                                       {MakeAttribute("axis", int64_t{0})});
      tokens.push_back(g_.op(
          "Expand", {param("reg_token", {1, c_.reg_tokens, C}, m_.reg_token), reg_to}, {}, "reg"));
    }
    const std::string pos = param("pos_embed", {1, c_.pos_embed_tokens(), C}, m_.pos_embed);
    if (c_.no_embed_class) {  // timm's no_embed_class: positions for the patches only
      tokens.push_back(g_.op("Add", {x, pos}));
      x = g_.op("Concat", tokens, {MakeAttribute("axis", int64_t{1})}, "tokens");  // (B, N, C)
    } else {
      tokens.push_back(x);
      x = g_.op("Concat", tokens, {MakeAttribute("axis", int64_t{1})});
      x = g_.op("Add", {x, pos}, {}, "tokens");  // (B, N, C)
    }

    for (const runtime::BlockData& bd : m_.blocks) {
      // A shared branch's weights are its owner's initializers (by tensor name), once.
      const io::BlockConfig& s = c_.blocks[static_cast<size_t>(bd.index)];
      const std::string pre = fmt::format("blocks.{}.", bd.index);
      if (!s.skip_attn) {
        const std::string h = layernorm(bd.norm1, pre + "norm1", x);
        const std::string a = attention(bd, bd.index, s.num_heads, h);
        x = g_.op("Add", {x, linear(bd.proj, a, bd.proj_delta)}, {}, pre + "attn_out");
      }
      if (!s.skip_mlp) {
        const std::string h = layernorm(bd.norm2, pre + "norm2", x);
        const std::string y = linear(bd.fc2, gelu(linear(bd.fc1, h, bd.fc1_delta)), bd.fc2_delta);
        x = g_.op("Add", {x, y}, {}, pre + "out");
      }
    }

    // The final norm on every token, or (fc_norm) on the pooled features below.
    if (!c_.fc_norm) x = layernorm(m_.norm, "norm", x);
    const int pre = c_.num_prefix_tokens();
    std::string pooled;
    if (c_.pool == "avg") {
      const std::string patches = g_.op("Slice", {x, g_.ints({pre}), g_.ints({N}), g_.ints({1})});
      pooled = g_.reduce("ReduceMean", patches, {1}, false, "pooled");
    } else {
      pooled = g_.op("Gather", {x, index(0)}, {MakeAttribute("axis", int64_t{1})}, "pooled");
    }
    if (c_.fc_norm) pooled = layernorm(m_.norm, "fc_norm", pooled);
    std::string logits = linear({m_.head}, pooled);  // (B, K)
    if (c_.distill_token) {
      std::string pooled2 =
          g_.op("Gather", {x, index(1)}, {MakeAttribute("axis", int64_t{1})}, "pooled_dist");
      if (c_.fc_norm) pooled2 = layernorm(m_.norm, "fc_norm", pooled2);
      const std::string both = g_.op("Add", {logits, linear({m_.head_dist}, pooled2)});
      logits = g_.op("Div", {both, g_.scalar(2.0f)});
    }
    g_.op_named("Identity", {logits}, "logits");
    g_.output_f32("logits", {c_.num_classes});
  }

 private:
  // An fp32 model parameter as an initializer, once (shared blocks reuse their owner's).
  std::string param(const std::string& name, const std::vector<int64_t>& dims,
                    const std::vector<float>& values) {
    if (auto it = params_.find(name); it != params_.end()) return it->second;
    return params_[name] = g_.f32(name, dims, values.data());
  }

  std::string index(int64_t i) {
    const std::string name = fmt::format("index_{}", i);
    if (auto it = params_.find(name); it != params_.end()) return it->second;
    return params_[name] = g_.i64(name, {}, {i});
  }

  std::string layernorm(const runtime::Norm& n, const std::string& name, const std::string& x) {
    const int64_t C = c_.embed_dim;
    return g_.op("LayerNormalization",
                 {x, param(name + ".weight", {C}, n.gamma), param(name + ".bias", {C}, n.beta)},
                 {MakeAttribute("axis", int64_t{-1}),
                  MakeAttribute("epsilon", static_cast<float>(c_.ln_eps))},
                 name);
  }

  // One Linear (1 dense or 2 low-rank factors) on x (..., in) -> (..., out), plus a shared
  // Linear's delta (two fp32 factors) on the unquantized input, as the runtime computes it.
  std::string linear(const std::vector<LinearData>& factors, std::string x,
                     const std::vector<LinearData>& delta = {}) {
    std::string d = x;
    for (const LinearData& l : delta) {
      std::string& w = params_[l.weight_name];
      if (w.empty()) w = weight_for_matmul(g_, l);
      d = g_.op("MatMul", {d, w}, {}, l.name);
    }
    for (const LinearData& l : factors) {
      if (l.iq) x = fake_quant_input(g_, x, *l.iq, l.name + ".input");
      std::string& w = params_[l.weight_name];
      if (w.empty()) w = weight_for_matmul(g_, l);
      x = g_.op("MatMul", {x, w}, {}, l.name);
      if (!l.bias.empty())
        x = g_.op("Add", {x, param(l.name + ".bias", {l.out}, l.bias)}, {}, l.name + ".out");
    }
    return delta.empty() ? x : g_.op("Add", {x, d});
  }

  // Exact (erf) GELU by its definition at every opset (ONNX Runtime fuses it into one kernel;
  // the Gelu op of opset 20 is unknown to Debian's ONNX 1.12 checker).
  std::string gelu(const std::string& x) {
    const std::string e = g_.op("Erf", {g_.op("Mul", {x, g_.scalar(0.70710678118654752440f)})});
    return g_.op("Mul", {g_.op("Mul", {x, g_.scalar(0.5f)}), g_.op("Add", {e, g_.scalar(1.0f)})},
                 {}, "gelu");
  }

  // Multi-head attention of block `b` on h (B, N, C) -> context (B, N, H*D).
  std::string attention(const runtime::BlockData& w, int b, int heads, const std::string& h) {
    const int64_t N = c_.num_tokens(), D = c_.head_dim, H = heads;
    const std::string pre = fmt::format("blocks.{}.attn.", b);
    std::string qkv = linear(w.qkv, h, w.qkv_delta);  // (B, N, 3*H*D)
    qkv = g_.op("Reshape", {qkv, g_.ints({0, N, 3, H, D})});
    qkv = g_.op("Transpose", {qkv}, {MakeAttribute("perm", std::vector<int64_t>{2, 0, 3, 1, 4})});
    auto part = [&](int i, const char* name) {  // (B, H, N, D)
      return g_.op("Gather", {qkv, index(i)}, {MakeAttribute("axis", int64_t{0})}, pre + name);
    };
    std::string q = part(0, "q"), k = part(1, "k"), v = part(2, "v");
    // float(D^-1/2) computed in double, as the runtime and the LibTorch simulation scale q.
    q = g_.op("Mul", {q, g_.scalar(static_cast<float>(std::pow(static_cast<double>(D), -0.5)))});
    const io::AttentionQuant::Block* aq = nullptr;
    if (m_.quant && m_.quant->attention) {
      const auto& blocks = m_.quant->attention->blocks;
      if (auto it = blocks.find(b); it != blocks.end()) aq = &it->second;
    }
    auto fq = [&](const std::string& x, const io::InputQuant& iq, const char* name) {
      const io::QRange r = iq.range();
      return fake_quant_static(g_, x, iq.scale, iq.zero_point, r.qmin, r.qmax, pre + name,
                               /*qdq=*/false);
    };
    if (aq) {
      q = fq(q, aq->q, "q_quant");
      k = fq(k, aq->k, "k_quant");
      v = fq(v, aq->v, "v_quant");
    }
    const std::string kt =
        g_.op("Transpose", {k}, {MakeAttribute("perm", std::vector<int64_t>{0, 1, 3, 2})});
    std::string p = g_.op("Softmax", {g_.op("MatMul", {q, kt}, {}, pre + "scores")},
                          {MakeAttribute("axis", int64_t{-1})}, pre + "probs");
    if (aq)
      p = prob_code(g_, p, m_.quant->attention->prob_bits, m_.quant->attention->prob_log2(),
                    pre + "probs_coded");
    std::string ctx = g_.op("MatMul", {p, v});  // (B, H, N, D)
    ctx = g_.op("Transpose", {ctx}, {MakeAttribute("perm", std::vector<int64_t>{0, 2, 1, 3})});
    return g_.op("Reshape", {ctx, g_.ints({0, N, H * D})}, {}, pre + "context");
  }

  const runtime::LoadedModel& m_;
  const io::ViTConfig& c_;
  OnnxGraph& g_;
  std::map<std::string, std::string> params_;
};

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  auto* p = model.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

std::vector<std::string> quant_notes(const runtime::LoadedModel& m, int opset) {
  std::vector<std::string> notes;
  if (!m.quant) return notes;
  std::set<int> bits;
  bool dynamic = false, wide_inputs = false;
  for (const auto& [name, wq] : m.quant->weights) bits.insert(wq.bits);
  for (const auto& [name, iq] : m.quant->inputs) {
    dynamic = dynamic || iq.dynamic;
    wide_inputs = wide_inputs || iq.bits > 8;
  }
  for (int b : bits) {
    if (b <= 4 && opset >= 21)
      notes.push_back(fmt::format("{}-bit weights: packed INT4 + DequantizeLinear", b));
    else if (b <= 8)
      notes.push_back(fmt::format("{}-bit weights: INT8 + DequantizeLinear", b));
    else if (opset >= 21)
      notes.push_back(fmt::format("{}-bit weights: INT16 + DequantizeLinear", b));
    else
      notes.push_back(
          fmt::format("{}-bit weights: fp32 initializers holding the dequantized values (INT16 "
                      "DequantizeLinear needs opset 21)",
                      b));
  }
  if (dynamic)
    notes.push_back(
        "dynamic per-token inputs: the runtime's per-row scale/zero-point formula in float ops "
        "(DynamicQuantizeLinear is per tensor)");
  if (wide_inputs)
    notes.push_back(
        "inputs of more than 8 bits: quantize-dequantize in float ops (exact rounding)");
  if (m.quant->attention)
    notes.push_back(
        "quantized attention: q/k/v quantizers and probability codes in float ops (exact)");
  if (!bits.empty())
    notes.push_back(
        "ONNX Runtime: set session option session.qdq_matmulnbits_accuracy_level=0 for exact "
        "results; its default (4) turns DequantizeLinear->MatMul into MatMulNBits that "
        "re-quantizes dynamic/fp32 inputs itself");
  return notes;
}

// Debian's ONNX 1.12 checker knows IR version 8, opsets <= 17 and no INT4 type. An opset-21
// model is checked as its opset-17 reading, node for node: Reduce* axes moved back from an input
// (opset 18) to the attribute, INT4 codes widened to INT8 (same values), IR 8. Every node's inputs,
// attributes and initializers are still validated against the schemas the checker has; ONNX
// Runtime's loader validates the opset-21 schemas themselves (tests/export/onnx).
onnx::ModelProto opset17_reading(const onnx::ModelProto& model) {
  onnx::ModelProto view = model;
  view.set_ir_version(onnx::IR_VERSION);
  view.mutable_opset_import(0)->set_version(17);
  onnx::GraphProto* g = view.mutable_graph();
  std::map<std::string, const onnx::TensorProto*> inits;
  for (auto& t : *g->mutable_initializer()) {
    inits[t.name()] = &t;
    if (t.data_type() != 22) continue;  // INT4
    const std::string& packed = t.raw_data();
    int64_t n = 1;
    for (int64_t d : t.dims()) n *= d;
    std::string wide(static_cast<size_t>(n), '\0');
    for (int64_t i = 0; i < n; ++i) {
      const auto byte = static_cast<uint8_t>(packed[static_cast<size_t>(i / 2)]);
      const int nibble = i % 2 ? byte >> 4 : byte & 0xF;
      wide[static_cast<size_t>(i)] = static_cast<char>(nibble >= 8 ? nibble - 16 : nibble);
    }
    t.set_data_type(onnx::TensorProto::INT8);
    t.set_raw_data(wide);
  }
  for (auto& n : *g->mutable_node()) {
    if (n.op_type().rfind("Reduce", 0) != 0 || n.input_size() != 2) continue;
    const onnx::TensorProto* axes = inits.at(n.input(1));
    std::vector<int64_t> values(static_cast<size_t>(axes->raw_data().size() / sizeof(int64_t)));
    std::memcpy(values.data(), axes->raw_data().data(), values.size() * sizeof(int64_t));
    n.mutable_input()->RemoveLast();
    *n.add_attribute() = MakeAttribute("axes", values);
  }
  return view;
}

void check(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model.ir_version() <= onnx::IR_VERSION ? model
                                                                      : opset17_reading(model));
  } catch (const onnx::checker::ValidationError& e) {
    core::throw_internal("onnx export: the ONNX checker rejected the graph: {}", e.what());
  }
}

}  // namespace

std::string export_onnx_bytes(const runtime::LoadedModel& model, const OnnxExportOptions& options,
                              OnnxExportSummary* summary) {
  if (options.opset != 17 && options.opset != 21)
    core::throw_input("onnx export: --opset: expected 17 or 21, got {}", options.opset);
  // The graph is static: data-dependent token matching has no faithful fixed-shape form here, and
  // a graph without it would silently compute a different model.
  if (model.config.merges_tokens())
    core::throw_input(
        "onnx export: '{}' merges tokens (blocks[].merge_r): export it unmerged "
        "(`vitopt merge --r 0`) or run it on the vitopt runtime",
        model.config.name);
  onnx::ModelProto proto;
  proto.set_ir_version(options.opset >= 21 ? 10 : 8);
  proto.set_producer_name("vitopt");
  proto.set_producer_version("0.1.0");
  proto.set_model_version(1);
  proto.set_doc_string(fmt::format(
      "vitopt ViT '{}' ({}): input pixel_values (batch, {}, {}, {}) "
      "normalized as in metadata '{}', output logits (batch, {})",
      model.config.name, model.precision, model.config.in_channels, model.config.image_size,
      model.config.image_size, kOnnxPreprocessKey, model.config.num_classes));
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(model.config.name);
  OnnxGraph g(graph, options.opset);
  VitGraph(model, g).build();

  const io::ViTConfig& c = model.config;
  const io::Preprocess& pp = c.preprocess;
  nlohmann::json pre = {{"input", "pixel_values"},
                        {"layout", "NCHW"},
                        {"image_size", c.image_size},
                        {"channels", c.in_channels},
                        {"pixel_range", "[0, 1] before (x - mean) / std"},
                        {"mean", pp.mean},
                        {"std", pp.std},
                        {"interpolation", pp.interpolation},
                        {"crop_pct", pp.crop_pct}};
  add_metadata(proto, kOnnxPreprocessKey, pre.dump());
  add_metadata(proto, kOnnxClassNamesKey, nlohmann::json(model.class_names).dump());
  add_metadata(proto, kOnnxConfigKey, c.to_json().dump());
  add_metadata(proto, "vitopt.precision", model.precision);
  check(proto);

  std::string bytes;
  if (!proto.SerializeToString(&bytes))
    core::throw_internal("onnx export: protobuf serialization failed (model over 2 GB?)");
  if (summary) {
    summary->opset = options.opset;
    summary->ir_version = proto.ir_version();
    summary->precision = model.precision;
    summary->nodes = graph->node_size();
    summary->initializers = graph->initializer_size();
    summary->bytes = bytes.size();
    summary->notes = quant_notes(model, options.opset);
  }
  return bytes;
}

OnnxExportSummary export_onnx(const std::filesystem::path& model_file,
                              const OnnxExportOptions& options, const std::filesystem::path& out) {
  const auto file = io::SafeTensorsFile::load(model_file);
  const runtime::LoadedModel model = runtime::load_model_data(file);
  OnnxExportSummary summary;
  const std::string bytes = export_onnx_bytes(model, options, &summary);
  core::write_file_atomic(out, bytes);
  return summary;
}

}  // namespace vitopt::exporter
