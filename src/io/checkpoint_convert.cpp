// convert_checkpoint: layout detection, facts from config.json / hints, tensor renames and the
// layer-scale fold (see checkpoint_convert.h).
// Legend: C embed dim, H heads, D head dim, N tokens, P patch.
#include "io/checkpoint_convert.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "io/metadata_keys.h"
#include "io/vit_config.h"

namespace vitopt::io {
namespace {

using nlohmann::json;
using Tensors = std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>;

// timm architecture name prefixes whose width and heads are fixed by the name.
struct Arch {
  const char* prefix;
  int dim, heads;
};
constexpr Arch kArchs[] = {
    {"vit_tiny_", 192, 3},    {"vit_small_", 384, 6},    {"vit_base_", 768, 12},
    {"vit_large_", 1024, 16}, {"vit_huge_", 1280, 16},   {"deit_tiny_", 192, 3},
    {"deit_small_", 384, 6},  {"deit_base_", 768, 12},   {"deit3_small_", 384, 6},
    {"deit3_base_", 768, 12}, {"deit3_large_", 1024, 16}};

// What config.json (timm or HF) records.
struct Facts {
  std::optional<int> heads;
  std::optional<double> ln_eps;
  std::string name = "imported", pool = "token", act = "gelu";
  std::optional<std::vector<float>> mean, std;
  std::optional<std::string> interpolation;
  std::optional<float> crop_pct;
  std::vector<std::string> class_names;
  bool pool_recorded = false;          // global_pool was in config.json
  std::optional<bool> no_embed_class;  // timm model_args.no_embed_class
  std::string source;  // "<path>" of the config, for messages
};

// Typed reads of config.json fields: a value of another type is an InputError naming the file and
// field (a hand-edited or foreign config must never end in a bare JSON exception).
class ConfigFields {
 public:
  explicit ConfigFields(std::string source) : source_(std::move(source)) {}
  std::string text(const json& v, const std::string& field) const {
    if (!v.is_string()) bad(field, "a string", v);
    return v.get<std::string>();
  }
  double number(const json& v, const std::string& field) const {
    if (!v.is_number()) bad(field, "a number", v);
    return v.get<double>();
  }
  int integer(const json& v, const std::string& field) const {
    if (!v.is_number_integer() || v.get<int64_t>() < -(1LL << 30) || v.get<int64_t>() > (1LL << 30))
      bad(field, "an integer", v);
    return static_cast<int>(v.get<int64_t>());
  }
  std::vector<float> floats(const json& v, const std::string& field) const {
    if (!v.is_array()) bad(field, "a list of numbers", v);
    std::vector<float> out;
    for (const auto& x : v) out.push_back(static_cast<float>(number(x, field + "[]")));
    return out;
  }
  std::vector<std::string> texts(const json& v, const std::string& field) const {
    if (!v.is_array()) bad(field, "a list of strings", v);
    std::vector<std::string> out;
    for (const auto& x : v) out.push_back(text(x, field + "[]"));
    return out;
  }
  [[noreturn]] void bad(const std::string& field, const std::string& expected,
                        const json& got) const {
    core::throw_bad_field(source_, field, expected, core::json_type_name(got) + " " + got.dump());
  }

 private:
  std::string source_;
};

// Hugging Face id2label {"0": "cat", ...}: the names of classes 0, 1, ... while they run on.
std::vector<std::string> hf_class_names(const json& id2label, const ConfigFields& c) {
  std::map<int64_t, std::string> labels;
  for (const auto& [k, v] : id2label.items()) {
    const bool digits = !k.empty() && k.size() <= 9 && std::all_of(k.begin(), k.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    if (!digits) c.bad("id2label", "class indices 0, 1, ... as keys", json(k));
    labels[std::stoll(k)] = c.text(v, "id2label." + k);
  }
  std::vector<std::string> names;
  for (const auto& [k, v] : labels) {
    if (k != static_cast<int64_t>(names.size())) break;
    names.push_back(v);
  }
  return names;
}

Facts read_facts(const std::filesystem::path& path, int dim) {
  Facts f;
  if (!std::filesystem::exists(path)) return f;
  f.source = path.string();
  const json j = core::json_parse(core::read_file_text(path), f.source);
  if (!j.is_object()) core::throw_input("{}: expected a JSON object", f.source);
  const ConfigFields c(f.source);
  if (j.contains("model_type") || j.contains("num_attention_heads")) {  // Hugging Face
    if (j.contains("model_type") && c.text(j["model_type"], "model_type") != "vit")
      core::throw_input("{}: model_type '{}': only Hugging Face 'vit' checkpoints are supported",
                        f.source, j["model_type"].get<std::string>());
    if (j.contains("num_attention_heads"))
      f.heads = c.integer(j["num_attention_heads"], "num_attention_heads");
    if (j.contains("layer_norm_eps")) f.ln_eps = c.number(j["layer_norm_eps"], "layer_norm_eps");
    if (j.contains("hidden_act")) f.act = c.text(j["hidden_act"], "hidden_act");
    f.name = "hf-vit";
    if (auto it = j.find("id2label"); it != j.end() && it->is_object())
      f.class_names = hf_class_names(*it, c);
    return f;
  }
  // timm hub config.json
  if (auto it = j.find("architecture"); it != j.end() && it->is_string()) {
    f.name = it->get<std::string>();
    for (const Arch& a : kArchs) {
      if (f.name.rfind(a.prefix, 0) != 0) continue;
      if (a.dim != dim)
        core::throw_input("{}: architecture '{}' has embed_dim {}, but the checkpoint's is {}",
                          f.source, f.name, a.dim, dim);
      f.heads = a.heads;
    }
  }
  if (auto it = j.find("global_pool"); it != j.end() && it->is_string()) {
    f.pool = it->get<std::string>();
    f.pool_recorded = true;
  }
  if (auto args = j.find("model_args"); args != j.end() && args->is_object()) {
    if (args->contains("num_heads"))
      f.heads = c.integer((*args)["num_heads"], "model_args.num_heads");
    if (auto gp = args->find("global_pool"); gp != args->end() && gp->is_string()) {
      f.pool = gp->get<std::string>();
      f.pool_recorded = true;
    }
    if (auto ne = args->find("no_embed_class"); ne != args->end() && !ne->is_null()) {
      if (!ne->is_boolean()) c.bad("model_args.no_embed_class", "true or false", *ne);
      f.no_embed_class = ne->get<bool>();
    }
    if (auto act = args->find("act_layer"); act != args->end() && !act->is_null())
      f.act = act->is_string() ? act->get<std::string>() : act->dump();
    for (const char* unsupported : {"pos_embed", "dynamic_img_size", "qk_norm"}) {
      if (auto u = args->find(unsupported);
          u != args->end() && !u->is_null() && *u != false && *u != "learn")
        core::throw_input("{}: model_args.{} = {}: not supported by vitopt's ViT", f.source,
                          unsupported, u->dump());
    }
  }
  if (auto pc = j.find("pretrained_cfg"); pc != j.end() && pc->is_object()) {
    if (pc->contains("mean")) f.mean = c.floats((*pc)["mean"], "pretrained_cfg.mean");
    if (pc->contains("std")) f.std = c.floats((*pc)["std"], "pretrained_cfg.std");
    if (auto v = pc->find("interpolation"); v != pc->end() && v->is_string())
      f.interpolation = v->get<std::string>();
    if (auto v = pc->find("crop_pct"); v != pc->end() && v->is_number())
      f.crop_pct = v->get<float>();
    if (auto v = pc->find("label_names"); v != pc->end() && v->is_array())
      f.class_names = c.texts(*v, "pretrained_cfg.label_names");
  }
  return f;
}

class Converter {
 public:
  Converter(const SafeTensorsFile& file) : in_(file), src_(file.source()) {}

  const std::vector<float>& take(const std::string& name, std::vector<int64_t>* shape = nullptr) {
    if (!in_.has(name)) core::throw_input("{}: tensor '{}' not found", src_, name);
    if (!io::dtype_is_float(in_.info(name).dtype))
      core::throw_input("{}: tensor '{}': expected a float dtype, got {}", src_, name,
                        dtype_name(in_.info(name).dtype));
    used_.insert(name);
    if (shape) *shape = in_.info(name).shape;
    cache_ = in_.read_f32(name);
    return cache_;
  }
  void put(const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    out_[name] = {std::move(shape), std::move(v)};
  }
  void copy(const std::string& from, const std::string& to) {
    std::vector<int64_t> shape;
    const auto& v = take(from, &shape);
    put(to, shape, v);
  }
  void refuse_unused() const {
    std::vector<std::string> extra;
    for (const auto& n : in_.names())
      if (!used_.count(n)) extra.push_back(n);
    if (extra.empty()) return;
    const size_t shown = std::min<size_t>(extra.size(), 8);
    core::throw_input("{}: {} tensor(s) of a layout vitopt does not import: [{}{}]", src_,
                      extra.size(),
                      fmt::join(extra.begin(), extra.begin() + static_cast<long>(shown), ", "),
                      shown < extra.size() ? ", ..." : "");
  }
  Tensors& out() { return out_; }

 private:
  const SafeTensorsFile& in_;
  std::string src_;
  std::set<std::string> used_;
  std::vector<float> cache_;
  Tensors out_;
};

int count_blocks(const SafeTensorsFile& file, const std::string& prefix) {
  int depth = 0;
  for (const auto& name : file.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const auto dot = name.find('.', prefix.size());
    try {
      depth = std::max(depth, std::stoi(name.substr(prefix.size(), dot - prefix.size())) + 1);
    } catch (const std::exception&) {
      core::throw_input("{}: tensor '{}': expected '{}<index>.<...>'", file.source(), name, prefix);
    }
  }
  if (depth == 0) core::throw_input("{}: no '{}<i>.*' tensors found", file.source(), prefix);
  return depth;
}

// h = proj(x) -> gamma * h  ==  (gamma row-scaled proj)(x): folded into the Linear feeding the
// residual, so the model has no layer-scale tensors left.
void fold_gamma(Tensors& t, const std::string& linear, const std::vector<float>& gamma,
                const std::string& src, const std::string& gamma_name) {
  for (const std::string& part : {linear + ".weight", linear + ".bias"})
    if (!t.count(part))
      core::throw_input("{}: tensor '{}' without '{}' to fold it into", src, gamma_name, part);
  auto& [wshape, w] = t.at(linear + ".weight");
  auto& b = t.at(linear + ".bias").second;
  if (wshape.size() != 2)
    core::throw_input("{}: tensor '{}.weight': expected 2 dimensions", src, linear);
  const size_t out = static_cast<size_t>(wshape[0]), in = static_cast<size_t>(wshape[1]);
  if (gamma.size() != out)
    core::throw_input("{}: tensor '{}': expected {} values (the rows of '{}.weight'), got {}", src,
                      gamma_name, out, linear, gamma.size());
  for (size_t o = 0; o < out; ++o) {
    for (size_t i = 0; i < in; ++i) w[o * in + i] *= gamma[o];
    b[o] *= gamma[o];
  }
}

void convert_timm(Converter& cv, const SafeTensorsFile& file, int depth) {
  const std::string& src = file.source();
  for (const char* name : {"pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                           "head.weight", "head.bias"})
    cv.copy(name, name);
  // Optional parts of timm's layout: class token, register tokens, and the final norm either on
  // every token (norm) or on the pooled features (fc_norm).
  for (const char* name :
       {"cls_token", "reg_token", "norm.weight", "norm.bias", "fc_norm.weight", "fc_norm.bias"})
    if (file.has(name)) cv.copy(name, name);
  if (file.has("dist_token")) {
    cv.copy("dist_token", "dist_token");
    cv.copy("head_dist.weight", "head_dist.weight");
    cv.copy("head_dist.bias", "head_dist.bias");
  }
  for (int b = 0; b < depth; ++b) {
    const std::string p = fmt::format("blocks.{}.", b);
    for (const char* part : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight",
                             "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
                             "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"})
      if (file.has(p + part)) cv.copy(p + part, p + part);
    if (file.has(p + "attn.qkv.bias")) cv.copy(p + "attn.qkv.bias", p + "attn.qkv.bias");
    for (auto [gamma, linear] :
         {std::pair{"ls1.gamma", "attn.proj"}, std::pair{"ls2.gamma", "mlp.fc2"}}) {
      if (!file.has(p + gamma)) continue;
      const std::vector<float> g = cv.take(p + gamma);
      fold_gamma(cv.out(), p + linear, g, src, p + gamma);
    }
  }
}

void convert_hf(Converter& cv, const SafeTensorsFile& file, int depth) {
  const std::string e = "vit.embeddings.";
  cv.copy(e + "cls_token", "cls_token");
  cv.copy(e + "position_embeddings", "pos_embed");
  cv.copy(e + "patch_embeddings.projection.weight", "patch_embed.proj.weight");
  cv.copy(e + "patch_embeddings.projection.bias", "patch_embed.proj.bias");
  cv.copy("vit.layernorm.weight", "norm.weight");
  cv.copy("vit.layernorm.bias", "norm.bias");
  cv.copy("classifier.weight", "head.weight");
  cv.copy("classifier.bias", "head.bias");
  for (int b = 0; b < depth; ++b) {
    const std::string p = fmt::format("vit.encoder.layer.{}.", b), q = fmt::format("blocks.{}.", b);
    const std::pair<const char*, const char*> renames[] = {
        {"layernorm_before.weight", "norm1.weight"},
        {"layernorm_before.bias", "norm1.bias"},
        {"layernorm_after.weight", "norm2.weight"},
        {"layernorm_after.bias", "norm2.bias"},
        {"attention.output.dense.weight", "attn.proj.weight"},
        {"attention.output.dense.bias", "attn.proj.bias"},
        {"intermediate.dense.weight", "mlp.fc1.weight"},
        {"intermediate.dense.bias", "mlp.fc1.bias"},
        {"output.dense.weight", "mlp.fc2.weight"},
        {"output.dense.bias", "mlp.fc2.bias"}};
    for (auto [from, to] : renames) cv.copy(p + from, q + to);
    // qkv rows = [query; key; value], as timm's qkv Linear.
    for (const char* kind : {"weight", "bias"}) {
      std::vector<float> joined;
      std::vector<int64_t> shape;
      bool present = true;
      for (const char* part : {"query", "key", "value"}) {
        const std::string name = p + "attention.attention." + part + "." + kind;
        if (!file.has(name)) {
          present = false;
          break;
        }
        std::vector<int64_t> s;
        const auto& v = cv.take(name, &s);
        joined.insert(joined.end(), v.begin(), v.end());
        shape = s;
      }
      if (!present) {
        if (std::string(kind) == "weight")
          core::throw_input(
              "{}: tensor '{}attention.attention.query.weight' (or key/value) not found",
              file.source(), p);
        continue;
      }
      shape[0] *= 3;
      cv.put(q + "attn.qkv." + kind, shape, std::move(joined));
    }
  }
}

}  // namespace

bool is_foreign_checkpoint(const SafeTensorsFile& file) {
  return file.metadata_value(kConfigKey) == nullptr;
}

SafeTensorsFile convert_checkpoint(const SafeTensorsFile& file, const ImportHints& hints) {
  return SafeTensorsFile::parse(convert_checkpoint_bytes(file, hints),
                                file.source() + " (imported)");
}

std::vector<uint8_t> convert_checkpoint_bytes(const SafeTensorsFile& file,
                                              const ImportHints& hints) {
  const std::string& src = file.source();
  for (const char* key : {kFormatVersionKey, kQuantKey, kClassNamesKey}) {
    if (file.metadata_value(key) != nullptr) {
      core::throw_input(
          "{}: metadata '{}' without '{}': a vitopt file stores its config; "
          "without it the file would be read as a timm checkpoint and '{}' "
          "ignored",
          src, key, kConfigKey, key);
    }
  }
  const bool hf = file.has("vit.embeddings.patch_embeddings.projection.weight");
  const std::string patch =
      hf ? "vit.embeddings.patch_embeddings.projection.weight" : "patch_embed.proj.weight";
  if (!file.has(patch)) {
    for (const char* other :
         {"deit.embeddings.cls_token", "embeddings.patch_embeddings.projection.weight"})
      if (file.has(other))
        core::throw_input(
            "{}: tensor '{}': this Hugging Face layout is not supported (only "
            "ViTForImageClassification names 'vit.*' + 'classifier.*')",
            src, other);
    core::throw_input(
        "{}: neither timm ('patch_embed.proj.weight') nor Hugging Face ViT "
        "('vit.embeddings.patch_embeddings.projection.weight') tensor names found",
        src);
  }
  // Layouts we refuse, by name.
  const std::pair<const char*, const char*> refused[] = {
      {"blocks.0.attn.q_norm.weight", "qk-norm"},
      {"attn_pool.latent", "attention-pool head (global_pool='map')"}};
  for (auto [tensor, what] : refused)
    if (file.has(tensor))
      core::throw_input("{}: tensor '{}': {} is not supported by vitopt's ViT; cannot import", src,
                        tensor, what);
  if (hf && !file.has("vit.embeddings.cls_token"))
    core::throw_input(
        "{}: tensor 'vit.embeddings.cls_token' not found: a Hugging Face ViT always "
        "has one; cannot import",
        src);
  if (!hf && file.has("norm.weight") == file.has("fc_norm.weight"))
    core::throw_input(
        "{}: expected exactly one final LayerNorm, 'norm.weight' (on every token) or "
        "'fc_norm.weight' (on the pooled features), got {}; cannot import",
        src, file.has("norm.weight") ? "both" : "neither");

  const auto& pw = file.info(patch).shape;
  if (pw.size() != 4 || pw[2] != pw[3])
    core::throw_input("{}: tensor '{}': expected (C, in, P, P), got {} dims", src, patch,
                      pw.size());
  const int C = static_cast<int>(pw[0]);
  const std::filesystem::path cfg_path =
      hints.config_json.empty() ? std::filesystem::path(src).parent_path() / "config.json"
                                : hints.config_json;
  Facts f = read_facts(cfg_path, C);
  if (f.act != "gelu" && f.act != "\"gelu\"")
    core::throw_input("{}: activation '{}': vitopt's ViT uses exact GELU only", f.source, f.act);
  const bool class_token = file.has(hf ? "vit.embeddings.cls_token" : "cls_token");
  const bool fc_norm = file.has("fc_norm.weight");
  // timm pools the class token by default; without one (class_token=False) or with fc_norm
  // (timm's default for global_pool='avg') and no config.json saying otherwise, the pool is avg.
  if (!f.pool_recorded && (!class_token || fc_norm)) f.pool = "avg";
  if (f.pool != "token" && f.pool != "avg")
    core::throw_input("{}: global_pool '{}': vitopt supports 'token' and 'avg'", f.source, f.pool);
  if (hints.num_heads && f.heads && *hints.num_heads != *f.heads)
    core::throw_input("{}: --import-heads {} disagrees with {} ({} heads)", src, *hints.num_heads,
                      f.source, *f.heads);
  const int depth = count_blocks(file, hf ? "vit.encoder.layer." : "blocks.");
  Converter cv(file);
  if (hf) {
    convert_hf(cv, file, depth);
  } else {
    convert_timm(cv, file, depth);
  }
  cv.refuse_unused();
  Tensors& t = cv.out();
  // Heads last: a damaged or foreign-layout file is named for what is wrong with its tensors.
  const std::optional<int> heads = hints.num_heads ? hints.num_heads : f.heads;
  if (!heads)
    core::throw_input(
        "{}: the number of attention heads is not recorded in the checkpoint and no "
        "config.json next to it says it (timm: model_args.num_heads or a known "
        "architecture name; Hugging Face: num_attention_heads); pass --import-heads H",
        src);
  if (*heads <= 0 || C % *heads != 0)
    core::throw_input("{}: heads: expected a divisor of embed_dim {}, got {}", src, C, *heads);

  // Config: shapes + facts.
  const int P = static_cast<int>(pw[2]), in_ch = static_cast<int>(pw[1]);
  const bool distilled = t.count("dist_token") != 0;
  int reg_tokens = 0;
  if (auto it = t.find("reg_token"); it != t.end()) {
    const auto& rs = it->second.first;
    if (rs.size() != 3 || rs[0] != 1 || rs[2] != C || rs[1] < 1 || rs[1] > 256)
      core::throw_input("{}: tensor 'reg_token': expected (1, R, {}) with 1 <= R <= 256", src, C);
    reg_tokens = static_cast<int>(rs[1]);
  }
  if (distilled && !class_token)
    core::throw_input("{}: tensor 'dist_token' without 'cls_token': not a DeiT layout", src);
  const int prefix = (class_token ? 1 : 0) + (distilled ? 1 : 0) + reg_tokens;
  // Shape of a converted tensor that a ViT must have (a clear error, not std::out_of_range).
  auto shape_of = [&](const std::string& name, size_t dims) -> const std::vector<int64_t>& {
    auto it = t.find(name);
    if (it == t.end())
      core::throw_input("{}: tensor '{}' not found (every block of a timm ViT has it)", src, name);
    if (it->second.first.size() != dims)
      core::throw_input("{}: tensor '{}': expected {} dimensions, got {}", src, name, dims,
                        it->second.first.size());
    return it->second.first;
  };
  const auto& pe = shape_of("pos_embed", 3);
  const int64_t rows = pe.size() == 3 ? pe[1] : -1;
  auto is_square = [](int64_t n) {
    const auto g =
        static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(n, 0)))));
    return n > 0 && g * g == n;
  };
  // Whether the position embedding covers the prefix tokens (timm's default) or the patches only
  // (no_embed_class): config.json says, else the row count does (prefix + a square, or a square).
  const bool no_embed_class =
      f.no_embed_class.value_or(prefix > 0 && !is_square(rows - prefix) && is_square(rows));
  const int64_t patches = no_embed_class ? rows : rows - prefix;
  const auto grid = static_cast<int64_t>(
      std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(patches, 0)))));
  if (!is_square(patches))
    core::throw_input(
        "{}: position embedding: expected (1, {}a square number of patches, C), got {} dims / "
        "{} rows",
        src, no_embed_class ? "" : fmt::format("{} prefix token(s) + ", prefix), pe.size(),
        pe.size() == 3 ? pe[1] : 0);
  // The config, built and validated (normalize) as every reader of the file will see it.
  const int hd = C / *heads;
  ViTConfig config;
  config.name = f.name;
  config.image_size = static_cast<int>(grid) * P;
  config.in_channels = in_ch;
  config.patch_size = P;
  config.embed_dim = C;
  config.depth = depth;
  config.num_heads = *heads;
  config.head_dim = hd;
  config.mlp_dim = static_cast<int>(shape_of("blocks.0.mlp.fc1.weight", 2)[0]);
  config.num_classes = static_cast<int>(shape_of("head.weight", 2)[0]);
  config.qkv_bias = t.count("blocks.0.attn.qkv.bias") != 0;
  config.distill_token = distilled;
  config.class_token = class_token;
  config.reg_tokens = reg_tokens;
  config.no_embed_class = no_embed_class;
  config.fc_norm = fc_norm;
  config.pool = f.pool;
  config.ln_eps = f.ln_eps.value_or(1e-6);
  config.blocks.resize(static_cast<size_t>(depth));
  for (int b = 0; b < depth; ++b) {
    const std::string p = fmt::format("blocks.{}.", b);
    BlockConfig& bc = config.blocks[static_cast<size_t>(b)];
    bc.mlp_dim = static_cast<int>(shape_of(p + "mlp.fc1.weight", 2)[0]);
    const int64_t qkv_rows = shape_of(p + "attn.qkv.weight", 2)[0];
    if (qkv_rows % (3 * hd) != 0)
      core::throw_input("{}: block {}: qkv rows {} are not 3 x heads x head_dim {}", src, b,
                        qkv_rows, hd);
    bc.num_heads = static_cast<int>(qkv_rows / (3 * hd));
  }
  Preprocess& pp = config.preprocess;
  pp.mean = hints.mean ? *hints.mean
                       : f.mean.value_or(in_ch == 3 ? std::vector<float>{0.485f, 0.456f, 0.406f}
                                                    : std::vector<float>{0.5f});
  pp.std = hints.std ? *hints.std
                     : f.std.value_or(in_ch == 3 ? std::vector<float>{0.229f, 0.224f, 0.225f}
                                                 : std::vector<float>{0.5f});
  pp.interpolation = f.interpolation.value_or(in_ch == 3 ? "bicubic" : "bilinear");
  // timm's DEFAULT_CROP_PCT for an ImageNet-sized RGB model when pretrained_cfg does not say.
  pp.crop_pct = f.crop_pct.value_or(in_ch == 3 && config.image_size == 224 ? 0.875f : 1.0f);
  config.normalize(f.source.empty() ? src + " (imported)"
                                    : src + " (imported with " + f.source + ")");
  SafeTensorsWriter w;
  for (const auto& [name, tensor] : t) w.add_f32(name, tensor.first, tensor.second.data());
  w.set_metadata(kConfigKey, config.to_json().dump());
  w.set_metadata(kFormatVersionKey, std::to_string(kFormatVersion));
  w.set_metadata(kFormatKey, kFormatValue);
  if (!f.class_names.empty()) w.set_metadata(kClassNamesKey, json(f.class_names).dump());
  return w.serialize();
}

}  // namespace vitopt::io
