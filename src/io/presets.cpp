// The preset table (see presets.h): Fashion-MNIST shapes (the project's standard small model, its
// distillation student and a 56x56 version with 197 tokens for token merging), a 2-block toy for
// tests, the Tiny-ImageNet shape circuit discovery was first used with, and the ImageNet ViT/DeiT
// shapes.
#include "io/presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace vitopt::io {
namespace {

// 28x28 grey Fashion-MNIST, 10 classes, dataset statistics for normalization.
ViTConfig fmnist(const std::string& name, int patch, int dim, int depth, int heads, int mlp) {
  ViTConfig c;
  c.name = name;
  c.image_size = 28;
  c.in_channels = 1;
  c.patch_size = patch;
  c.embed_dim = dim;
  c.depth = depth;
  c.num_heads = heads;
  c.mlp_dim = mlp;
  c.num_classes = 10;
  c.preprocess.mean = {0.2860f};
  c.preprocess.std = {0.3530f};
  c.preprocess.interpolation = "bilinear";
  c.preprocess.crop_pct = 1.0f;
  return c;
}

// 224x224 RGB ImageNet, patch 16, 12 blocks, MLP 4C, timm's eval preprocessing.
ViTConfig imagenet(const std::string& name, int dim, int heads) {
  ViTConfig c;
  c.name = name;
  c.image_size = 224;
  c.in_channels = 3;
  c.patch_size = 16;
  c.embed_dim = dim;
  c.depth = 12;
  c.num_heads = heads;
  c.mlp_dim = 4 * dim;
  c.num_classes = 1000;
  c.preprocess.mean = {0.485f, 0.456f, 0.406f};
  c.preprocess.std = {0.229f, 0.224f, 0.225f};
  c.preprocess.interpolation = "bicubic";
  c.preprocess.crop_pct = 0.875f;
  return c;
}

// 64x64 RGB Tiny-ImageNet (200 classes; already at size, so no crop), ImageNet statistics.
ViTConfig tiny_imagenet(const std::string& name, int patch, int dim, int depth, int heads,
                        int mlp) {
  ViTConfig c;
  c.name = name;
  c.image_size = 64;
  c.in_channels = 3;
  c.patch_size = patch;
  c.embed_dim = dim;
  c.depth = depth;
  c.num_heads = heads;
  c.mlp_dim = mlp;
  c.num_classes = 200;
  c.preprocess.mean = {0.485f, 0.456f, 0.406f};
  c.preprocess.std = {0.229f, 0.224f, 0.225f};
  c.preprocess.interpolation = "bilinear";
  c.preprocess.crop_pct = 1.0f;
  return c;
}

}  // namespace

const std::vector<PresetEntry>& presets() {
  static const std::vector<PresetEntry> table = {
      {"vit-fmnist", "Fashion-MNIST standard: 28x28x1, P 4, C 128, 6 blocks, 4 heads, MLP 256",
       [] { return fmnist("vit-fmnist", 4, 128, 6, 4, 256); }},
      {"vit-fmnist-56",
       "Fashion-MNIST resized to 56x56 (197 tokens, for token merging): P 4, C 64, 6 blocks, "
       "2 heads, MLP 128",
       [] {
         // The student's widths: 197 tokens cost ~4x the 50 of vit-fmnist in every Linear and
         // ~16x in attention, and this one must train on 2 cores in minutes, not hours.
         auto c = fmnist("vit-fmnist-56", 4, 64, 6, 2, 128);
         c.image_size = 56;  // the loaders resize the 28x28 images to the model's size
         return c;
       }},
      {"vit-fmnist-student",
       "Fashion-MNIST student: 28x28x1, P 4, C 64, 6 blocks, 2 heads, MLP 128",
       [] { return fmnist("vit-fmnist-student", 4, 64, 6, 2, 128); }},
      {"vit-tiny-imagenet",
       "Tiny-ImageNet, as in the circuit-discovery work: 64x64x3, P 8, C 576, 6 blocks, 6 heads, "
       "MLP 1536, 200 classes",
       [] { return tiny_imagenet("vit-tiny-imagenet", 8, 576, 6, 6, 1536); }},
      {"deit-tiny", "DeiT-Tiny/16: 224x224x3, C 192, 12 blocks, 3 heads, MLP 768, 1000 classes",
       [] { return imagenet("deit-tiny", 192, 3); }},
      {"deit-small", "DeiT-Small/16: 224x224x3, C 384, 12 blocks, 6 heads, MLP 1536, 1000 classes",
       [] { return imagenet("deit-small", 384, 6); }},
      {"vit-base-16", "ViT-B/16: 224x224x3, C 768, 12 blocks, 12 heads, MLP 3072, 1000 classes",
       [] { return imagenet("vit-base-16", 768, 12); }},
      {"vit-tiny-test", "2-block toy for tests: 28x28x1, P 7, C 32, 2 heads, MLP 64",
       [] { return fmnist("vit-tiny-test", 7, 32, 2, 2, 64); }},
  };
  return table;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

ViTConfig preset(const std::string& name) {
  for (const auto& p : presets()) {
    if (p.name != name) continue;
    ViTConfig c = p.make();
    c.normalize("preset " + name);
    return c;
  }
  core::throw_input("unknown model preset '{}': expected one of [{}]", name,
                    fmt::join(preset_names(), ", "));
}

}  // namespace vitopt::io
