#include "pipeline/recipe.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "model/vit_config.h"

namespace vitopt::pipeline {

namespace {

// Reads keys of one YAML mapping, rejecting any key not read (typos).
class Section {
 public:
  Section(const YAML::Node& node, std::string path, const std::string& source)
      : node_(node), path_(std::move(path)), source_(source) {
    if (node_ && !node_.IsNull() && !node_.IsMap())
      core::throw_input("{}: '{}' must be a mapping of key: value", source_, path_);
  }
  template <typename T>
  void get(const std::string& key, T& out) {
    known_.insert(key);
    if (!node_ || !node_.IsMap() || !node_[key]) return;
    try {
      out = node_[key].as<T>();
    } catch (const YAML::Exception&) {
      core::throw_bad_field(source_, path_.empty() ? key : path_ + "." + key,
                            "a value of the right type", "'" + YAML::Dump(node_[key]) + "'");
    }
  }
  YAML::Node child(const std::string& key) {
    known_.insert(key);
    return node_ && node_.IsMap() ? node_[key] : YAML::Node();
  }
  void reject_unknown() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      const auto key = kv.first.as<std::string>();
      if (!known_.count(key))
        core::throw_input("{}: unknown key '{}{}' (known here: {})", source_,
                          path_.empty() ? "" : path_ + ".", key, fmt::join(known_, ", "));
    }
  }

 private:
  YAML::Node node_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> known_;
};

model::ViTConfig parse_model(const YAML::Node& node, const std::string& source) {
  Section s(node, "model", source);
  std::string preset = "vit-fmnist";
  s.get("preset", preset);
  auto c = model::preset(preset);
  bool shape_changed = false;
  auto get_shape = [&](const char* key, int& field) {
    const int before = field;
    s.get(key, field);
    shape_changed |= field != before;
  };
  s.get("image_size", c.image_size);
  s.get("channels", c.in_channels);
  s.get("patch_size", c.patch_size);
  get_shape("embed_dim", c.embed_dim);
  get_shape("depth", c.depth);
  get_shape("num_heads", c.num_heads);
  get_shape("mlp_dim", c.mlp_dim);
  s.get("num_classes", c.num_classes);
  s.get("distill_token", c.distill_token);
  s.get("pool", c.pool);
  s.reject_unknown();
  if (shape_changed) {
    c.head_dim = 0;
    c.blocks.clear();
    c.name = preset + "-custom";
  }
  c.normalize(source + " model");
  return c;
}

void parse_train(const YAML::Node& node, const std::string& source, Recipe& r) {
  Section s(node, "train", source);
  auto& o = r.train.options;
  s.get("epochs", o.epochs);
  s.get("batch_size", o.batch_size);
  s.get("lr", o.lr);
  s.get("min_lr", o.min_lr);
  s.get("weight_decay", o.weight_decay);
  s.get("warmup_epochs", o.warmup_epochs);
  s.get("label_smoothing", o.label_smoothing);
  s.get("grad_clip", o.grad_clip);
  s.get("crop_padding", o.crop_padding);
  s.get("hflip", o.hflip);
  s.get("workers", o.workers);
  s.get("checkpoint_every_steps", o.checkpoint_every_steps);
  s.get("limit", r.train.limit);
  s.get("val_limit", r.train.val_limit);
  s.get("validate", r.train.validate);
  s.reject_unknown();
}

}  // namespace

Recipe parse_recipe(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    core::throw_input("{}: invalid YAML at line {}: {}", source, e.mark.line + 1, e.msg);
  }
  Recipe r;
  r.source = source;
  r.text = yaml_text;
  Section s(root, "", source);
  s.get("name", r.name);
  std::string out;
  s.get("out", out);
  r.out = out.empty() ? std::filesystem::path("runs") / r.name : std::filesystem::path(out);
  s.get("seed", r.seed);
  s.get("threads", r.threads);
  s.get("device", r.device);
  s.get("data", r.train.data);
  s.get("resume", r.resume);
  r.train.config = parse_model(s.child("model"), source);
  parse_train(s.child("train"), source, r);
  {
    Section e(s.child("eval"), "eval", source);
    e.get("batch_size", r.eval_batch_size);
    e.get("limit", r.eval_limit);
    e.reject_unknown();
  }
  s.reject_unknown();
  return r;
}

Recipe load_recipe(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) core::throw_input("{}: recipe file not found", path.string());
  return parse_recipe(core::read_file_text(path), path.string());
}

}  // namespace vitopt::pipeline
