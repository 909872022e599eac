// The model-file writers (see model_writer.h).
#include "export/model_writer.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/code_packing.h"
#include "io/metadata_keys.h"

namespace vitopt::exporter {
namespace {

// Weights of every Linear with a pruning mask, by parameter name: saved as weight * mask.
std::map<std::string, torch::Tensor> masks_by_param(model::ViT& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_modules()) {
    if (const auto* lin = item.value()->as<model::LinearImpl>();
        lin && lin->mask.defined() && lin->rank == 0) {
      out[item.key() + ".weight"] = lin->mask;
    }
  }
  return out;
}

// The metadata every vitopt file carries (after `extra`, so the format's own keys win).
void set_format_metadata(io::SafeTensorsWriter& writer, const model::ViT& model,
                         const std::map<std::string, std::string>& extra) {
  for (const auto& [key, value] : extra) writer.set_metadata(key, value);
  writer.set_metadata(io::kConfigKey, model->config().to_json().dump());
  writer.set_metadata(io::kFormatVersionKey, std::to_string(io::kFormatVersion));
  writer.set_metadata(io::kFormatKey, io::kFormatValue);
}

}  // namespace

void add_model_tensors(model::ViT& model, io::SafeTensorsWriter& writer, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  const auto masks = masks_by_param(model);
  for (const auto& item : model->named_parameters()) {
    torch::Tensor t = item.value().detach();
    if (auto it = masks.find(item.key()); it != masks.end()) t = t * it->second;
    t = t.to(torch::kCPU, torch::kFloat).contiguous();
    writer.add_f32(prefix + item.key(), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                   t.data_ptr<float>());
  }
}

void save_edited_model(model::ViT& model, const std::filesystem::path& path,
                       const std::string& record_key, const std::string& record_json,
                       const std::vector<std::string>& class_names) {
  std::map<std::string, std::string> meta{{record_key, record_json}};
  if (!class_names.empty()) meta[io::kClassNamesKey] = nlohmann::json(class_names).dump();
  save_model(model, path, meta);
}

void save_model(model::ViT& model, const std::filesystem::path& path,
                const std::map<std::string, std::string>& extra_metadata) {
  io::SafeTensorsWriter writer;
  add_model_tensors(model, writer);
  set_format_metadata(writer, model, extra_metadata);
  writer.write(path);
}

void save_quantized_model(model::ViT& model,
                          const std::map<std::string, model::QuantizedWeight>& weights,
                          const io::QuantSpec& spec_in, const std::filesystem::path& path,
                          const std::map<std::string, std::string>& extra_metadata) {
  torch::NoGradGuard no_grad;
  io::QuantSpec spec = spec_in;
  spec.weights.clear();
  io::SafeTensorsWriter writer;
  std::set<std::string> written;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    auto it = weights.find(name);
    if (it == weights.end()) {
      auto t = item.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
      writer.add_f32(name, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                     t.data_ptr<float>());
      continue;
    }
    const model::QuantizedWeight& qw = it->second;
    if (qw.codes.size(0) != item.value().size(0) || qw.codes.numel() != item.value().numel()) {
      core::throw_internal("save_quantized_model: codes of '{}' have {} elements, the weight {}",
                           name, qw.codes.numel(), item.value().numel());
    }
    io::add_quantized_weight(writer, name, model::to_plain(qw));
    spec.weights[name] = qw.spec;
    written.insert(name);
  }
  for (const auto& [name, qw] : weights) {
    if (!written.count(name)) core::throw_internal("save_quantized_model: no parameter '{}'", name);
  }
  set_format_metadata(writer, model, extra_metadata);
  writer.set_metadata(io::kQuantKey, spec.to_json().dump());
  writer.write(path);
}

}  // namespace vitopt::exporter
