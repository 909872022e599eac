// ViTConfig: JSON round trip, validation (normalize), named presets and analytic parameter / MAC
// counts. Plain data only: no LibTorch here (the module lives in vit.cpp).
#include "model/vit_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/json_util.h"

namespace vitopt::model {
namespace {

using core::json_get_or;
using core::throw_bad_field;

// Rejects keys we do not know so that a typo ("mlp_dims") is not silently ignored.
void check_keys(const json& j, const std::vector<std::string>& allowed, const std::string& source,
                const std::string& where) {
  if (!j.is_object()) throw_bad_field(source, where, "a JSON object", core::json_type_name(j));
  for (const auto& [key, value] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw_bad_field(source, where.empty() ? key : where + "." + key,
                      fmt::format("one of the known fields [{}]", fmt::join(allowed, ", ")),
                      "an unknown field");
    }
  }
}

void require(bool ok, const std::string& source, const std::string& field,
             const std::string& expected, const std::string& actual) {
  if (!ok) throw_bad_field(source, field, expected, actual);
}

json block_to_json(const BlockConfig& b) {
  return json{{"num_heads", b.num_heads},    {"kept_heads", b.kept_heads}, {"mlp_dim", b.mlp_dim},
              {"skip_attn", b.skip_attn},    {"skip_mlp", b.skip_mlp},     {"qkv_rank", b.qkv_rank},
              {"proj_rank", b.proj_rank},    {"fc1_rank", b.fc1_rank},     {"fc2_rank", b.fc2_rank},
              {"shared_with", b.shared_with}};
}

BlockConfig block_from_json(const json& j, const std::string& source, const std::string& where) {
  check_keys(j,
             {"num_heads", "kept_heads", "mlp_dim", "skip_attn", "skip_mlp", "qkv_rank",
              "proj_rank", "fc1_rank", "fc2_rank", "shared_with"},
             source, where);
  const std::string src = source + " " + where;
  BlockConfig b;
  b.num_heads = json_get_or(j, "num_heads", b.num_heads, src);
  b.kept_heads = json_get_or(j, "kept_heads", b.kept_heads, src);
  b.mlp_dim = json_get_or(j, "mlp_dim", b.mlp_dim, src);
  b.skip_attn = json_get_or(j, "skip_attn", b.skip_attn, src);
  b.skip_mlp = json_get_or(j, "skip_mlp", b.skip_mlp, src);
  b.qkv_rank = json_get_or(j, "qkv_rank", b.qkv_rank, src);
  b.proj_rank = json_get_or(j, "proj_rank", b.proj_rank, src);
  b.fc1_rank = json_get_or(j, "fc1_rank", b.fc1_rank, src);
  b.fc2_rank = json_get_or(j, "fc2_rank", b.fc2_rank, src);
  b.shared_with = json_get_or(j, "shared_with", b.shared_with, src);
  return b;
}

// Parameters of one Linear (dense, or two factors (out, r) x (r, in) when rank > 0).
int64_t linear_params(int64_t in, int64_t out, bool bias, int64_t rank) {
  return (rank > 0 ? rank * (in + out) : in * out) + (bias ? out : 0);
}

// MACs of one Linear applied to `tokens` rows.
int64_t linear_macs(int64_t tokens, int64_t in, int64_t out, int64_t rank) {
  return tokens * (rank > 0 ? rank * (in + out) : in * out);
}

ViTConfig fmnist_base(const std::string& name) {
  ViTConfig c;
  c.name = name;
  c.image_size = 28;
  c.in_channels = 1;
  c.patch_size = 4;
  c.num_classes = 10;
  c.preprocess.mean = {0.2860f};
  c.preprocess.std = {0.3530f};
  c.preprocess.interpolation = "bilinear";
  c.preprocess.crop_pct = 1.0f;
  return c;
}

ViTConfig imagenet_base(const std::string& name, int dim, int heads) {
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

}  // namespace

int ViTConfig::block_heads(int b) const {
  const int h = b >= 0 && b < static_cast<int>(blocks.size()) ? blocks[b].num_heads : 0;
  return h > 0 ? h : num_heads;
}

int ViTConfig::block_mlp(int b) const {
  const int m = b >= 0 && b < static_cast<int>(blocks.size()) ? blocks[b].mlp_dim : 0;
  return m > 0 ? m : mlp_dim;
}

void ViTConfig::normalize(const std::string& source) {
  auto s = [](auto v) { return fmt::format("{}", v); };
  require(image_size > 0, source, "image_size", "a positive integer (e.g. 28 or 224)",
          s(image_size));
  require(in_channels > 0, source, "in_channels", "a positive integer (1 or 3)", s(in_channels));
  require(patch_size > 0, source, "patch_size", "a positive integer (e.g. 4 or 16)", s(patch_size));
  require(image_size % patch_size == 0, source, "patch_size",
          fmt::format("a divisor of image_size {}", image_size), s(patch_size));
  require(embed_dim > 0, source, "embed_dim", "a positive integer (e.g. 192)", s(embed_dim));
  require(depth > 0, source, "depth", "a positive integer (e.g. 12)", s(depth));
  require(num_heads > 0, source, "num_heads", "a positive integer (e.g. 3)", s(num_heads));
  require(head_dim >= 0, source, "head_dim", "0 (embed_dim / num_heads) or a positive integer",
          s(head_dim));
  if (head_dim == 0) {
    require(embed_dim % num_heads == 0, source, "num_heads",
            fmt::format("a divisor of embed_dim {} (or set head_dim)", embed_dim), s(num_heads));
    head_dim = embed_dim / num_heads;
  }
  require(mlp_dim > 0, source, "mlp_dim", "a positive integer (e.g. 4 * embed_dim)", s(mlp_dim));
  require(num_classes > 0, source, "num_classes", "a positive integer", s(num_classes));
  require(pool == "token" || pool == "avg", source, "pool", "\"token\" or \"avg\"",
          "\"" + pool + "\"");
  require(!(distill_token && pool != "token"), source, "pool",
          "\"token\" when distill_token is true", "\"" + pool + "\"");
  require(ln_eps > 0, source, "ln_eps", "a positive number (e.g. 1e-6)", s(ln_eps));

  // Preprocess: one value broadcasts to every channel.
  auto& pp = preprocess;
  for (auto* v : {&pp.mean, &pp.std}) {
    if (v->size() == 1 && in_channels > 1) v->assign(in_channels, v->front());
  }
  require(static_cast<int>(pp.mean.size()) == in_channels, source, "preprocess.mean",
          fmt::format("{} values (one per channel)", in_channels), s(pp.mean.size()) + " values");
  require(static_cast<int>(pp.std.size()) == in_channels, source, "preprocess.std",
          fmt::format("{} values (one per channel)", in_channels), s(pp.std.size()) + " values");
  for (float v : pp.std) {
    require(v > 0, source, "preprocess.std", "positive values", s(v));
  }
  require(pp.interpolation == "bilinear" || pp.interpolation == "bicubic" ||
              pp.interpolation == "nearest",
          source, "preprocess.interpolation", "\"bilinear\", \"bicubic\" or \"nearest\"",
          "\"" + pp.interpolation + "\"");
  require(pp.crop_pct > 0 && pp.crop_pct <= 1, source, "preprocess.crop_pct",
          "a value in (0, 1] (e.g. 0.875)", s(pp.crop_pct));

  // Blocks: fill to depth, then make every override explicit.
  if (blocks.empty()) blocks.resize(depth);
  require(static_cast<int>(blocks.size()) == depth, source, "blocks",
          fmt::format("{} entries (depth)", depth), s(blocks.size()) + " entries");
  for (int b = 0; b < depth; ++b) {
    BlockConfig& bc = blocks[b];
    const std::string f = fmt::format("blocks[{}].", b);
    require(bc.num_heads >= 0, source, f + "num_heads", "0 (default) or a positive integer",
            s(bc.num_heads));
    require(bc.mlp_dim >= 0, source, f + "mlp_dim", "0 (default) or a positive integer",
            s(bc.mlp_dim));
    if (bc.num_heads == 0) bc.num_heads = num_heads;
    if (bc.mlp_dim == 0) bc.mlp_dim = mlp_dim;
    if (!bc.kept_heads.empty()) {
      require(static_cast<int>(bc.kept_heads.size()) == bc.num_heads, source, f + "kept_heads",
              fmt::format("{} indices (num_heads) or none", bc.num_heads),
              s(bc.kept_heads.size()) + " indices");
      std::set<int> seen;
      for (int h : bc.kept_heads) {
        require(h >= 0 && seen.insert(h).second, source, f + "kept_heads",
                "distinct non-negative head indices",
                fmt::format("[{}]", fmt::join(bc.kept_heads, ", ")));
      }
    }
    const int hd = bc.num_heads * head_dim;
    const int m = bc.mlp_dim;
    const std::pair<const char*, std::pair<int, int>> ranks[] = {
        {"qkv_rank", {bc.qkv_rank, std::min(embed_dim, 3 * hd)}},
        {"proj_rank", {bc.proj_rank, std::min(hd, embed_dim)}},
        {"fc1_rank", {bc.fc1_rank, std::min(embed_dim, m)}},
        {"fc2_rank", {bc.fc2_rank, std::min(m, embed_dim)}}};
    for (const auto& [field, rank_max] : ranks) {
      require(rank_max.first >= 0 && rank_max.first <= rank_max.second, source, f + field,
              fmt::format("0 (dense) or a rank in [1, {}]", rank_max.second), s(rank_max.first));
    }
    if (bc.shared_with != -1) {
      require(bc.shared_with >= 0 && bc.shared_with < b, source, f + "shared_with",
              fmt::format("-1 or an earlier block index in [0, {})", b), s(bc.shared_with));
      const BlockConfig& t = blocks[bc.shared_with];
      require(t.shared_with == -1, source, f + "shared_with",
              "a block with its own weights (not itself shared)",
              fmt::format("block {} which shares block {}", bc.shared_with, t.shared_with));
      const bool same = t.num_heads == bc.num_heads && t.mlp_dim == bc.mlp_dim &&
                        t.skip_attn == bc.skip_attn && t.skip_mlp == bc.skip_mlp &&
                        t.qkv_rank == bc.qkv_rank && t.proj_rank == bc.proj_rank &&
                        t.fc1_rank == bc.fc1_rank && t.fc2_rank == bc.fc2_rank;
      require(same, source, f + "shared_with",
              fmt::format("block {} with the same heads/mlp_dim/skips/ranks", bc.shared_with),
              "a block with a different structure");
    }
  }
}

json ViTConfig::to_json() const {
  json jb = json::array();
  for (const auto& b : blocks) jb.push_back(block_to_json(b));
  return json{{"name", name},
              {"image_size", image_size},
              {"in_channels", in_channels},
              {"patch_size", patch_size},
              {"embed_dim", embed_dim},
              {"depth", depth},
              {"num_heads", num_heads},
              {"head_dim", head_dim},
              {"mlp_dim", mlp_dim},
              {"num_classes", num_classes},
              {"qkv_bias", qkv_bias},
              {"distill_token", distill_token},
              {"pool", pool},
              {"ln_eps", ln_eps},
              {"blocks", jb},
              {"preprocess",
               {{"mean", preprocess.mean},
                {"std", preprocess.std},
                {"interpolation", preprocess.interpolation},
                {"crop_pct", preprocess.crop_pct}}}};
}

ViTConfig ViTConfig::from_json(const json& j, const std::string& source) {
  check_keys(j,
             {"name", "image_size", "in_channels", "patch_size", "embed_dim", "depth", "num_heads",
              "head_dim", "mlp_dim", "num_classes", "qkv_bias", "distill_token", "pool", "ln_eps",
              "blocks", "preprocess"},
             source, "");
  ViTConfig c;
  c.name = json_get_or(j, "name", c.name, source);
  c.image_size = json_get_or(j, "image_size", c.image_size, source);
  c.in_channels = json_get_or(j, "in_channels", c.in_channels, source);
  c.patch_size = json_get_or(j, "patch_size", c.patch_size, source);
  c.embed_dim = json_get_or(j, "embed_dim", c.embed_dim, source);
  c.depth = json_get_or(j, "depth", c.depth, source);
  c.num_heads = json_get_or(j, "num_heads", c.num_heads, source);
  c.head_dim = json_get_or(j, "head_dim", c.head_dim, source);
  c.mlp_dim = json_get_or(j, "mlp_dim", c.mlp_dim, source);
  c.num_classes = json_get_or(j, "num_classes", c.num_classes, source);
  c.qkv_bias = json_get_or(j, "qkv_bias", c.qkv_bias, source);
  c.distill_token = json_get_or(j, "distill_token", c.distill_token, source);
  c.pool = json_get_or(j, "pool", c.pool, source);
  c.ln_eps = json_get_or(j, "ln_eps", c.ln_eps, source);
  if (auto it = j.find("blocks"); it != j.end() && !it->is_null()) {
    require(it->is_array(), source, "blocks", "a JSON array", core::json_type_name(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      c.blocks.push_back(block_from_json((*it)[i], source, fmt::format("blocks[{}]", i)));
    }
  }
  if (auto it = j.find("preprocess"); it != j.end() && !it->is_null()) {
    check_keys(*it, {"mean", "std", "interpolation", "crop_pct"}, source, "preprocess");
    const std::string src = source + " preprocess";
    auto& pp = c.preprocess;
    pp.mean = json_get_or(*it, "mean", pp.mean, src);
    pp.std = json_get_or(*it, "std", pp.std, src);
    pp.interpolation = json_get_or(*it, "interpolation", pp.interpolation, src);
    pp.crop_pct = json_get_or(*it, "crop_pct", pp.crop_pct, src);
  }
  return c;
}

std::vector<std::string> preset_names() {
  return {"vit-fmnist", "vit-fmnist-student", "deit-tiny",
          "deit-small", "vit-base-16",        "vit-tiny-test"};
}

ViTConfig preset(const std::string& name) {
  ViTConfig c;
  if (name == "vit-fmnist") {
    c = fmnist_base(name);  // dim 128, depth 6, heads 4, MLP 256: the struct defaults
    c.embed_dim = 128;
    c.depth = 6;
    c.num_heads = 4;
    c.mlp_dim = 256;
  } else if (name == "vit-fmnist-student") {
    c = fmnist_base(name);
    c.embed_dim = 64;
    c.depth = 6;
    c.num_heads = 2;
    c.mlp_dim = 128;
  } else if (name == "vit-tiny-test") {
    c = fmnist_base(name);
    c.patch_size = 7;
    c.embed_dim = 32;
    c.depth = 2;
    c.num_heads = 2;
    c.mlp_dim = 64;
  } else if (name == "deit-tiny") {
    c = imagenet_base(name, 192, 3);
  } else if (name == "deit-small") {
    c = imagenet_base(name, 384, 6);
  } else if (name == "vit-base-16") {
    c = imagenet_base(name, 768, 12);
  } else {
    core::throw_input("unknown model preset '{}': expected one of [{}]", name,
                      fmt::join(preset_names(), ", "));
  }
  c.normalize("preset " + name);
  return c;
}

int64_t count_params(const ViTConfig& c) {
  const int64_t C = c.embed_dim, K = c.num_classes;
  int64_t n = C * c.in_channels * c.patch_size * c.patch_size + C;  // patch_embed.proj
  n += C * c.num_prefix_tokens();                                   // cls (+ dist) token
  n += static_cast<int64_t>(c.num_tokens()) * C;                    // pos_embed
  for (int b = 0; b < c.depth; ++b) {
    const BlockConfig bc = b < static_cast<int>(c.blocks.size()) ? c.blocks[b] : BlockConfig{};
    if (bc.shared_with >= 0) continue;  // reuses an earlier block's tensors
    const int64_t hd = static_cast<int64_t>(c.block_heads(b)) * c.head_dim, m = c.block_mlp(b);
    if (!bc.skip_attn) {
      n += 2 * C + linear_params(C, 3 * hd, c.qkv_bias, bc.qkv_rank) +
           linear_params(hd, C, true, bc.proj_rank);
    }
    if (!bc.skip_mlp) {
      n += 2 * C + linear_params(C, m, true, bc.fc1_rank) + linear_params(m, C, true, bc.fc2_rank);
    }
  }
  n += 2 * C;                                    // final norm
  n += (C * K + K) * (c.distill_token ? 2 : 1);  // head (+ head_dist)
  return n;
}

int64_t count_macs(const ViTConfig& c) {
  const int64_t C = c.embed_dim, N = c.num_tokens(), D = c.head_dim;
  int64_t n = static_cast<int64_t>(c.num_patches()) * C * c.in_channels * c.patch_size *
              c.patch_size;  // patch conv
  for (int b = 0; b < c.depth; ++b) {
    const BlockConfig bc = b < static_cast<int>(c.blocks.size()) ? c.blocks[b] : BlockConfig{};
    const int64_t h = c.block_heads(b), hd = h * D, m = c.block_mlp(b);
    if (!bc.skip_attn) {
      n += linear_macs(N, C, 3 * hd, bc.qkv_rank);  // qkv
      n += 2 * h * N * N * D;                       // q @ k^T and attn @ v
      n += linear_macs(N, hd, C, bc.proj_rank);     // proj
    }
    if (!bc.skip_mlp) {
      n += linear_macs(N, C, m, bc.fc1_rank) + linear_macs(N, m, C, bc.fc2_rank);
    }
  }
  n += C * c.num_classes * (c.distill_token ? 2 : 1);  // head (+ head_dist)
  return n;
}

}  // namespace vitopt::model
