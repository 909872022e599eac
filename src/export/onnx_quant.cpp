// QDQ weights and inputs, dynamic per-token quantizers and probability codes (see onnx_quant.h).
#include "export/onnx_quant.h"

#include <onnx/defs/attr_proto_util.h>

#include <cmath>
#include <numbers>

namespace vitopt::exporter {
namespace {

using onnx::MakeAttribute;

// Codes (out, in) -> (in, out), the layout MatMul's second input takes.
template <typename T>
std::vector<T> transposed_codes(const runtime::LinearData& l) {
  std::vector<T> t(l.q.size());
  const auto in = static_cast<size_t>(l.in), out = static_cast<size_t>(l.out);
  for (size_t o = 0; o < out; ++o)
    for (size_t i = 0; i < in; ++i) t[i * out + o] = static_cast<T>(l.q[o * in + i]);
  return t;
}

std::vector<float> transposed(const std::vector<float>& w, int out, int in) {
  std::vector<float> t(w.size());
  const auto uin = static_cast<size_t>(in), uout = static_cast<size_t>(out);
  for (size_t o = 0; o < uout; ++o)
    for (size_t i = 0; i < uin; ++i) t[i * uout + o] = w[o * uin + i];
  return t;
}

// Inputs with codes in the int8 range go through QuantizeLinear/DequantizeLinear as INT8 (the
// zero point as stored: asymmetric codes are [-128, 127] already). Wider codes use the same
// formula in float ops at every opset: ONNX Runtime's INT16 QuantizeLinear (opset 21) does not
// round exactly like x / s (about 10% of 16-bit images moved a logit by more than 1e-3).
bool int8_codes(int qmin, int qmax) { return qmin >= -128 && qmax <= 127; }

// clamp(round(x / s) + zp, qmin, qmax) -> (q - zp) * s in float ops; s and zp may be tensors
// broadcast over x (the dynamic case).
std::string fake_quant_float(OnnxGraph& g, const std::string& x, const std::string& s,
                             const std::string& zp, int qmin, int qmax, const std::string& hint) {
  std::string q = g.op("Round", {g.op("Div", {x, s})}, {}, hint + ".round");
  if (!zp.empty()) q = g.op("Add", {q, zp});
  q = g.op("Clip", {q, g.scalar(static_cast<float>(qmin)), g.scalar(static_cast<float>(qmax))}, {},
           hint + ".codes");
  if (!zp.empty()) q = g.op("Sub", {q, zp});
  return g.op("Mul", {q, s}, {}, hint + ".dq");
}

}  // namespace

std::string weight_for_matmul(OnnxGraph& g, const runtime::LinearData& l) {
  const std::vector<int64_t> dims{l.in, l.out};
  if (!l.wq) {
    const auto t = transposed(l.w, l.out, l.in);
    return g.f32(l.weight_name, dims, t.data());
  }
  const io::WeightQuant& wq = *l.wq;
  const bool int4 = wq.bits <= 4 && g.opset() >= 21;
  const bool int16 = wq.bits > 8;
  if (int16 && g.opset() < 21) {
    const auto t = transposed(l.dequantized(), l.out, l.in);
    return g.f32(l.weight_name, dims, t.data());
  }
  const std::string codes = l.weight_name + ".codes";
  if (int4) {
    g.i4(codes, dims, transposed_codes<int8_t>(l));
  } else if (int16) {
    g.i16(codes, dims, transposed_codes<int16_t>(l));
  } else {
    g.i8(codes, dims, transposed_codes<int8_t>(l));
  }
  std::vector<std::string> inputs{codes};
  const std::vector<int64_t> qdims =
      wq.per_channel ? std::vector<int64_t>{l.out} : std::vector<int64_t>{};
  const size_t n = wq.per_channel ? static_cast<size_t>(l.out) : 1;
  inputs.push_back(g.f32(l.weight_name + ".scale", qdims, l.scale.data()));
  if (!wq.symmetric) {
    const std::string zname = l.weight_name + ".zero_point";
    if (int4) {
      g.i4(zname, qdims,
           std::vector<int8_t>(l.zero.begin(), l.zero.begin() + static_cast<long>(n)));
    } else if (int16) {
      g.i16(zname, qdims,
            std::vector<int16_t>(l.zero.begin(), l.zero.begin() + static_cast<long>(n)));
    } else {
      g.i8(zname, qdims,
           std::vector<int8_t>(l.zero.begin(), l.zero.begin() + static_cast<long>(n)));
    }
    inputs.push_back(zname);
  }
  std::vector<onnx::AttributeProto> attrs;
  if (wq.per_channel) attrs.push_back(MakeAttribute("axis", int64_t{1}));
  return g.op("DequantizeLinear", inputs, attrs, l.weight_name);
}

std::string fake_quant_static(OnnxGraph& g, const std::string& x, float scale, int zero_point,
                              int qmin, int qmax, const std::string& hint, bool qdq) {
  if (!qdq || !int8_codes(qmin, qmax)) {
    const std::string zp = zero_point == 0 ? "" : g.scalar(static_cast<float>(zero_point));
    return fake_quant_float(g, x, g.scalar(scale), zp, qmin, qmax, hint);
  }
  // INT8 saturates to [-128, 127]; a narrower code range (symmetric [-127, 127], fewer bits) is
  // enforced by clipping x first: clip(x) / s rounds exactly to the end codes, since
  // s * (qmin - zp) / s is within far less than half a step of qmin - zp.
  std::string in = x;
  if (qmin > -128 || qmax < 127) {
    in = g.op("Clip",
              {x, g.scalar(scale * static_cast<float>(qmin - zero_point)),
               g.scalar(scale * static_cast<float>(qmax - zero_point))},
              {}, hint + ".clip");
  }
  const std::string s = g.f32(g.fresh(hint + ".scale"), {}, &scale);
  const std::string zp = g.i8(g.fresh(hint + ".zero_point"), {}, {static_cast<int8_t>(zero_point)});
  const std::string q = g.op("QuantizeLinear", {in, s, zp}, {}, hint + ".q");
  return g.op("DequantizeLinear", {q, s, zp}, {}, hint + ".dq");
}

std::string fake_quant_input(OnnxGraph& g, const std::string& x, const io::InputQuant& q,
                             const std::string& hint) {
  const io::QRange r = q.range();
  if (!q.dynamic) return fake_quant_static(g, x, q.scale, q.zero_point, r.qmin, r.qmax, hint);
  // Per row of the last axis, as kernels::dynamic_params (io::choose_qparams): the range widened
  // to hold 0, then s = max(-min, max) / qmax (symmetric) or (max - min) / (qmax - qmin), 1 when
  // not > 0 or not finite; zp = clamp(qmin - round(min / s), qmin, qmax).
  const std::string zero = g.scalar(0.0f);
  const std::string mn = g.op("Min", {g.reduce("ReduceMin", x, {-1}, true, hint + ".min"), zero});
  const std::string mx = g.op("Max", {g.reduce("ReduceMax", x, {-1}, true, hint + ".max"), zero});
  std::string s;
  if (q.symmetric) {
    s = g.op("Div", {g.op("Max", {g.op("Neg", {mn}), mx}), g.scalar(static_cast<float>(r.qmax))});
  } else {
    s = g.op("Div", {g.op("Sub", {mx, mn}), g.scalar(static_cast<float>(r.qmax - r.qmin))});
  }
  const std::string ok =
      g.op("And", {g.op("Greater", {s, zero}), g.op("Not", {g.op("IsInf", {s})})});
  s = g.op("Where", {ok, s, g.scalar(1.0f)}, {}, hint + ".scale");
  std::string zp;
  if (!q.symmetric) {
    const std::string qmin = g.scalar(static_cast<float>(r.qmin));
    const std::string raw = g.op("Sub", {qmin, g.op("Round", {g.op("Div", {mn, s})})});
    zp = g.op("Clip", {raw, qmin, g.scalar(static_cast<float>(r.qmax))}, {}, hint + ".zero_point");
  }
  return fake_quant_float(g, x, s, zp, r.qmin, r.qmax, hint);
}

std::string prob_code(OnnxGraph& g, const std::string& p, int bits, bool log2,
                      const std::string& hint) {
  const float levels = static_cast<float>((1 << bits) - 1);
  if (!log2) {
    const std::string r = g.op("Round", {g.op("Mul", {p, g.scalar(levels)})});
    return g.op("Div", {r, g.scalar(levels)}, {}, hint);
  }
  // -log2 p = -ln p / ln 2; p = 0 gives +inf, which is past every code and maps to 0.
  const std::string neg_log2 = g.op(
      "Div", {g.op("Neg", {g.op("Log", {p})}), g.scalar(static_cast<float>(std::numbers::ln2))});
  const std::string c =
      g.op("Max", {g.op("Round", {neg_log2}), g.scalar(0.0f)}, {}, hint + ".code");
  const std::string value = g.op("Pow", {g.scalar(2.0f), g.op("Neg", {c})});
  const std::string in_range = g.op("LessOrEqual", {c, g.scalar(levels - 1.0f)});
  return g.op("Where", {in_range, value, g.scalar(0.0f)}, {}, hint);
}

}  // namespace vitopt::exporter
