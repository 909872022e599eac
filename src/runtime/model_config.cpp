// ModelConfig JSON parsing and validation. Mirrors model::ViTConfig::from_json + normalize (the
// two must accept the same files); limits specific to the runtime kernels are checked here too.
#include "runtime/model_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/json_util.h"

namespace vitopt::runtime {
namespace {

using core::json_get_or;
using core::throw_bad_field;
using nlohmann::json;

void check_keys(const json& j, const std::vector<std::string>& allowed, const std::string& source,
                const std::string& where) {
  if (!j.is_object()) throw_bad_field(source, where, "a JSON object", core::json_type_name(j));
  for (const auto& item : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      throw_bad_field(source, where.empty() ? item.key() : where + "." + item.key(),
                      fmt::format("one of the known fields [{}]", fmt::join(allowed, ", ")),
                      "an unknown field (not supported by this runtime)");
    }
  }
}

void require(bool ok, const std::string& source, const std::string& field,
             const std::string& expected, const std::string& actual) {
  if (!ok) throw_bad_field(source, field, expected, actual);
}

std::string str(double v) { return fmt::format("{}", v); }

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  check_keys(j,
             {"name", "image_size", "in_channels", "patch_size", "embed_dim", "depth", "num_heads",
              "head_dim", "mlp_dim", "num_classes", "qkv_bias", "distill_token", "pool", "ln_eps",
              "blocks", "preprocess"},
             source, "");
  ModelConfig c;
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
  if (auto it = j.find("preprocess"); it != j.end() && !it->is_null()) {
    check_keys(*it, {"mean", "std", "interpolation", "crop_pct"}, source, "preprocess");
    const std::string src = source + " preprocess";
    c.mean = json_get_or(*it, "mean", c.mean, src);
    c.std = json_get_or(*it, "std", c.std, src);
    c.interpolation = json_get_or(*it, "interpolation", c.interpolation, src);
    c.crop_pct = json_get_or(*it, "crop_pct", c.crop_pct, src);
  }

  // Limits: generous for real ViTs, tight enough that sizes cannot overflow int arithmetic.
  const auto in_range = [&](const char* field, int v, int lo, int hi) {
    require(v >= lo && v <= hi, source, field, fmt::format("an integer in [{}, {}]", lo, hi),
            str(v));
  };
  in_range("image_size", c.image_size, 1, 4096);
  in_range("in_channels", c.in_channels, 1, 64);
  in_range("patch_size", c.patch_size, 1, c.image_size);
  require(c.image_size % c.patch_size == 0, source, "patch_size",
          fmt::format("a divisor of image_size {}", c.image_size), str(c.patch_size));
  require(c.num_tokens() <= 16384, source, "image_size/patch_size",
          "at most 16384 tokens", str(c.num_tokens()));
  in_range("embed_dim", c.embed_dim, 1, 16384);
  in_range("depth", c.depth, 1, 1024);
  in_range("num_heads", c.num_heads, 1, 1024);
  in_range("head_dim", c.head_dim, 0, 512);
  if (c.head_dim == 0) {
    require(c.embed_dim % c.num_heads == 0, source, "num_heads",
            fmt::format("a divisor of embed_dim {} (or set head_dim)", c.embed_dim),
            str(c.num_heads));
    c.head_dim = c.embed_dim / c.num_heads;
    in_range("embed_dim / num_heads", c.head_dim, 1, 512);
  }
  in_range("mlp_dim", c.mlp_dim, 1, 262144);
  in_range("num_classes", c.num_classes, 1, 1000000);
  require(c.pool == "token" || c.pool == "avg", source, "pool", "\"token\" or \"avg\"",
          "\"" + c.pool + "\"");
  require(!(c.distill_token && c.pool != "token"), source, "pool",
          "\"token\" when distill_token is true", "\"" + c.pool + "\"");
  require(c.ln_eps > 0 && std::isfinite(c.ln_eps), source, "ln_eps", "a positive number",
          str(c.ln_eps));
  for (auto* v : {&c.mean, &c.std}) {
    if (v->size() == 1 && c.in_channels > 1) v->assign(static_cast<size_t>(c.in_channels), v->front());
  }
  require(static_cast<int>(c.mean.size()) == c.in_channels, source, "preprocess.mean",
          fmt::format("{} values", c.in_channels), str(static_cast<double>(c.mean.size())));
  require(static_cast<int>(c.std.size()) == c.in_channels, source, "preprocess.std",
          fmt::format("{} values", c.in_channels), str(static_cast<double>(c.std.size())));
  for (float v : c.std) require(v > 0, source, "preprocess.std", "positive values", str(v));

  const int64_t cap = 1 << 24;  // keeps products of dims far from int overflow
  if (auto it = j.find("blocks"); it != j.end() && !it->is_null()) {
    require(it->is_array(), source, "blocks", "a JSON array", core::json_type_name(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      const json& jb = (*it)[i];
      const std::string where = fmt::format("blocks[{}]", i);
      check_keys(jb,
                 {"num_heads", "kept_heads", "mlp_dim", "skip_attn", "skip_mlp", "qkv_rank",
                  "proj_rank", "fc1_rank", "fc2_rank", "shared_with"},
                 source, where);
      const std::string src = source + " " + where;
      BlockShape b;
      b.num_heads = json_get_or(jb, "num_heads", b.num_heads, src);
      (void)json_get_or(jb, "kept_heads", std::vector<int>{}, src);  // bookkeeping only
      b.mlp_dim = json_get_or(jb, "mlp_dim", b.mlp_dim, src);
      b.skip_attn = json_get_or(jb, "skip_attn", b.skip_attn, src);
      b.skip_mlp = json_get_or(jb, "skip_mlp", b.skip_mlp, src);
      b.qkv_rank = json_get_or(jb, "qkv_rank", b.qkv_rank, src);
      b.proj_rank = json_get_or(jb, "proj_rank", b.proj_rank, src);
      b.fc1_rank = json_get_or(jb, "fc1_rank", b.fc1_rank, src);
      b.fc2_rank = json_get_or(jb, "fc2_rank", b.fc2_rank, src);
      b.shared_with = json_get_or(jb, "shared_with", b.shared_with, src);
      c.blocks.push_back(b);
    }
  }
  if (c.blocks.empty()) c.blocks.resize(static_cast<size_t>(c.depth));
  require(static_cast<int>(c.blocks.size()) == c.depth, source, "blocks",
          fmt::format("{} entries (depth)", c.depth), str(static_cast<double>(c.blocks.size())));
  for (int i = 0; i < c.depth; ++i) {
    BlockShape& b = c.blocks[static_cast<size_t>(i)];
    const std::string f = fmt::format("blocks[{}].", i);
    require(b.num_heads >= 0 && b.num_heads <= 1024, source, f + "num_heads",
            "0 (default) or a head count up to 1024", str(b.num_heads));
    require(b.mlp_dim >= 0 && b.mlp_dim <= 262144, source, f + "mlp_dim",
            "0 (default) or a width up to 262144", str(b.mlp_dim));
    if (b.num_heads == 0) b.num_heads = c.num_heads;
    if (b.mlp_dim == 0) b.mlp_dim = c.mlp_dim;
    const int hd = b.num_heads * c.head_dim;
    require(int64_t{3} * hd * c.embed_dim <= cap * 16, source, f + "num_heads",
            "a qkv weight under 2^28 elements", str(b.num_heads));
    const std::pair<const char*, std::pair<int, int>> ranks[] = {
        {"qkv_rank", {b.qkv_rank, std::min(c.embed_dim, 3 * hd)}},
        {"proj_rank", {b.proj_rank, std::min(hd, c.embed_dim)}},
        {"fc1_rank", {b.fc1_rank, std::min(c.embed_dim, b.mlp_dim)}},
        {"fc2_rank", {b.fc2_rank, std::min(b.mlp_dim, c.embed_dim)}}};
    for (const auto& [field, rm] : ranks) {
      require(rm.first >= 0 && rm.first <= rm.second, source, f + field,
              fmt::format("0 (dense) or a rank in [1, {}]", rm.second), str(rm.first));
    }
    if (b.shared_with != -1) {
      require(b.shared_with >= 0 && b.shared_with < i, source, f + "shared_with",
              fmt::format("-1 or an earlier block index in [0, {})", i), str(b.shared_with));
      const BlockShape& t = c.blocks[static_cast<size_t>(b.shared_with)];
      require(t.shared_with == -1, source, f + "shared_with",
              "a block with its own weights (not itself shared)", str(b.shared_with));
      const bool same = t.num_heads == b.num_heads && t.mlp_dim == b.mlp_dim &&
                        t.skip_attn == b.skip_attn && t.skip_mlp == b.skip_mlp &&
                        t.qkv_rank == b.qkv_rank && t.proj_rank == b.proj_rank &&
                        t.fc1_rank == b.fc1_rank && t.fc2_rank == b.fc2_rank;
      require(same, source, f + "shared_with",
              fmt::format("block {} with the same heads/mlp_dim/skips/ranks", b.shared_with),
              "a block with a different structure");
    }
  }
  return c;
}

json ModelConfig::to_json() const {
  json jb = json::array();
  for (const auto& b : blocks) {
    jb.push_back({{"num_heads", b.num_heads}, {"kept_heads", json::array()},
                  {"mlp_dim", b.mlp_dim}, {"skip_attn", b.skip_attn}, {"skip_mlp", b.skip_mlp},
                  {"qkv_rank", b.qkv_rank}, {"proj_rank", b.proj_rank},
                  {"fc1_rank", b.fc1_rank}, {"fc2_rank", b.fc2_rank},
                  {"shared_with", b.shared_with}});
  }
  return json{{"name", name}, {"image_size", image_size}, {"in_channels", in_channels},
              {"patch_size", patch_size}, {"embed_dim", embed_dim}, {"depth", depth},
              {"num_heads", num_heads}, {"head_dim", head_dim}, {"mlp_dim", mlp_dim},
              {"num_classes", num_classes}, {"qkv_bias", qkv_bias},
              {"distill_token", distill_token}, {"pool", pool}, {"ln_eps", ln_eps},
              {"blocks", jb},
              {"preprocess", {{"mean", mean}, {"std", std}, {"interpolation", interpolation},
                              {"crop_pct", crop_pct}}}};
}

int64_t ModelConfig::macs() const {
  const int64_t C = embed_dim, N = num_tokens(), D = head_dim;
  const auto lin = [&](int64_t in, int64_t out, int64_t rank) {
    return N * (rank > 0 ? rank * (in + out) : in * out);
  };
  int64_t n = int64_t{num_patches()} * C * patch_features();
  for (const BlockShape& b : blocks) {
    const int64_t h = b.num_heads, hd = h * D, m = b.mlp_dim;
    if (!b.skip_attn) n += lin(C, 3 * hd, b.qkv_rank) + 2 * h * N * N * D + lin(hd, C, b.proj_rank);
    if (!b.skip_mlp) n += lin(C, m, b.fc1_rank) + lin(m, C, b.fc2_rank);
  }
  return n + C * num_classes * (distill_token ? 2 : 1);
}

}  // namespace vitopt::runtime
