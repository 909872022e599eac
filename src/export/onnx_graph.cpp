// OnnxGraph: initializers, nodes and value infos on an onnx::GraphProto.
#include "export/onnx_graph.h"

#include <onnx/defs/attr_proto_util.h>

#include <cstring>

namespace vitopt::exporter {

std::string OnnxGraph::fresh(const std::string& hint) {
  auto [it, inserted] = used_.try_emplace(hint, 1);
  if (inserted) return hint;
  for (;;) {
    std::string name = hint + "_" + std::to_string(it->second++);
    if (used_.try_emplace(name, 1).second) return name;
  }
}

onnx::TensorProto& OnnxGraph::tensor(const std::string& name, const std::vector<int64_t>& dims,
                                     int type) {
  used_.try_emplace(name, 1);  // explicit names are unique by construction (one per tensor)
  onnx::TensorProto* t = g_->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  return *t;
}

namespace {

int64_t elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

template <typename T>
void set_raw(onnx::TensorProto& t, const T* data, size_t count) {
  // raw_data is little-endian, which is this (x86-64) machine's byte order.
  t.set_raw_data(std::string(reinterpret_cast<const char*>(data), count * sizeof(T)));
}

}  // namespace

std::string OnnxGraph::f32(const std::string& name, const std::vector<int64_t>& dims,
                           const float* data) {
  set_raw(tensor(name, dims, onnx::TensorProto::FLOAT), data, static_cast<size_t>(elements(dims)));
  return name;
}

std::string OnnxGraph::i8(const std::string& name, const std::vector<int64_t>& dims,
                          const std::vector<int8_t>& values) {
  set_raw(tensor(name, dims, onnx::TensorProto::INT8), values.data(), values.size());
  return name;
}

std::string OnnxGraph::i4(const std::string& name, const std::vector<int64_t>& dims,
                          const std::vector<int8_t>& values) {
  // TensorProto.DataType INT4 = 22 (ONNX 1.16); Debian's ONNX 1.12 headers predate the enum,
  // but data_type is a plain int32 field.
  constexpr int kInt4 = 22;
  std::string packed((values.size() + 1) / 2, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const auto nibble = static_cast<uint8_t>(values[i] & 0xF);
    packed[i / 2] =
        static_cast<char>(static_cast<uint8_t>(packed[i / 2]) | (i % 2 ? nibble << 4 : nibble));
  }
  tensor(name, dims, kInt4).set_raw_data(std::move(packed));
  return name;
}

std::string OnnxGraph::i16(const std::string& name, const std::vector<int64_t>& dims,
                           const std::vector<int16_t>& values) {
  set_raw(tensor(name, dims, onnx::TensorProto::INT16), values.data(), values.size());
  return name;
}

std::string OnnxGraph::i64(const std::string& name, const std::vector<int64_t>& dims,
                           const std::vector<int64_t>& values) {
  set_raw(tensor(name, dims, onnx::TensorProto::INT64), values.data(), values.size());
  return name;
}

std::string OnnxGraph::scalar(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if (auto it = scalars_.find(bits); it != scalars_.end()) return it->second;
  const std::string name = f32(fresh("const_f"), {}, &v);
  scalars_[bits] = name;
  return name;
}

std::string OnnxGraph::ints(const std::vector<int64_t>& v) {
  if (auto it = int_lists_.find(v); it != int_lists_.end()) return it->second;
  const std::string name = i64(fresh("const_i"), {static_cast<int64_t>(v.size())}, v);
  int_lists_[v] = name;
  return name;
}

std::string OnnxGraph::op(const std::string& type, const std::vector<std::string>& inputs,
                          const std::vector<onnx::AttributeProto>& attrs, const std::string& hint) {
  const std::string out = fresh(hint.empty() ? type : hint);
  op_named(type, inputs, out, attrs);
  return out;
}

void OnnxGraph::op_named(const std::string& type, const std::vector<std::string>& inputs,
                         const std::string& output,
                         const std::vector<onnx::AttributeProto>& attrs) {
  used_.try_emplace(output, 1);
  onnx::NodeProto* n = g_->add_node();
  n->set_op_type(type);
  n->set_name(fresh("node_" + output));
  for (const auto& i : inputs) n->add_input(i);
  n->add_output(output);
  for (const auto& a : attrs) *n->add_attribute() = a;
}

std::string OnnxGraph::reduce(const std::string& type, const std::string& x,
                              const std::vector<int64_t>& axes, bool keepdims,
                              const std::string& hint) {
  const auto keep = onnx::MakeAttribute("keepdims", int64_t{keepdims ? 1 : 0});
  if (opset_ >= 18) return op(type, {x, ints(axes)}, {keep}, hint);
  return op(type, {x}, {onnx::MakeAttribute("axes", axes), keep}, hint);
}

void OnnxGraph::value_info(onnx::ValueInfoProto* v, const std::string& name,
                           const std::vector<int64_t>& dims_after_batch) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : dims_after_batch) shape->add_dim()->set_dim_value(d);
}

void OnnxGraph::input_f32(const std::string& name, const std::vector<int64_t>& dims_after_batch) {
  used_.try_emplace(name, 1);
  value_info(g_->add_input(), name, dims_after_batch);
}

void OnnxGraph::output_f32(const std::string& name, const std::vector<int64_t>& dims_after_batch) {
  value_info(g_->add_output(), name, dims_after_batch);
}

}  // namespace vitopt::exporter
