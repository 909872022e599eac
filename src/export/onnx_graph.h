// A thin builder over Debian's ONNX protobuf classes (onnx::GraphProto): unique value names,
// typed initializers (fp32, int8, packed int4, int16, int64) and nodes with attributes,
// plus the few ops whose signature changed between the opsets we write (Reduce* axes moved from
// an attribute to an input in opset 18). It knows nothing about ViTs; onnx_export.cpp does.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vitopt::exporter {

class OnnxGraph {
 public:
  OnnxGraph(onnx::GraphProto* graph, int opset) : g_(graph), opset_(opset) {}
  int opset() const { return opset_; }

  // A name not used yet, derived from `hint` ("x" -> "x", then "x_1", "x_2", ...).
  std::string fresh(const std::string& hint);

  // Initializers under exactly `name` (model tensor names, kept readable); return the name.
  std::string f32(const std::string& name, const std::vector<int64_t>& dims, const float* data);
  std::string i8(const std::string& name, const std::vector<int64_t>& dims,
                 const std::vector<int8_t>& values);
  // Signed 4-bit codes in [-8, 7], two per byte (low nibble first), ONNX type INT4 (opset 21).
  std::string i4(const std::string& name, const std::vector<int64_t>& dims,
                 const std::vector<int8_t>& values);
  std::string i16(const std::string& name, const std::vector<int64_t>& dims,
                  const std::vector<int16_t>& values);
  std::string i64(const std::string& name, const std::vector<int64_t>& dims,
                  const std::vector<int64_t>& values);
  // Small constants with generated names (deduplicated by value).
  std::string scalar(float v);
  std::string ints(const std::vector<int64_t>& v);  // 1-D int64

  // One node: returns its (single) output name, generated from `hint` (or the op type).
  std::string op(const std::string& type, const std::vector<std::string>& inputs,
                 const std::vector<onnx::AttributeProto>& attrs = {}, const std::string& hint = "");
  // A node whose output gets exactly `output` as name (graph outputs).
  void op_named(const std::string& type, const std::vector<std::string>& inputs,
                const std::string& output, const std::vector<onnx::AttributeProto>& attrs = {});

  // ReduceMin/Max/Mean over `axes` with keepdims, in the form the opset wants.
  std::string reduce(const std::string& type, const std::string& x,
                     const std::vector<int64_t>& axes, bool keepdims, const std::string& hint = "");

  // Graph inputs/outputs: float tensors whose first dim is the symbolic "batch".
  void input_f32(const std::string& name, const std::vector<int64_t>& dims_after_batch);
  void output_f32(const std::string& name, const std::vector<int64_t>& dims_after_batch);

 private:
  onnx::TensorProto& tensor(const std::string& name, const std::vector<int64_t>& dims, int type);
  void value_info(onnx::ValueInfoProto* v, const std::string& name,
                  const std::vector<int64_t>& dims_after_batch);

  onnx::GraphProto* g_;
  int opset_;
  std::map<std::string, int> used_;          // name -> next suffix
  std::map<uint32_t, std::string> scalars_;  // float bits -> constant name
  std::map<std::vector<int64_t>, std::string> int_lists_;
};

}  // namespace vitopt::exporter
