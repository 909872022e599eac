// Model files: ViT <-> .safetensors with timm tensor names and our config in __metadata__, plus
// the timm import (config inferred from tensor shapes). Every tensor is checked for presence,
// dtype and shape; errors name the file, the tensor, the expected and the actual value.
#include "model/model_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/json_util.h"
#include "model/quantized_model.h"

namespace vitopt::model {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

const io::TensorInfo& require_tensor(const io::SafeTensorsFile& file, const std::string& name,
                                     const std::string& why) {
  if (!file.has(name)) {
    core::throw_input("{}: tensor '{}' not found ({}); is this a ViT checkpoint with timm names?",
                      file.source(), name, why);
  }
  return file.info(name);
}

// Shape of a tensor expected to have `dims` dimensions (error otherwise).
std::vector<int64_t> shape_of(const io::SafeTensorsFile& file, const std::string& name, size_t dims,
                              const std::string& why) {
  const auto& info = require_tensor(file, name, why);
  if (info.shape.size() != dims) {
    core::throw_input("{}: tensor '{}': expected {} dimensions ({}), got shape {}", file.source(),
                      name, dims, why, shape_str(info.shape));
  }
  return info.shape;
}

// Weights of every Linear with a pruning mask, by parameter name: saved as weight * mask.
std::map<std::string, torch::Tensor> masks_by_param(ViT& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_modules()) {
    if (const auto* lin = item.value()->as<LinearImpl>();
        lin && lin->mask.defined() && lin->rank == 0) {
      out[item.key() + ".weight"] = lin->mask;
    }
  }
  return out;
}

// Config inferred from the shapes of a timm ViT checkpoint.
ViTConfig infer_timm_config(const io::SafeTensorsFile& file, const ImportHints& hints) {
  ViTConfig c;
  c.name = "imported";
  const auto pw = shape_of(file, "patch_embed.proj.weight", 4, "patch conv (C, in, P, P)");
  if (pw[2] != pw[3]) {
    core::throw_input(
        "{}: tensor 'patch_embed.proj.weight': expected square patches (C, in, P, "
        "P), got shape {}",
        file.source(), shape_str(pw));
  }
  c.embed_dim = static_cast<int>(pw[0]);
  c.in_channels = static_cast<int>(pw[1]);
  c.patch_size = static_cast<int>(pw[2]);
  c.distill_token = file.has("dist_token");
  const auto pe = shape_of(file, "pos_embed", 3, "position embedding (1, N, C)");
  const int64_t patches = pe[1] - c.num_prefix_tokens();
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  if (patches <= 0 || grid * grid != patches) {
    core::throw_input(
        "{}: tensor 'pos_embed': expected 1 + {} prefix token(s) + a square number "
        "of patches, got shape {}",
        file.source(), c.num_prefix_tokens() - 1, shape_str(pe));
  }
  c.image_size = static_cast<int>(grid * c.patch_size);

  int depth = 0;
  for (const auto& name : file.names()) {
    if (name.rfind("blocks.", 0) != 0) continue;
    const auto dot = name.find('.', 7);
    try {
      depth = std::max(depth, std::stoi(name.substr(7, dot - 7)) + 1);
    } catch (const std::exception&) {
      core::throw_input("{}: tensor '{}': expected 'blocks.<index>.<...>'", file.source(), name);
    }
  }
  if (depth == 0) core::throw_input("{}: no 'blocks.<i>.*' tensors found", file.source());
  c.depth = depth;

  c.num_heads = hints.num_heads.value_or(std::max(1, c.embed_dim / 64));
  if (c.num_heads <= 0 || c.embed_dim % c.num_heads != 0) {
    core::throw_input("{}: heads hint: expected a divisor of embed_dim {}, got {}", file.source(),
                      c.embed_dim, c.num_heads);
  }
  c.head_dim = c.embed_dim / c.num_heads;
  c.mlp_dim = static_cast<int>(shape_of(file, "blocks.0.mlp.fc1.weight", 2, "fc1 (M, C)")[0]);
  c.qkv_bias = file.has("blocks.0.attn.qkv.bias");
  c.num_classes = static_cast<int>(shape_of(file, "head.weight", 2, "classifier (K, C)")[0]);
  c.blocks.resize(depth);
  for (int b = 0; b < depth; ++b) {  // per-block widths (a pruned timm-named file)
    const std::string fc1 = fmt::format("blocks.{}.mlp.fc1.weight", b);
    if (file.has(fc1)) c.blocks[b].mlp_dim = static_cast<int>(shape_of(file, fc1, 2, "fc1")[0]);
    const std::string qkv = fmt::format("blocks.{}.attn.qkv.weight", b);
    if (file.has(qkv)) {
      const int64_t rows = shape_of(file, qkv, 2, "qkv (3*H*D, C)")[0];
      if (rows % (3 * c.head_dim) != 0) {
        core::throw_input(
            "{}: tensor '{}': rows {} are not 3 * heads * head_dim {} (heads from "
            "the hint or C/64 = {}); pass the right heads hint",
            file.source(), qkv, rows, c.head_dim, c.num_heads);
      }
      c.blocks[b].num_heads = static_cast<int>(rows / (3 * c.head_dim));
    }
  }
  // timm does not record preprocessing: ImageNet statistics for RGB, 0.5 for grey.
  if (c.in_channels == 3) {
    c.preprocess.mean = {0.485f, 0.456f, 0.406f};
    c.preprocess.std = {0.229f, 0.224f, 0.225f};
    c.preprocess.interpolation = "bicubic";
    c.preprocess.crop_pct = c.image_size == 224 ? 0.875f : 1.0f;
  }
  return c;
}

}  // namespace

ViTConfig config_from_file(const io::SafeTensorsFile& file, const ImportHints& hints) {
  ViTConfig c;
  if (const std::string* text = file.metadata_value(kConfigKey)) {
    const std::string* version = file.metadata_value(kFormatVersionKey);
    const std::string want = std::to_string(kFormatVersion);
    if (version == nullptr || *version != want) {
      core::throw_input(
          "{}: metadata '{}': this file has vitopt format version {}, this build "
          "reads version {}; re-export it with a matching vitopt",
          file.source(), kFormatVersionKey, version ? "'" + *version + "'" : "(none)", want);
    }
    const std::string src = file.source() + " metadata '" + kConfigKey + "'";
    c = ViTConfig::from_json(core::json_parse(*text, src), src);
  } else {
    c = infer_timm_config(file, hints);
  }
  if (hints.mean) c.preprocess.mean = *hints.mean;
  if (hints.std) c.preprocess.std = *hints.std;
  c.normalize(file.source());
  return c;
}

ViT load_model(const std::filesystem::path& path, const ImportHints& hints) {
  return load_model(io::SafeTensorsFile::load(path), hints);
}

ViT load_model(const io::SafeTensorsFile& file, const ImportHints& hints) {
  if (is_quantized_file(file)) return load_quantized_model(file, hints);  // simulates the integers
  ViT model(config_from_file(file, hints));
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

void load_model_tensors(ViT& model, const io::SafeTensorsFile& file, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string name = prefix + item.key();
    torch::Tensor& param = item.value();
    const std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
    if (!file.has(name)) {
      core::throw_input("{}: tensor '{}' missing: expected shape {} for model '{}'", file.source(),
                        name, shape_str(want), model->config().name);
    }
    const auto& info = file.info(name);
    if (info.dtype != io::DType::F32 && info.dtype != io::DType::F16 &&
        info.dtype != io::DType::BF16) {
      core::throw_input("{}: tensor '{}': expected dtype F32, F16 or BF16, got {}", file.source(),
                        name, io::dtype_name(info.dtype));
    }
    if (info.shape != want) {
      core::throw_input("{}: tensor '{}': expected shape {}, got {}", file.source(), name,
                        shape_str(want), shape_str(info.shape));
    }
    std::vector<float> values = file.read_f32(name, &want);
    auto src = torch::from_blob(values.data(), param.sizes(), torch::kFloat);
    param.copy_(src);  // same dtype on CPU: a bit-exact copy
  }
}

torch::Tensor read_tensor(const io::SafeTensorsFile& file, const std::string& name) {
  const auto& info = file.info(name);
  std::vector<float> values = file.read_f32(name);
  return torch::from_blob(values.data(), info.shape, torch::kFloat).clone();
}

void add_model_tensors(ViT& model, io::SafeTensorsWriter& writer, const std::string& prefix) {
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

void save_model(ViT& model, const std::filesystem::path& path,
                const std::map<std::string, std::string>& extra_metadata) {
  io::SafeTensorsWriter writer;
  add_model_tensors(model, writer);
  for (const auto& [key, value] : extra_metadata) writer.set_metadata(key, value);
  writer.set_metadata(kConfigKey, model->config().to_json().dump());
  writer.set_metadata(kFormatVersionKey, std::to_string(kFormatVersion));
  writer.set_metadata("format", "pt");
  writer.write(path);
}

}  // namespace vitopt::model
