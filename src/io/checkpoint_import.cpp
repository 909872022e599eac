// Config inference for timm/HF ViT checkpoints from tensor shapes (see checkpoint_import.h).
#include "io/checkpoint_import.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vitopt::io {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

const TensorInfo& require_tensor(const SafeTensorsFile& file, const std::string& name,
                                 const std::string& why) {
  if (!file.has(name)) {
    core::throw_input("{}: tensor '{}' not found ({}); is this a ViT checkpoint with timm names?",
                      file.source(), name, why);
  }
  return file.info(name);
}

// Shape of a tensor expected to have `dims` dimensions (error otherwise).
std::vector<int64_t> shape_of(const SafeTensorsFile& file, const std::string& name, size_t dims,
                              const std::string& why) {
  const auto& info = require_tensor(file, name, why);
  if (info.shape.size() != dims) {
    core::throw_input("{}: tensor '{}': expected {} dimensions ({}), got shape {}", file.source(),
                      name, dims, why, shape_str(info.shape));
  }
  return info.shape;
}

// A dimension read from a shape, as an int: 1 .. 2^24 (larger is no ViT and would overflow int
// arithmetic before normalize() could say so).
int dim(int64_t v, const SafeTensorsFile& file, const std::string& tensor, const char* what) {
  if (v < 1 || v > (int64_t{1} << 24)) {
    core::throw_input("{}: tensor '{}': {} {} is not a plausible ViT dimension", file.source(),
                      tensor, what, v);
  }
  return static_cast<int>(v);
}

constexpr int kMaxImportDepth = 1024;

}  // namespace

ViTConfig config_from_checkpoint(const SafeTensorsFile& file, const ImportHints& hints) {
  ViTConfig c;
  c.name = "imported";
  const auto pw = shape_of(file, "patch_embed.proj.weight", 4, "patch conv (C, in, P, P)");
  if (pw[2] != pw[3]) {
    core::throw_input(
        "{}: tensor 'patch_embed.proj.weight': expected square patches (C, in, P, "
        "P), got shape {}",
        file.source(), shape_str(pw));
  }
  c.embed_dim = dim(pw[0], file, "patch_embed.proj.weight", "embed dim");
  c.in_channels = dim(pw[1], file, "patch_embed.proj.weight", "input channels");
  c.patch_size = dim(pw[2], file, "patch_embed.proj.weight", "patch size");
  c.distill_token = file.has("dist_token");
  const auto pe = shape_of(file, "pos_embed", 3, "position embedding (1, N, C)");
  const int64_t patches = dim(pe[1], file, "pos_embed", "token count") - c.num_prefix_tokens();
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  if (patches <= 0 || grid * grid != patches) {
    core::throw_input(
        "{}: tensor 'pos_embed': expected 1 + {} prefix token(s) + a square number "
        "of patches, got shape {}",
        file.source(), c.num_prefix_tokens() - 1, shape_str(pe));
  }
  c.image_size = dim(grid * c.patch_size, file, "pos_embed", "image side (grid * patch)");

  int depth = 0;
  for (const auto& name : file.names()) {
    if (name.rfind("blocks.", 0) != 0) continue;
    const auto dot = name.find('.', 7);
    const std::string index = name.substr(7, dot == std::string::npos ? dot : dot - 7);
    const bool digits = dot != std::string::npos && !index.empty() && index.size() <= 4 &&
                        std::all_of(index.begin(), index.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits || std::stoi(index) >= kMaxImportDepth) {
      core::throw_input("{}: tensor '{}': expected 'blocks.<index>.<...>' with an index below {}",
                        file.source(), name, kMaxImportDepth);
    }
    depth = std::max(depth, std::stoi(index) + 1);
  }
  if (depth == 0) core::throw_input("{}: no 'blocks.<i>.*' tensors found", file.source());
  c.depth = depth;

  c.num_heads = hints.num_heads.value_or(std::max(1, c.embed_dim / 64));
  if (c.num_heads <= 0 || c.embed_dim % c.num_heads != 0) {
    core::throw_input("{}: heads hint: expected a divisor of embed_dim {}, got {}", file.source(),
                      c.embed_dim, c.num_heads);
  }
  c.head_dim = c.embed_dim / c.num_heads;
  c.mlp_dim = dim(shape_of(file, "blocks.0.mlp.fc1.weight", 2, "fc1 (M, C)")[0], file,
                  "blocks.0.mlp.fc1.weight", "MLP width");
  c.qkv_bias = file.has("blocks.0.attn.qkv.bias");
  c.num_classes =
      dim(shape_of(file, "head.weight", 2, "classifier (K, C)")[0], file, "head.weight", "classes");
  c.blocks.resize(static_cast<size_t>(depth));
  for (int b = 0; b < depth; ++b) {  // per-block widths (a pruned timm-named file)
    const std::string fc1 = fmt::format("blocks.{}.mlp.fc1.weight", b);
    auto& bc = c.blocks[static_cast<size_t>(b)];
    if (file.has(fc1)) bc.mlp_dim = dim(shape_of(file, fc1, 2, "fc1")[0], file, fc1, "MLP width");
    const std::string qkv = fmt::format("blocks.{}.attn.qkv.weight", b);
    if (file.has(qkv)) {
      const int64_t rows = dim(shape_of(file, qkv, 2, "qkv (3*H*D, C)")[0], file, qkv, "rows");
      if (rows % (3 * c.head_dim) != 0) {
        core::throw_input(
            "{}: tensor '{}': rows {} are not 3 * heads * head_dim {} (heads from "
            "the hint or C/64 = {}); pass the right heads hint",
            file.source(), qkv, rows, c.head_dim, c.num_heads);
      }
      bc.num_heads = static_cast<int>(rows / (3 * c.head_dim));
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

}  // namespace vitopt::io
