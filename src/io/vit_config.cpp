// ViTConfig: JSON round trip and validation (normalize). Plain data only: the LibTorch module lives
// in src/model, presets in presets.cpp, counts in model_counts.cpp.
#include "io/vit_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/json_util.h"
#include "io/json_fields.h"

namespace vitopt::io {
namespace {

using core::throw_bad_field;
using nlohmann::json;
namespace jf = json_fields;

// Size limits: generous for real ViTs (ViT-G/14 fits), tight enough that products of dimensions
// (weights, activations per image) cannot overflow 64-bit counts or 32-bit kernel indices.
constexpr int kMaxImageSize = 4096, kMaxChannels = 64, kMaxTokens = 16384, kMaxEmbedDim = 16384;
constexpr int kMaxDepth = 1024, kMaxHeads = 1024, kMaxHeadDim = 512, kMaxMlpDim = 262144;
constexpr int kMaxClasses = 1000000;
constexpr int64_t kMaxQkvElements = int64_t{1} << 28;

const std::vector<std::string> kConfigFields = {
    "name",     "image_size", "in_channels", "patch_size", "embed_dim",      "depth",  "num_heads",
    "head_dim", "mlp_dim",    "num_classes", "qkv_bias",   "distill_token",  "pool",   "ln_eps",
    "blocks",   "preprocess", "class_token", "reg_tokens", "no_embed_class", "fc_norm"};
const std::vector<std::string> kBlockFields = {
    "num_heads", "kept_heads",       "mlp_dim",         "skip_attn", "skip_mlp",
    "qkv_rank",  "proj_rank",        "fc1_rank",        "fc2_rank",  "shared_with",
    "merge_r",   "attn_shared_with", "mlp_shared_with", "delta_rank"};
const std::vector<std::string> kPreprocessFields = {"mean", "std", "interpolation", "crop_pct"};

void require(bool ok, const std::string& source, const std::string& field,
             const std::string& expected, const std::string& actual) {
  if (!ok) throw_bad_field(source, field, expected, actual);
}

template <typename T>
std::string str(const T& v) {
  return fmt::format("{}", v);
}

void require_in(int v, int lo, int hi, const std::string& source, const std::string& field,
                const std::string& example) {
  require(v >= lo && v <= hi, source, field,
          fmt::format("an integer in [{}, {}]{}", lo, hi, example), str(v));
}

json block_to_json(const BlockConfig& b) {
  json j{{"num_heads", b.num_heads}, {"kept_heads", b.kept_heads}, {"mlp_dim", b.mlp_dim},
         {"skip_attn", b.skip_attn}, {"skip_mlp", b.skip_mlp},     {"qkv_rank", b.qkv_rank},
         {"proj_rank", b.proj_rank}, {"fc1_rank", b.fc1_rank},     {"fc2_rank", b.fc2_rank}};
  // Written only when set: files without merging or sharing keep the header older readers
  // accept, and a file that merges or shares is refused by them (unknown field) instead of
  // silently run wrongly.
  if (b.merge_r != 0) j["merge_r"] = b.merge_r;
  if (b.attn_shared_with >= 0) j["attn_shared_with"] = b.attn_shared_with;
  if (b.mlp_shared_with >= 0) j["mlp_shared_with"] = b.mlp_shared_with;
  if (b.delta_rank != 0) j["delta_rank"] = b.delta_rank;
  return j;
}

BlockConfig block_from_json(const json& j, const std::string& source, const std::string& where) {
  jf::check_fields(j, kBlockFields, source, where);
  BlockConfig b;
  auto get_int = [&](const char* key, int fallback) {
    return jf::get_or(j, key, fallback, source, where, jf::as_int);
  };
  auto get_bool = [&](const char* key, bool fallback) {
    return jf::get_or(j, key, fallback, source, where, jf::as_bool);
  };
  b.num_heads = get_int("num_heads", b.num_heads);
  b.kept_heads = jf::get_or(j, "kept_heads", b.kept_heads, source, where, jf::as_int_list);
  b.mlp_dim = get_int("mlp_dim", b.mlp_dim);
  b.skip_attn = get_bool("skip_attn", b.skip_attn);
  b.skip_mlp = get_bool("skip_mlp", b.skip_mlp);
  b.qkv_rank = get_int("qkv_rank", b.qkv_rank);
  b.proj_rank = get_int("proj_rank", b.proj_rank);
  b.fc1_rank = get_int("fc1_rank", b.fc1_rank);
  b.fc2_rank = get_int("fc2_rank", b.fc2_rank);
  // Files of older versions wrote "shared_with" on every block: -1 (no sharing) reads as before;
  // their whole-block sharing (LayerNorms and biases too) is not this format's per-branch one.
  const int legacy_shared = get_int("shared_with", -1);
  if (legacy_shared != -1)
    throw_bad_field(source, where + ".shared_with",
                    "-1 (whole-block sharing from an older vitopt is no longer read: run `vitopt "
                    "share` again on the unshared model)",
                    str(legacy_shared));
  b.attn_shared_with = get_int("attn_shared_with", b.attn_shared_with);
  b.mlp_shared_with = get_int("mlp_shared_with", b.mlp_shared_with);
  b.delta_rank = get_int("delta_rank", b.delta_rank);
  b.merge_r = get_int("merge_r", b.merge_r);
  return b;
}

// One branch's sharing: `owner` is -1 or an earlier block whose branch has its own weights of
// the same shapes, neither branch skipped.
void check_branch_owner(const ViTConfig& c, int b, bool attn, const std::string& source) {
  const BlockConfig& bc = c.blocks[static_cast<size_t>(b)];
  const int owner = attn ? bc.attn_shared_with : bc.mlp_shared_with;
  if (owner == -1) return;
  const std::string field =
      fmt::format("blocks[{}].{}", b, attn ? "attn_shared_with" : "mlp_shared_with");
  require(owner >= 0 && owner < b, source, field,
          fmt::format("-1 or an earlier block index in [0, {})", b), str(owner));
  const BlockConfig& o = c.blocks[static_cast<size_t>(owner)];
  const int owners_owner = attn ? o.attn_shared_with : o.mlp_shared_with;
  require(owners_owner == -1, source, field, "a block whose branch has its own weights",
          fmt::format("block {} which shares block {}", owner, owners_owner));
  const bool same = attn ? !bc.skip_attn && !o.skip_attn && o.num_heads == bc.num_heads &&
                               o.qkv_rank == bc.qkv_rank && o.proj_rank == bc.proj_rank
                         : !bc.skip_mlp && !o.skip_mlp && o.mlp_dim == bc.mlp_dim &&
                               o.fc1_rank == bc.fc1_rank && o.fc2_rank == bc.fc2_rank;
  require(same, source, field,
          fmt::format("block {} with the same {} (neither skipped)", owner,
                      attn ? "num_heads/qkv_rank/proj_rank" : "mlp_dim/fc1_rank/fc2_rank"),
          "a block of a different structure");
}

void normalize_preprocess(Preprocess& pp, int in_channels, const std::string& source) {
  for (auto* v : {&pp.mean, &pp.std}) {  // one value broadcasts to every channel
    if (v->size() == 1 && in_channels > 1) v->assign(static_cast<size_t>(in_channels), v->front());
  }
  require(static_cast<int>(pp.mean.size()) == in_channels, source, "preprocess.mean",
          fmt::format("{} values (one per channel)", in_channels), str(pp.mean.size()) + " values");
  require(static_cast<int>(pp.std.size()) == in_channels, source, "preprocess.std",
          fmt::format("{} values (one per channel)", in_channels), str(pp.std.size()) + " values");
  for (float v : pp.mean) {
    require(std::isfinite(v), source, "preprocess.mean", "finite values", str(v));
  }
  for (float v : pp.std) {
    require(v > 0 && std::isfinite(v), source, "preprocess.std", "finite positive values", str(v));
  }
  require(pp.interpolation == "bilinear" || pp.interpolation == "bicubic" ||
              pp.interpolation == "nearest",
          source, "preprocess.interpolation", "\"bilinear\", \"bicubic\" or \"nearest\"",
          "\"" + pp.interpolation + "\"");
  require(pp.crop_pct > 0 && pp.crop_pct <= 1, source, "preprocess.crop_pct",
          "a value in (0, 1] (e.g. 0.875)", str(pp.crop_pct));
}

void normalize_block(ViTConfig& c, int b, const std::string& source) {
  BlockConfig& bc = c.blocks[static_cast<size_t>(b)];
  const std::string f = fmt::format("blocks[{}].", b);
  require(bc.num_heads >= 0 && bc.num_heads <= kMaxHeads, source, f + "num_heads",
          fmt::format("0 (default) or a head count up to {}", kMaxHeads), str(bc.num_heads));
  require(bc.mlp_dim >= 0 && bc.mlp_dim <= kMaxMlpDim, source, f + "mlp_dim",
          fmt::format("0 (default) or a width up to {}", kMaxMlpDim), str(bc.mlp_dim));
  if (bc.num_heads == 0) bc.num_heads = c.num_heads;
  if (bc.mlp_dim == 0) bc.mlp_dim = c.mlp_dim;
  if (!bc.kept_heads.empty()) {
    require(static_cast<int>(bc.kept_heads.size()) == bc.num_heads, source, f + "kept_heads",
            fmt::format("{} indices (num_heads) or none", bc.num_heads),
            str(bc.kept_heads.size()) + " indices");
    std::set<int> seen;
    for (int h : bc.kept_heads) {
      require(h >= 0 && seen.insert(h).second, source, f + "kept_heads",
              "distinct non-negative head indices",
              fmt::format("[{}]", fmt::join(bc.kept_heads, ", ")));
    }
  }
  const int hd = bc.num_heads * c.head_dim;  // <= 1024 * 512: no overflow
  require(int64_t{3} * hd * c.embed_dim <= kMaxQkvElements, source, f + "num_heads",
          "a qkv weight under 2^28 elements", str(bc.num_heads));
  const int m = bc.mlp_dim;
  const std::pair<const char*, std::pair<int, int>> ranks[] = {
      {"qkv_rank", {bc.qkv_rank, std::min(c.embed_dim, 3 * hd)}},
      {"proj_rank", {bc.proj_rank, std::min(hd, c.embed_dim)}},
      {"fc1_rank", {bc.fc1_rank, std::min(c.embed_dim, m)}},
      {"fc2_rank", {bc.fc2_rank, std::min(m, c.embed_dim)}}};
  for (const auto& [field, rank_max] : ranks) {
    require(rank_max.first >= 0 && rank_max.first <= rank_max.second, source, f + field,
            fmt::format("0 (dense) or a rank in [1, {}]", rank_max.second), str(rank_max.first));
  }
  require_in(bc.merge_r, 0, kMaxTokens, source, f + "merge_r",
             " (tokens merged after the attention)");
  check_branch_owner(c, b, true, source);
  check_branch_owner(c, b, false, source);
  if (bc.delta_rank != 0) {
    // Every shared Linear gets a rank-r delta: r at most the smallest side among them.
    int most = 0;
    if (bc.attn_shared_with >= 0) most = std::min(c.embed_dim, hd);
    if (bc.mlp_shared_with >= 0)
      most = std::min(most > 0 ? most : c.embed_dim, std::min(c.embed_dim, m));
    require(bc.delta_rank > 0 && bc.delta_rank <= most, source, f + "delta_rank",
            most == 0
                ? std::string("0 (the block shares no weights)")
                : fmt::format("0 or a rank in [1, {}] (the shared Linears' smallest side)", most),
            str(bc.delta_rank));
  }
}

}  // namespace

int ViTConfig::block_heads(int b) const {
  const int h = b >= 0 && b < static_cast<int>(blocks.size())
                    ? blocks[static_cast<size_t>(b)].num_heads
                    : 0;
  return h > 0 ? h : num_heads;
}

int ViTConfig::block_mlp(int b) const {
  const int m =
      b >= 0 && b < static_cast<int>(blocks.size()) ? blocks[static_cast<size_t>(b)].mlp_dim : 0;
  return m > 0 ? m : mlp_dim;
}

int ViTConfig::merge_at(int b, int tokens) const {
  if (b < 0 || b >= static_cast<int>(blocks.size())) return 0;
  const BlockConfig& bc = blocks[static_cast<size_t>(b)];
  if (bc.skip_attn || bc.merge_r <= 0) return 0;
  // ToMe's cap: bipartite matching pairs each token of one half with one of the other, and the
  // class (and distillation) tokens never merge.
  return std::min(bc.merge_r, std::max(tokens - num_prefix_tokens(), 0) / 2);
}

std::vector<int> ViTConfig::token_counts() const {
  std::vector<int> n{num_tokens()};
  for (int b = 0; b < depth; ++b) n.push_back(n.back() - merge_at(b, n.back()));
  return n;
}

bool ViTConfig::merges_tokens() const {
  return std::any_of(blocks.begin(), blocks.end(),
                     [](const BlockConfig& b) { return b.merge_r > 0; });
}

void ViTConfig::normalize(const std::string& source) {
  require_in(image_size, 1, kMaxImageSize, source, "image_size", " (e.g. 28 or 224)");
  require_in(in_channels, 1, kMaxChannels, source, "in_channels", " (1 or 3)");
  require_in(patch_size, 1, image_size, source, "patch_size", " (e.g. 4 or 16)");
  require(image_size % patch_size == 0, source, "patch_size",
          fmt::format("a divisor of image_size {}", image_size), str(patch_size));
  require_in(reg_tokens, 0, 256, source, "reg_tokens", " (register tokens, e.g. 4)");
  require(num_tokens() <= kMaxTokens, source, "image_size / patch_size",
          fmt::format("at most {} tokens", kMaxTokens), str(num_tokens()) + " tokens");
  require_in(embed_dim, 1, kMaxEmbedDim, source, "embed_dim", " (e.g. 192)");
  require_in(depth, 1, kMaxDepth, source, "depth", " (e.g. 12)");
  require_in(num_heads, 1, kMaxHeads, source, "num_heads", " (e.g. 3)");
  require(head_dim >= 0 && head_dim <= kMaxHeadDim, source, "head_dim",
          fmt::format("0 (embed_dim / num_heads) or an integer in [1, {}]", kMaxHeadDim),
          str(head_dim));
  if (head_dim == 0) {
    require(embed_dim % num_heads == 0, source, "num_heads",
            fmt::format("a divisor of embed_dim {} (or set head_dim)", embed_dim), str(num_heads));
    head_dim = embed_dim / num_heads;
    require_in(head_dim, 1, kMaxHeadDim, source, "embed_dim / num_heads", "");
  }
  require_in(mlp_dim, 1, kMaxMlpDim, source, "mlp_dim", " (e.g. 4 * embed_dim)");
  require_in(num_classes, 1, kMaxClasses, source, "num_classes", "");
  require(pool == "token" || pool == "avg", source, "pool", "\"token\" or \"avg\"",
          "\"" + pool + "\"");
  require(!(distill_token && pool != "token"), source, "pool",
          "\"token\" when distill_token is true", "\"" + pool + "\"");
  require(class_token || pool == "avg", source, "pool",
          "\"avg\" when class_token is false (\"token\" pools the class token)",
          "\"" + pool + "\"");
  require(class_token || !distill_token, source, "distill_token",
          "false when class_token is false (DeiT's layout has both)", "true");
  require(ln_eps > 0 && std::isfinite(ln_eps), source, "ln_eps", "a positive number (e.g. 1e-6)",
          str(ln_eps));
  normalize_preprocess(preprocess, in_channels, source);

  if (blocks.empty()) blocks.resize(static_cast<size_t>(depth));
  require(static_cast<int>(blocks.size()) == depth, source, "blocks",
          fmt::format("{} entries (depth)", depth), str(blocks.size()) + " entries");
  for (int b = 0; b < depth; ++b) normalize_block(*this, b, source);
}

json ViTConfig::to_json() const {
  json jb = json::array();
  for (const auto& b : blocks) jb.push_back(block_to_json(b));
  json j{{"name", name},
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
  // The timm layout fields only when they differ from the default: files of the classic layout
  // keep the header older readers accept, and a new layout is refused by them (unknown field)
  // instead of silently run wrong.
  if (!class_token) j["class_token"] = false;
  if (reg_tokens != 0) j["reg_tokens"] = reg_tokens;
  if (no_embed_class) j["no_embed_class"] = true;
  if (fc_norm) j["fc_norm"] = true;
  return j;
}

ViTConfig ViTConfig::from_json(const json& j, const std::string& source) {
  jf::check_fields(j, kConfigFields, source, "");
  ViTConfig c;
  auto get_int = [&](const char* key, int fallback) {
    return jf::get_or(j, key, fallback, source, "", jf::as_int);
  };
  c.name = jf::get_or(j, "name", c.name, source, "", jf::as_string);
  c.image_size = get_int("image_size", c.image_size);
  c.in_channels = get_int("in_channels", c.in_channels);
  c.patch_size = get_int("patch_size", c.patch_size);
  c.embed_dim = get_int("embed_dim", c.embed_dim);
  c.depth = get_int("depth", c.depth);
  c.num_heads = get_int("num_heads", c.num_heads);
  c.head_dim = get_int("head_dim", c.head_dim);
  c.mlp_dim = get_int("mlp_dim", c.mlp_dim);
  c.num_classes = get_int("num_classes", c.num_classes);
  c.qkv_bias = jf::get_or(j, "qkv_bias", c.qkv_bias, source, "", jf::as_bool);
  c.distill_token = jf::get_or(j, "distill_token", c.distill_token, source, "", jf::as_bool);
  c.pool = jf::get_or(j, "pool", c.pool, source, "", jf::as_string);
  c.ln_eps = jf::get_or(j, "ln_eps", c.ln_eps, source, "", jf::as_double);
  c.class_token = jf::get_or(j, "class_token", c.class_token, source, "", jf::as_bool);
  c.reg_tokens = get_int("reg_tokens", c.reg_tokens);
  c.no_embed_class = jf::get_or(j, "no_embed_class", c.no_embed_class, source, "", jf::as_bool);
  c.fc_norm = jf::get_or(j, "fc_norm", c.fc_norm, source, "", jf::as_bool);
  if (const json* blocks = jf::find(j, "blocks")) {
    require(blocks->is_array(), source, "blocks", "a JSON array", core::json_type_name(*blocks));
    require(blocks->size() <= static_cast<size_t>(kMaxDepth), source, "blocks",
            fmt::format("at most {} entries", kMaxDepth), str(blocks->size()) + " entries");
    for (size_t i = 0; i < blocks->size(); ++i) {
      c.blocks.push_back(block_from_json((*blocks)[i], source, fmt::format("blocks[{}]", i)));
    }
  }
  if (const json* pp_json = jf::find(j, "preprocess")) {
    const json& p = *pp_json;
    jf::check_fields(p, kPreprocessFields, source, "preprocess");
    auto& pp = c.preprocess;
    pp.mean = jf::get_or(p, "mean", pp.mean, source, "preprocess", jf::as_float_list);
    pp.std = jf::get_or(p, "std", pp.std, source, "preprocess", jf::as_float_list);
    pp.interpolation =
        jf::get_or(p, "interpolation", pp.interpolation, source, "preprocess", jf::as_string);
    pp.crop_pct = jf::get_or(p, "crop_pct", pp.crop_pct, source, "preprocess", jf::as_float);
  }
  return c;
}

}  // namespace vitopt::io
