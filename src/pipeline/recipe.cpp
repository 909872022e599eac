#include "pipeline/recipe.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "io/merge_schedule.h"
#include "io/presets.h"
#include "io/vit_config.h"

namespace vitopt::pipeline {

namespace {

// Where values come from, for messages: the recipe file, or the --set that wrote a key path.
struct Origin {
  std::string source;
  std::map<std::string, std::string> overridden;  // parser path -> "--set ..." text
  std::string of(const std::string& path) const {
    const auto it = overridden.find(path);
    return it == overridden.end() ? source : "--set " + it->second;
  }
};

// Reads keys of one YAML mapping, rejecting any key not read (typos).
class Section {
 public:
  Section(const YAML::Node& node, std::string path, const Origin& origin)
      : node_(node), path_(std::move(path)), origin_(origin) {
    if (node_ && !node_.IsNull() && !node_.IsMap())
      core::throw_input("{}: '{}' must be a mapping of key: value", origin_.of(path_), path_);
  }
  // A key read as a string and converted by `parse` (which throws its own InputError).
  template <typename T, typename Parse>
  void get_as(const std::string& key, T& out, Parse parse) {
    std::string text;
    get(key, text);
    if (!text.empty()) out = parse(text);
  }
  // A list of words, written "a,b" or [a, b].
  void get_list(const std::string& key, std::vector<std::string>& out) {
    known_.insert(key);
    if (!node_ || !node_.IsMap() || !node_[key]) return;
    const YAML::Node v = node_[key];
    if (v.IsSequence()) {
      std::string joined;
      for (const auto& item : v) {
        if (!item.IsScalar()) bad_type(key, "a list of words");
        joined += (joined.empty() ? "" : ",") + item.Scalar();
      }
      out = split_list(joined);
    } else {
      std::string text;
      get(key, text);
      out = split_list(text);
    }
  }
  template <typename T>
  void get(const std::string& key, std::optional<T>& out) {
    known_.insert(key);
    if (!node_ || !node_.IsMap() || !node_[key]) return;
    T value{};
    get(key, value);
    out = value;
  }
  template <typename T>
  void get(const std::string& key, T& out) {
    known_.insert(key);
    if (!node_ || !node_.IsMap() || !node_[key]) return;
    try {
      out = node_[key].as<T>();
    } catch (const YAML::Exception&) {
      bad_type(key, "a value of the right type");
    }
  }
  YAML::Node child(const std::string& key) {
    known_.insert(key);
    return node_ && node_.IsMap() ? node_[key] : YAML::Node();
  }
  void reject_unknown() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar())
        core::throw_input("{}: '{}' has a key that is not a word: '{}'", origin_.of(path_),
                          path_.empty() ? "the recipe" : path_, YAML::Dump(kv.first));
      const auto key = kv.first.as<std::string>();
      if (!known_.count(key))
        core::throw_input("{}: unknown key '{}' (known here: {})", origin_.of(full(key)), full(key),
                          fmt::join(known_, ", "));
    }
  }
  const std::string& path() const { return path_; }
  // "<file or --set>: <path>", for messages about the section as a whole.
  std::string where() const { return origin_.of(path_) + ": " + path_; }

 private:
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] void bad_type(const std::string& key, const std::string& expected) const {
    core::throw_bad_field(origin_.of(full(key)), full(key), expected,
                          "'" + YAML::Dump(node_[key]) + "'");
  }
  static std::vector<std::string> split_list(const std::string& text);

  YAML::Node node_;
  std::string path_;
  const Origin& origin_;
  std::set<std::string> known_;
};

// "heads,neurons" -> {"heads", "neurons"}.
std::vector<std::string> Section::split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char ch : text + ",") {
    if (ch == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (ch != ' ') {
      item += ch;
    }
  }
  return out;
}

// A YAML tree as text with mapping keys sorted and no styling, so that two recipes meaning the
// same thing (comments, order, flow or block style) give the same fingerprint.
std::string canonical(const YAML::Node& node) {
  if (!node || node.IsNull()) return "~";
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  std::string out;
  if (node.IsSequence()) {
    out = "[";
    for (const auto& item : node) out += canonical(item) + ",";
    return out + "]";
  }
  std::map<std::string, std::string> sorted;
  for (const auto& kv : node) sorted[kv.first.as<std::string>()] = canonical(kv.second);
  out = "{";
  for (const auto& [k, v] : sorted) out += k + ":" + v + ",";
  return out + "}";
}

io::ViTConfig parse_model(const YAML::Node& node, const Origin& origin) {
  Section s(node, "model", origin);
  std::string preset = "vit-fmnist";
  s.get("preset", preset);
  auto c = io::preset(preset);
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
  s.get("class_token", c.class_token);
  s.get("reg_tokens", c.reg_tokens);
  s.get("no_embed_class", c.no_embed_class);
  s.get("fc_norm", c.fc_norm);
  s.reject_unknown();
  if (shape_changed) {
    c.head_dim = 0;
    c.blocks.clear();
    c.name = preset + "-custom";
  }
  c.normalize(origin.source + " model");
  return c;
}

void parse_train(const YAML::Node& node, const Origin& origin, Recipe& r) {
  Section s(node, "train", origin);
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

// A stage section is a list of mappings, each with a unique `name` and an optional `from`.
template <typename Entry, typename Fill>
std::vector<Entry> parse_stage_list(const YAML::Node& node, const std::string& key,
                                    const Origin& origin, Fill fill) {
  std::vector<Entry> out;
  if (!node || node.IsNull()) return out;
  if (!node.IsSequence())
    core::throw_input("{}: '{}' must be a list of entries (- name: ...)", origin.of(key), key);
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = fmt::format("{}[{}]", key, i);
    Section s(node[i], path, origin);
    Entry e;
    s.get("name", e.name);
    if (e.name.empty() || e.name.find_first_of("/\\ ") != std::string::npos)
      core::throw_bad_field(origin.of(path + ".name"), path + ".name", "a file-name-safe name",
                            "'" + e.name + "'");
    if (!names.insert(e.name).second)
      core::throw_bad_field(origin.of(path + ".name"), path + ".name", "a name unique in " + key,
                            "'" + e.name + "'");
    s.get("from", e.from);
    fill(s, e);
    s.reject_unknown();
    e.canonical = canonical(node[i]);
    out.push_back(std::move(e));
  }
  return out;
}

void parse_quantize(Section& s, QuantizeStage& e) {
  auto& r = e.request;
  s.get("wbits", r.ptq.wbits);
  std::string abits;
  s.get("abits", abits);
  if (abits == "none") {
    r.ptq.abits.reset();
  } else if (!abits.empty()) {
    try {
      r.ptq.abits = std::stoi(abits);
    } catch (const std::exception&) {
      core::throw_input("quantize.abits: expected a bit width 2..16 or none, got '{}'", abits);
    }
  }
  s.get_as("scheme", r.ptq.w_symmetric, [](const std::string& v) {
    if (v != "sym" && v != "asym") core::throw_input("quantize.scheme: expected sym or asym, got '{}'", v);
    return v == "sym";
  });
  s.get_as("granularity", r.ptq.w_per_channel, [](const std::string& v) {
    if (v != "channel" && v != "tensor")
      core::throw_input("quantize.granularity: expected channel or tensor, got '{}'", v);
    return v == "channel";
  });
  s.get_as("observer", r.ptq.a_observer.kind,
           [](const std::string& v) { return quant::parse_observer(v, "quantize.observer"); });
  std::optional<int> attn_bits;
  s.get("attn_bits", attn_bits);
  if (attn_bits) r.ptq.attn_bits = attn_bits;
  s.get("prob_bits", r.ptq.prob_bits);
  s.get("prob_quantizer", r.ptq.prob_quantizer);
  s.get("calib_images", r.calib_images);
  s.get("qat_epochs", r.qat_epochs);
  s.get("qat_images", r.qat_images);
  s.get("qat_lr", r.qat_lr);
  s.get("lsq", r.lsq);
  s.get("size_budget_mb", r.size_budget_mb);
}

void parse_prune(Section& s, PruneStage& e) {
  auto& r = e.request;
  s.get_list("methods", r.methods);
  s.get("criterion", r.criterion);
  s.get("amount", r.amount);
  s.get("nm", r.nm);
  s.get("steps", r.steps);
  s.get("finetune_epochs", r.finetune_epochs);
  s.get("finetune_limit", r.finetune.limit);
  s.get("finetune_lr", r.finetune.lr);
  s.get("per_layer", r.per_layer);
  s.get("calib_images", r.calib_images);
}

void parse_distill(Section& s, DistillStage& e) {
  auto& r = e.request;
  std::vector<std::string> modes;
  s.get("student", r.student);
  s.get_list("modes", modes);
  if (!modes.empty()) r.runs = {fmt::format("{}", fmt::join(modes, ","))};
  s.get("temperature", r.settings.temperature);
  s.get("alpha", r.settings.alpha);
  s.get("feature_weight", r.settings.feature_weight);
  s.get("attn_weight", r.settings.attn_weight);
  s.get("cache_teacher", r.settings.cache_teacher);
  s.get("epochs", r.options.epochs);
  s.get("lr", r.options.lr);
  s.get("batch_size", r.options.batch_size);
  s.get("warmup_epochs", r.options.warmup_epochs);
  s.get("limit", r.limit);
  s.get("val_limit", r.val_limit);
}

void parse_factorize(Section& s, FactorizeStage& e) {
  auto& r = e.request;
  std::optional<double> energy, rank_ratio;
  s.get("energy", energy);
  s.get("rank_ratio", rank_ratio);
  r.energy = energy;
  r.rank_ratio = rank_ratio;
  s.get("param_budget", r.param_budget);
  s.get_list("layers", r.layers);
  s.get("method", r.method);
  s.get("require_speedup", r.require_speedup);
  s.get("finetune_epochs", r.finetune_epochs);
  s.get("finetune_limit", r.finetune.limit);
  s.get("finetune_lr", r.finetune.lr);
  s.get("distill", r.distill);
  s.get("calib_images", r.calib_images);
}

void parse_share(Section& s, ShareStage& e) {
  auto& r = e.request;
  s.get("groups", r.groups);
  s.get("num_groups", r.num_groups);
  s.get("init", r.init);
  s.get_list("what", r.what);
  s.get("delta_rank", r.delta_rank);
  s.get("finetune_epochs", r.finetune_epochs);
  s.get("finetune_limit", r.finetune.limit);
  s.get("finetune_lr", r.finetune.lr);
  std::vector<std::string> modes;
  s.get_list("distill_modes", modes);
  if (!modes.empty()) r.distill_modes = fmt::format("{}", fmt::join(modes, ","));
  s.get("calib_images", r.calib_images);
}

void parse_circuits(Section& s, CircuitsStage& e) {
  auto& r = e.request;
  std::optional<double> threshold, keep_ratio;
  s.get("method", r.method);
  s.get("threshold", threshold);
  s.get("keep_ratio", keep_ratio);
  if (threshold) r.thresholds = {*threshold};
  if (keep_ratio) r.keep_ratios = {*keep_ratio};
  s.get("level", r.level);
  s.get("ablation", r.ablation);
  s.get("engine", r.engine);
  s.get("analysis_batches", r.analysis_batches);
  s.get("analysis_batch_size", r.analysis_batch_size);
  s.get("use_task_loss", r.use_task_loss);
  s.get("ig_steps", r.ig_steps);
  s.get("rank", r.rank);
  s.get("neuron_group", r.neuron_group);
  s.get("finetune_epochs", r.finetune_epochs);
  s.get("finetune_limit", r.finetune.limit);
  s.get("finetune_lr", r.finetune.lr);
  // Checked now, not when the stage runs hours into the pipeline (the file is the stage's own);
  // a misspelt key first, as it is the likelier cause of a missing value.
  s.reject_unknown();
  auto check = r;
  check.model = "input.safetensors";
  check.out = e.name + ".safetensors";
  try {
    circuits::validate_request(check);
  } catch (const core::InputError& err) {
    core::throw_input("{}: {}", s.where(), err.what());
  }
}

void parse_merge(Section& s, MergeStage& e) {
  auto& r = e.request;
  // `r: 8`, `r: 8,8,4`, `r: [8, 8, 4]` or `r: decreasing:8`: the spec of `vitopt merge --r`.
  std::vector<std::string> items;
  s.get_list("r", items);
  if (!items.empty()) r.r = fmt::format("{}", fmt::join(items, ","));
  s.get("finetune_epochs", r.finetune_epochs);
  s.get("finetune_limit", r.finetune.limit);
  s.get("finetune_lr", r.finetune.lr);
  std::vector<std::string> modes;
  s.get_list("distill_modes", modes);
  if (!modes.empty()) r.distill_modes = fmt::format("{}", fmt::join(modes, ","));
  s.reject_unknown();
  auto check = r;
  check.out = e.name + ".safetensors";
  try {
    merge::validate_request(check);
    io::parse_merge_schedule(r.r, 1 + static_cast<int>(std::count(r.r.begin(), r.r.end(), ',')),
                             "r");
  } catch (const core::InputError& err) {
    core::throw_input("{}: {}", s.where(), err.what());
  }
}

void parse_search(Section& s, SearchStage& e) {
  auto& r = e.request;
  // One budget set per stage ("params=25%,latency-ms=0.3"): the stage delivers one model.
  std::string budget;
  s.get("budget", budget);
  if (!budget.empty()) r.budgets = {budget};
  std::vector<std::string> objectives;
  s.get_list("objectives", objectives);
  if (!objectives.empty()) r.objectives = fmt::format("{}", fmt::join(objectives, ","));
  std::string space;
  s.get("space", space);
  r.space = space;
  s.get("population", r.evolution.population);
  s.get("generations", r.evolution.generations);
  s.get("mutation", r.evolution.mutation);
  s.get("crossover", r.evolution.crossover);
  s.get("criterion", r.criterion);
  s.get("calib_images", r.calib_images);
  s.get("holdout_images", r.holdout_images);
  s.get("latency_batch", r.measure.batch);
  s.get("latency_threads", r.measure.threads);
  s.get("latency_runs", r.measure.runs);
  s.get("single_techniques", r.single_techniques);
  s.get("deliver_singles", r.deliver_singles);
  s.get("student_epochs", r.student_epochs);
  s.get("supernet_epochs", r.supernet_epochs);
  s.get("supernet_random", r.supernet_random);
  s.get("finetune_epochs", r.finetune_epochs);
  s.get("finetune_limit", r.finetune.limit);
  s.get("finetune_lr", r.finetune.lr);
  std::vector<std::string> modes;
  s.get_list("distill_modes", modes);
  if (!modes.empty()) r.distill_modes = fmt::format("{}", fmt::join(modes, ","));
  s.reject_unknown();
  auto check = r;
  check.model = "input.safetensors";
  check.out_dir = e.name;
  try {
    search::validate_request(check);
  } catch (const core::InputError& err) {
    core::throw_input("{}: {}", s.where(), err.what());
  }
}

}  // namespace

namespace {

Recipe parse_recipe_yaml(YAML::Node root, const std::string& yaml_text, const std::string& source,
                         const std::vector<Override>& overrides);

}  // namespace

Recipe parse_recipe(const std::string& yaml_text, const std::string& source,
                    const std::vector<Override>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    core::throw_input("{}: invalid YAML at line {}: {}", source, e.mark.line + 1, e.msg);
  }
  try {
    return parse_recipe_yaml(root, yaml_text, source, overrides);
  } catch (const YAML::Exception& e) {
    // The field readers name what they expect; this is the last resort for YAML that no reader
    // anticipated (an alias or a collection where a word belongs): still the file and the place.
    if (e.mark.is_null()) core::throw_input("{}: {}", source, e.msg);
    core::throw_input("{}: line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1,
                      e.msg);
  }
}

namespace {

Recipe parse_recipe_yaml(YAML::Node root, const std::string& yaml_text, const std::string& source,
                         const std::vector<Override>& overrides) {
  Origin origin{source, apply_overrides(root, overrides)};
  Recipe r;
  r.source = source;
  r.text = yaml_text;
  Section s(root, "", origin);
  s.get("name", r.name);
  std::string out;
  s.get("out", out);
  r.out = out.empty() ? std::filesystem::path("runs") / r.name : std::filesystem::path(out);
  std::string from;
  s.get("from", from);
  r.from_model = from;
  s.get("seed", r.seed);
  s.get("threads", r.threads);
  s.get("device", r.device);
  s.get("data", r.train.data);
  s.get("resume", r.resume);
  r.train.config = parse_model(s.child("model"), origin);
  parse_train(s.child("train"), origin, r);
  {
    Section e(s.child("eval"), "eval", origin);
    e.get("batch_size", r.eval_batch_size);
    e.get("limit", r.eval_limit);
    e.get("engine", r.eval_engine);
    if (r.eval_engine != "torch" && r.eval_engine != "runtime")
      core::throw_input("{}: eval.engine: expected 'torch' or 'runtime', got '{}'",
                        origin.of("eval.engine"), r.eval_engine);
    e.get("latency_budget_ms", r.latency_budget_ms);
    e.get("size_budget_mb", r.size_budget_mb);
    e.reject_unknown();
  }
  r.quantize = parse_stage_list<QuantizeStage>(s.child("quantize"), "quantize", origin, parse_quantize);
  r.prune = parse_stage_list<PruneStage>(s.child("prune"), "prune", origin, parse_prune);
  r.distill = parse_stage_list<DistillStage>(s.child("distill"), "distill", origin, parse_distill);
  r.factorize =
      parse_stage_list<FactorizeStage>(s.child("factorize"), "factorize", origin, parse_factorize);
  r.share = parse_stage_list<ShareStage>(s.child("share"), "share", origin, parse_share);
  r.circuits =
      parse_stage_list<CircuitsStage>(s.child("circuits"), "circuits", origin, parse_circuits);
  r.merge = parse_stage_list<MergeStage>(s.child("merge"), "merge", origin, parse_merge);
  r.search = parse_stage_list<SearchStage>(s.child("search"), "search", origin, parse_search);
  s.reject_unknown();
  const YAML::Node& croot = root;  // const: reading absent keys must not add them
  r.context_canonical = fmt::format("data={} seed={} device={}", canonical(croot["data"]),
                                    canonical(croot["seed"]), canonical(croot["device"]));
  r.train_canonical = "model=" + canonical(croot["model"]) + " train=" + canonical(croot["train"]);
  r.eval_canonical = canonical(croot["eval"]);
  for (const auto& o : overrides) r.overrides.push_back(o.text);
  return r;
}

}  // namespace

Recipe load_recipe(const std::filesystem::path& path, const std::vector<Override>& overrides) {
  if (!std::filesystem::exists(path)) core::throw_input("{}: recipe file not found", path.string());
  return parse_recipe(core::read_file_text(path), path.string(), overrides);
}

}  // namespace vitopt::pipeline
