// Model files -> ViT: the header through io (io::read_model_header), then every tensor checked for
// presence, dtype and shape; errors name the file, the tensor, the expected and the actual value.
// Writing is src/export's job.
#include "model/model_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "io/checkpoint_convert.h"
#include "io/metadata_keys.h"
#include "model/quantized_model.h"

namespace vitopt::model {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

}  // namespace

void refuse_quantized_input(const std::filesystem::path& path, const std::string& verb,
                            const std::string& command) {
  if (io::SafeTensorsFile::load(path).metadata_value(io::kQuantKey) != nullptr)
    core::throw_input(
        "--model {}: a quantized model cannot be {} (its integer weights would "
        "silently become fp32). Run {} on the fp32 model, then quantize the result: "
        "vitopt {} --model FP32 --out M && vitopt quantize --model M",
        path.string(), verb, command, command);
}

EditInput load_edit_input(const std::filesystem::path& path, const std::string& verb,
                          const std::string& command) {
  refuse_quantized_input(path, verb, command);
  EditInput in;
  in.model = load_model(path);
  in.model->eval();
  in.class_names = io::read_model_header(path).class_names;
  return in;
}

ViT load_model(const std::filesystem::path& path, const io::ImportHints& hints) {
  return load_model(io::SafeTensorsFile::load(path), hints);
}

ViT load_model(const io::SafeTensorsFile& file, const io::ImportHints& hints) {
  // A timm / HF checkpoint is read as the vitopt file its one conversion makes (tensor names,
  // layer scale folded), so every command that loads a model reads it the same way.
  if (io::is_foreign_checkpoint(file))
    return load_model(io::convert_checkpoint(file, hints), hints);
  const io::ModelHeader header = io::read_model_header(file, hints);
  if (header.quant) return load_quantized_model(file, header);  // simulates the integers
  ViT model(header.config);
  load_model_tensors(model, file);
  std::set<std::string> expected;
  for (const auto& item : model->named_parameters()) expected.insert(item.key());
  std::vector<std::string> extra;
  for (const auto& name : file.names()) {
    if (!expected.count(name)) extra.push_back(name);
  }
  if (!extra.empty()) {
    const size_t shown = std::min<size_t>(extra.size(), 20);
    core::throw_input("{}: {} unexpected tensor(s) for this ViT config: [{}{}]", file.source(),
                      extra.size(), fmt::join(extra.begin(), extra.begin() + shown, ", "),
                      shown < extra.size() ? ", ..." : "");
  }
  return model;
}

void load_model_tensor(torch::Tensor& param, const io::SafeTensorsFile& file,
                       const std::string& name, const std::string& model_name) {
  const std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
  if (!file.has(name)) {
    core::throw_input("{}: tensor '{}' missing: expected shape {} for model '{}'", file.source(),
                      name, shape_str(want), model_name);
  }
  const auto& info = file.info(name);
  if (!io::dtype_is_float(info.dtype)) {
    core::throw_input("{}: tensor '{}': expected a float dtype (F32, F16, BF16 or F64), got {}",
                      file.source(), name, io::dtype_name(info.dtype));
  }
  if (info.shape != want) {
    core::throw_input("{}: tensor '{}': expected shape {}, got {}", file.source(), name,
                      shape_str(want), shape_str(info.shape));
  }
  std::vector<float> values = file.read_f32(name, &want);
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      core::throw_input("{}: tensor '{}': element {} is {} (weights must be finite)", file.source(),
                        name, i, values[i]);
    }
  }
  torch::NoGradGuard no_grad;
  param.copy_(torch::from_blob(values.data(), param.sizes(), torch::kFloat));  // bit-exact on CPU
}

void load_model_tensors(ViT& model, const io::SafeTensorsFile& file, const std::string& prefix) {
  for (auto& item : model->named_parameters()) {
    load_model_tensor(item.value(), file, prefix + item.key(), model->config().name);
  }
}

torch::Tensor read_tensor(const io::SafeTensorsFile& file, const std::string& name) {
  const auto& info = file.info(name);
  std::vector<float> values = file.read_f32(name);
  return torch::from_blob(values.data(), info.shape, torch::kFloat).clone();
}

}  // namespace vitopt::model
