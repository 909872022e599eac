// The search space (see space.h): the YAML spec, its resolution against a base config and the
// student presets (per-block choices and input sides of each base), the genetic operators and the
// genome -> ViTConfig edit. No LibTorch: every size follows from the config.
#include "search/space.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "io/json_fields.h"
#include "io/presets.h"

namespace vitopt::search {
namespace {

using core::throw_bad_field;
using nlohmann::json;
namespace jf = io::json_fields;

constexpr int kMaxMergeR = 16384;  // ViTConfig's token limit: more can never merge
constexpr int kMaxMlpStep = 1 << 18;

// ---------------------------------------------------------------------------------------------
// The YAML spec.

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// 32 (fp32) or an integer width the quantizers support.
bool valid_bits(int b) { return b == 32 || (b >= 2 && b <= 16); }

// Every value check of a spec, shared by the YAML reader and Space (a spec built in code).
void validate(const SpaceSpec& s, const std::string& source) {
  auto need = [&](bool ok, const std::string& key, const std::string& expected,
                  const std::string& actual) {
    if (!ok) throw_bad_field(source, "blocks." + key, expected, actual);
  };
  for (int h : s.heads)
    need(h >= 1, "heads", "\"all\" or a list of head counts >= 1", std::to_string(h));
  need(s.mlp_step >= 1 && s.mlp_step <= kMaxMlpStep, "mlp_width.step",
       fmt::format("an integer in [1, {}]", kMaxMlpStep), std::to_string(s.mlp_step));
  need(s.mlp_min_ratio > 0 && s.mlp_min_ratio <= 1, "mlp_width.min_ratio", "a number in (0, 1]",
       fmt::format("{}", s.mlp_min_ratio));
  need(!s.rank_ratios.empty(), "rank_ratio", "a non-empty list", "[]");
  for (double r : s.rank_ratios)
    need(r > 0 && r <= 1, "rank_ratio", "ratios in (0, 1] (1: dense)", fmt::format("{}", r));
  for (const auto& [key, bits] :
       {std::pair{"weight_bits", &s.weight_bits}, std::pair{"input_bits", &s.input_bits}}) {
    need(!bits->empty(), key, "a non-empty list", "[]");
    for (int b : *bits)
      need(valid_bits(b), key, "bit widths in [2, 16] or 32 (fp32)", std::to_string(b));
  }
  need(!s.merge_r.empty(), "merge_r", "a non-empty list", "[]");
  for (int r : s.merge_r)
    need(r >= 0 && r <= kMaxMergeR, "merge_r", fmt::format("token counts in [0, {}]", kMaxMergeR),
         std::to_string(r));
  auto need_model = [&](bool ok, const std::string& key, const std::string& expected,
                        const std::string& actual) {
    if (!ok) throw_bad_field(source, "model." + key, expected, actual);
  };
  need_model(!s.resolution.empty(), "resolution", "a non-empty list", "[]");
  for (double r : s.resolution)
    need_model(r > 0 && r <= 1, "resolution", "ratios in (0, 1] of the model's input side",
               fmt::format("{}", r));
  const std::vector<std::string> names = io::preset_names();
  for (const std::string& name : s.students) {
    need_model(contains(names, name), "students",
               fmt::format("preset names (one of {})", fmt::join(names, ", ")), "'" + name + "'");
    need_model(std::count(s.students.begin(), s.students.end(), name) == 1, "students",
               "distinct preset names", fmt::format("'{}' more than once", name));
  }
}

// Strict reads of one YAML mapping: wrong types name the key, keys never read are refused.
class YamlMap {
 public:
  YamlMap(const YAML::Node& node, std::string path, const std::string& source)
      : node_(node), path_(std::move(path)), source_(source) {
    if (present(node_) && !node_.IsMap())
      throw_bad_field(source_, path_, "a mapping of key: value", shown(node_));
  }
  // The value of `key` (a null node when absent or null: the default stays; see present()).
  YAML::Node take(const std::string& key) {
    known_.push_back(key);
    const YAML::Node& node = node_;  // const: looking up an absent key must not add it
    if (!present(node) || !node.IsMap() || !present(node[key])) return YAML::Node();
    return node[key];
  }
  // YAML::Node() is a defined null node, so "is there a value" is both tests.
  static bool present(const YAML::Node& v) { return v.IsDefined() && !v.IsNull(); }
  template <typename T>
  void get(const std::string& key, T& out, const std::string& expected) {
    const YAML::Node v = take(key);
    if (present(v)) out = scalar<T>(v, key, expected);
  }
  // A list of T, or one T as a one-item list.
  template <typename T>
  void get_list(const std::string& key, std::vector<T>& out, const std::string& expected) {
    if (const YAML::Node v = take(key); present(v)) list_of(v, key, out, expected);
  }
  template <typename T>
  void list_of(const YAML::Node& v, const std::string& key, std::vector<T>& out,
               const std::string& expected) const {
    out.clear();
    if (v.IsSequence()) {
      for (const auto& item : v) out.push_back(scalar<T>(item, key, expected));
    } else {
      out.push_back(scalar<T>(v, key, expected));
    }
  }
  template <typename T>
  T scalar(const YAML::Node& v, const std::string& key, const std::string& expected) const {
    if (!v.IsScalar()) throw_bad_field(source_, full(key), expected, shown(v));
    try {
      return v.as<T>();
    } catch (const YAML::Exception&) {
      throw_bad_field(source_, full(key), expected, shown(v));
    }
  }
  void reject_unknown() const {
    if (!present(node_) || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar())  // e.g. `{[1]: 2}` (found by fuzz_search_space)
        core::throw_input("{}: '{}' has a key that is not a word: {}", source_,
                          path_.empty() ? "the space" : path_, shown(kv.first));
      const auto key = kv.first.as<std::string>();
      if (std::find(known_.begin(), known_.end(), key) == known_.end())
        core::throw_input("{}: unknown key '{}' (known here: {})", source_, full(key),
                          fmt::join(known_, ", "));
    }
  }
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  static std::string shown(const YAML::Node& v) {
    YAML::Emitter e;
    e << YAML::Flow << v;
    return std::string("'") + e.c_str() + "'";
  }

 private:
  YAML::Node node_;
  std::string path_;
  const std::string& source_;
  std::vector<std::string> known_;
};

void read_blocks(const YAML::Node& node, const std::string& source, SpaceSpec& s) {
  YamlMap m(node, "blocks", source);
  m.get("drop_attention", s.drop_attention, "true or false");
  m.get("drop_mlp", s.drop_mlp, "true or false");
  if (const YAML::Node heads = m.take("heads"); YamlMap::present(heads)) {
    if (heads.IsScalar() && heads.Scalar() == "all") {
      s.heads.clear();
    } else {
      m.list_of(heads, "heads", s.heads, "\"all\" or a list of head counts");
    }
  }
  YamlMap width(m.take("mlp_width"), "blocks.mlp_width", source);
  width.get("step", s.mlp_step, "an integer (e.g. 16)");
  width.get("min_ratio", s.mlp_min_ratio, "a number in (0, 1]");
  width.reject_unknown();
  m.get_list("rank_ratio", s.rank_ratios, "a list of ratios in (0, 1]");
  m.get_list("weight_bits", s.weight_bits, "a list of bit widths (32: fp32)");
  m.get_list("input_bits", s.input_bits, "a list of bit widths (32: fp32)");
  m.get("share", s.share, "true or false");
  m.get_list("merge_r", s.merge_r, "a list of token counts");
  m.reject_unknown();
}

void read_model(const YAML::Node& node, const std::string& source, SpaceSpec& s) {
  YamlMap m(node, "model", source);
  m.get_list("resolution", s.resolution, "a list of ratios in (0, 1] of the model's input side");
  m.get_list("students", s.students, "a list of preset names");
  m.reject_unknown();
}

// ---------------------------------------------------------------------------------------------
// Choices and genes.

template <typename T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The choice nearest to x (choices ascending, non-empty; a tie goes to the larger one).
template <typename T>
T nearest(const std::vector<T>& choices, T x) {
  T best = choices.front();
  for (T c : choices)
    if (std::abs(static_cast<double>(c) - static_cast<double>(x)) <=
        std::abs(static_cast<double>(best) - static_cast<double>(x)))
      best = c;
  return best;
}

bool snap_bool(const std::vector<bool>& choices, bool x) {
  return contains(choices, x) ? x : choices.front();
}

template <typename T>
T draw(const std::vector<T>& choices, std::mt19937_64& rng) {
  return choices[std::uniform_int_distribution<size_t>(0, choices.size() - 1)(rng)];
}

bool chance(double p, std::mt19937_64& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p;
}

bool kept(const BlockGene& g) { return g.attn || g.mlp; }

// The base model's block: everything the block has kept (BlockGene's defaults do the rest).
BlockGene base_gene(const BlockChoices& ch) {
  BlockGene x;
  x.attn = ch.attn.back();
  x.mlp = ch.mlp.back();
  x.heads = ch.heads.back();
  x.mlp_dim = ch.mlp_dims.back();
  return x;
}

void copy_structure(BlockGene& to, const BlockGene& from) {
  to.attn = from.attn;
  to.mlp = from.mlp;
  to.heads = from.heads;
  to.mlp_dim = from.mlp_dim;
  to.rank_ratio = from.rank_ratio;
  to.wbits = from.wbits;
  to.abits = from.abits;
}

// The rules that tie genes together, in block order (a shared block copies the already repaired
// previous one). A block with nothing kept gets fixed neutral genes so that every model has one
// genome (and one archive key).
void apply_rules(std::vector<BlockGene>& blocks) {
  for (size_t b = 0; b < blocks.size(); ++b) {
    BlockGene& g = blocks[b];
    if (g.share) copy_structure(g, blocks[b - 1]);  // share is false for block 0 (snapped)
    if (!g.attn) g.heads = 0, g.merge_r = 0;
    if (!g.mlp) g.mlp_dim = 0;
    if (g.wbits == 32) g.abits = 32;
    if (!kept(g)) g.rank_ratio = 1.0, g.wbits = 32, g.abits = 32, g.share = false;
  }
}

std::string ratio_text(double r) {
  std::string s = fmt::format("{}", r);
  return s.rfind("0.", 0) == 0 ? s.substr(1) : s;  // "0.5" -> ".5"
}

const std::vector<std::string> kGenomeFields = {"student", "resolution", "blocks"};
const std::vector<std::string> kGeneFields = {"attn",  "mlp",   "heads", "mlp_dim", "rank_ratio",
                                              "wbits", "abits", "share", "merge_r"};

}  // namespace

// ---------------------------------------------------------------------------------------------
// SpaceSpec

SpaceSpec SpaceSpec::from_yaml_text(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    core::throw_input("{}: invalid YAML at line {}: {}", source, e.mark.line + 1, e.msg);
  }
  SpaceSpec s;
  YamlMap top(root, "", source);
  read_blocks(top.take("blocks"), source, s);
  read_model(top.take("model"), source, s);
  top.reject_unknown();
  validate(s, source);
  return s;
}

SpaceSpec SpaceSpec::from_yaml_file(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path))
    core::throw_input("{}: search space file not found", path.string());
  return from_yaml_text(core::read_file_text(path), path.string());
}

json SpaceSpec::to_json() const {
  return json{{"blocks",
               {{"drop_attention", drop_attention},
                {"drop_mlp", drop_mlp},
                {"heads", heads.empty() ? json("all") : json(heads)},
                {"mlp_width", {{"step", mlp_step}, {"min_ratio", mlp_min_ratio}}},
                {"rank_ratio", rank_ratios},
                {"weight_bits", weight_bits},
                {"input_bits", input_bits},
                {"share", share},
                {"merge_r", merge_r}}},
              {"model", {{"resolution", resolution}, {"students", students}}}};
}

// ---------------------------------------------------------------------------------------------
// Genome

std::string Genome::key() const {
  std::string out;
  if (student != 0) out += fmt::format("T{}:", student);
  if (resolution != 0) out += fmt::format("R{}:", resolution);
  const size_t prefix = out.size();
  for (const BlockGene& g : blocks) {
    if (out.size() > prefix) out += '|';
    if (g.share) {  // the structure is the previous block's: only merge_r is its own
      out += g.merge_r != 0 ? fmt::format("Sm{}", g.merge_r) : "S";
    } else if (!kept(g)) {
      out += "--";
    } else {
      out += g.attn ? fmt::format("A{}", g.heads) : "-";
      out += g.mlp ? fmt::format("M{}", g.mlp_dim) : "-";
      out += fmt::format("r{}w{}a{}m{}", ratio_text(g.rank_ratio), g.wbits, g.abits, g.merge_r);
    }
  }
  return out;
}

json Genome::to_json() const {
  json jb = json::array();
  for (const BlockGene& g : blocks) {
    jb.push_back({{"attn", g.attn},
                  {"mlp", g.mlp},
                  {"heads", g.heads},
                  {"mlp_dim", g.mlp_dim},
                  {"rank_ratio", g.rank_ratio},
                  {"wbits", g.wbits},
                  {"abits", g.abits},
                  {"share", g.share},
                  {"merge_r", g.merge_r}});
  }
  json j{{"blocks", jb}};
  // Only when set, so that the JSON of a genome of the model at its own side stays as it was.
  if (student != 0) j["student"] = student;
  if (resolution != 0) j["resolution"] = resolution;
  return j;
}

Genome Genome::from_json(const json& j, const std::string& source) {
  jf::check_fields(j, kGenomeFields, source, "");
  const json& jb = jf::require(j, "blocks", source, "");
  if (!jb.is_array()) throw_bad_field(source, "blocks", "a JSON array", core::json_type_name(jb));
  Genome g;
  g.student = jf::get_or(j, "student", g.student, source, "", jf::as_int);
  g.resolution = jf::get_or(j, "resolution", g.resolution, source, "", jf::as_int);
  for (size_t b = 0; b < jb.size(); ++b) {
    const std::string where = fmt::format("blocks[{}]", b);
    const json& v = jb[b];
    jf::check_fields(v, kGeneFields, source, where);
    BlockGene x;
    x.attn = jf::get_or(v, "attn", x.attn, source, where, jf::as_bool);
    x.mlp = jf::get_or(v, "mlp", x.mlp, source, where, jf::as_bool);
    x.heads = jf::get_or(v, "heads", x.heads, source, where, jf::as_int);
    x.mlp_dim = jf::get_or(v, "mlp_dim", x.mlp_dim, source, where, jf::as_int);
    x.rank_ratio = jf::get_or(v, "rank_ratio", x.rank_ratio, source, where, jf::as_double);
    x.wbits = jf::get_or(v, "wbits", x.wbits, source, where, jf::as_int);
    x.abits = jf::get_or(v, "abits", x.abits, source, where, jf::as_int);
    x.share = jf::get_or(v, "share", x.share, source, where, jf::as_bool);
    x.merge_r = jf::get_or(v, "merge_r", x.merge_r, source, where, jf::as_int);
    g.blocks.push_back(x);
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// Space

namespace {

// The per-block choices of one base (see BlockChoices). InputError when the base is not a plain
// model or keeps no sub-block at all.
std::vector<BlockChoices> block_choices(const SpaceSpec& spec, const io::ViTConfig& base) {
  std::vector<BlockChoices> out;
  bool any_kept = false;
  for (int b = 0; b < base.depth; ++b) {
    const io::BlockConfig& bc = base.blocks[static_cast<size_t>(b)];
    if (bc.shares() || bc.qkv_rank || bc.proj_rank || bc.fc1_rank || bc.fc2_rank)
      core::throw_input(
          "{}: block {} is {}: the search edits a plain model (no shared or low-rank blocks)",
          base.name, b, bc.shares() ? "shared" : "low-rank");
    any_kept = any_kept || !bc.skip_attn || !bc.skip_mlp;
    BlockChoices ch;
    // A sub-block the base model already dropped stays dropped: there are no weights to keep.
    ch.attn = bc.skip_attn          ? std::vector<bool>{false}
              : spec.drop_attention ? std::vector<bool>{false, true}
                                    : std::vector<bool>{true};
    ch.mlp = bc.skip_mlp     ? std::vector<bool>{false}
             : spec.drop_mlp ? std::vector<bool>{false, true}
                             : std::vector<bool>{true};
    const int H = base.block_heads(b), M = base.block_mlp(b);
    if (spec.heads.empty()) {
      for (int h = 1; h <= H; ++h) ch.heads.push_back(h);
    } else {
      for (int h : spec.heads)
        if (h <= H) ch.heads.push_back(h);
      ch.heads.push_back(H);
    }
    // The small epsilon keeps e.g. 0.3 * 160 = 48.000000000000007 from excluding 48.
    const double lo = std::ceil(spec.mlp_min_ratio * M - 1e-9);
    for (int m = spec.mlp_step; m <= M; m += spec.mlp_step)
      if (m >= lo) ch.mlp_dims.push_back(m);
    ch.mlp_dims.push_back(M);
    ch.rank_ratios = spec.rank_ratios;
    ch.rank_ratios.push_back(1.0);
    ch.wbits = spec.weight_bits;
    ch.wbits.push_back(32);
    ch.abits = spec.input_bits;
    ch.abits.push_back(32);
    ch.merge_r = spec.merge_r;
    ch.merge_r.push_back(0);
    sort_unique(ch.heads);
    sort_unique(ch.mlp_dims);
    sort_unique(ch.rank_ratios);
    sort_unique(ch.wbits);
    sort_unique(ch.abits);
    sort_unique(ch.merge_r);
    // Sharing needs the previous block's shapes (the genes copy over and must stay in this
    // block's choices, and the weights must fit).
    if (spec.share && b > 0) {
      const io::BlockConfig& prev = base.blocks[static_cast<size_t>(b - 1)];
      ch.share = base.block_heads(b - 1) == H && base.block_mlp(b - 1) == M &&
                 prev.skip_attn == bc.skip_attn && prev.skip_mlp == bc.skip_mlp;
    }
    out.push_back(std::move(ch));
  }
  if (!any_kept)
    core::throw_input("{}: every block skips its attention and MLP: nothing to search", base.name);
  return out;
}

// The input sides of one base: each ratio of its side in whole patches (at least one patch),
// and the side itself; ascending, unique.
std::vector<int> resolution_choices(const SpaceSpec& spec, const io::ViTConfig& base) {
  const int side = base.image_size, patch = base.patch_size;
  std::vector<int> out{side};
  for (double r : spec.resolution) {
    const long patches = std::lround(r * side / patch);
    out.push_back(static_cast<int>(std::max(1L, patches)) * patch);
  }
  sort_unique(out);
  return out;
}

// Base `student`'s own model: every block at its base gene, the base's own side.
Genome largest_of(const std::vector<BlockChoices>& blocks, int student) {
  Genome g;
  g.student = student;
  for (const BlockChoices& ch : blocks) g.blocks.push_back(base_gene(ch));
  return g;
}

int draw_base(int n, std::mt19937_64& rng) {
  return std::uniform_int_distribution<int>(0, n - 1)(rng);
}

}  // namespace

io::ViTConfig student_config(const std::string& preset, const io::ViTConfig& model) {
  io::ViTConfig m = model;
  m.normalize(m.name);
  io::ViTConfig c = io::preset(preset);  // InputError listing the presets when unknown
  if (m.image_size % c.patch_size != 0)
    core::throw_input(
        "student preset '{}': its patch size {} does not divide the input side {} of model {}",
        preset, c.patch_size, m.image_size, m.name);
  c.image_size = m.image_size;
  c.in_channels = m.in_channels;
  c.num_classes = m.num_classes;
  c.preprocess = m.preprocess;
  c.distill_token = false;  // the student learns from the model's outputs, not a second head
  c.normalize("student preset '" + preset + "'");
  return c;
}

Space::Space(const SpaceSpec& spec, const io::ViTConfig& base) {
  validate(spec, "search space");
  io::ViTConfig model = base;
  model.normalize(model.name);
  bases_.push_back(std::move(model));
  for (const std::string& name : spec.students) {
    io::ViTConfig student = student_config(name, bases_.front());
    bases_.push_back(std::move(student));
  }
  for (const io::ViTConfig& c : bases_) {
    blocks_.push_back(block_choices(spec, c));
    resolutions_.push_back(resolution_choices(spec, c));
  }
}

namespace {

size_t base_index(int student, int n) {
  if (student < 0 || student >= n)
    core::throw_internal("search space: base {} asked for, the space has bases 0..{}", student,
                         n - 1);
  return static_cast<size_t>(student);
}

}  // namespace

const io::ViTConfig& Space::base(int student) const {
  return bases_[base_index(student, num_bases())];
}

const std::vector<BlockChoices>& Space::blocks(int student) const {
  return blocks_[base_index(student, num_bases())];
}

const std::vector<int>& Space::resolutions(int student) const {
  return resolutions_[base_index(student, num_bases())];
}

Genome Space::largest() const { return repair(largest_of(blocks_.front(), 0)); }

Genome Space::smallest() const {
  const std::vector<BlockChoices>& blocks = blocks_.front();
  Genome g;
  g.resolution = resolutions_.front().front();  // (the base's own side: repair stores 0)
  for (const BlockChoices& ch : blocks) {
    BlockGene x;
    x.attn = ch.attn.front();
    x.mlp = ch.mlp.front();
    x.heads = ch.heads.front();
    x.mlp_dim = ch.mlp_dims.front();
    x.rank_ratio = ch.rank_ratios.front();
    x.wbits = ch.wbits.front();
    x.abits = ch.abits.front();
    x.share = ch.share;
    x.merge_r = ch.merge_r.back();
    g.blocks.push_back(x);
  }
  g = repair(g);
  // Where everything could drop, repair kept one sub-block with neutral genes: make it the
  // cheapest too.
  for (size_t b = 0; b < g.blocks.size(); ++b) {
    BlockGene& x = g.blocks[b];
    if (!kept(x) || x.share) continue;
    x.rank_ratio = blocks[b].rank_ratios.front();
    x.wbits = blocks[b].wbits.front();
    x.abits = blocks[b].abits.front();
    if (x.attn) x.merge_r = blocks[b].merge_r.back();
  }
  return repair(g);
}

// The draws of a space with one base and one side are those of the block genes alone (the
// whole-model genes draw nothing there).
Genome Space::random(std::mt19937_64& rng, int student) const {
  Genome g;
  if (student >= 0) {
    g.student = static_cast<int>(base_index(student, num_bases()));
  } else if (num_bases() > 1) {
    g.student = draw_base(num_bases(), rng);
  }
  const size_t k = static_cast<size_t>(g.student);
  for (const BlockChoices& ch : blocks_[k]) {
    BlockGene x;
    x.attn = draw(ch.attn, rng);
    x.mlp = draw(ch.mlp, rng);
    x.heads = draw(ch.heads, rng);
    x.mlp_dim = draw(ch.mlp_dims, rng);
    x.rank_ratio = draw(ch.rank_ratios, rng);
    x.wbits = draw(ch.wbits, rng);
    x.abits = draw(ch.abits, rng);
    x.share = ch.share && chance(0.5, rng);
    x.merge_r = draw(ch.merge_r, rng);
    g.blocks.push_back(x);
  }
  if (resolutions_[k].size() > 1) g.resolution = draw(resolutions_[k], rng);
  return repair(g);
}

Genome Space::mutate(const Genome& g, double p, std::mt19937_64& rng) const {
  Genome m = repair(g);
  if (num_bases() > 1 && chance(p, rng)) {
    const int s = draw_base(num_bases(), rng);
    // Another base's blocks have other shapes: start from its own model at its own side.
    if (s != m.student) m = largest_of(blocks_[static_cast<size_t>(s)], s);
  }
  const size_t k = static_cast<size_t>(m.student);
  if (resolutions_[k].size() > 1 && chance(p, rng)) m.resolution = draw(resolutions_[k], rng);
  const std::vector<BlockChoices>& blocks = blocks_[k];
  for (size_t b = 0; b < blocks.size(); ++b) {
    const BlockChoices& ch = blocks[b];
    BlockGene& x = m.blocks[b];
    if (chance(p, rng)) x.attn = draw(ch.attn, rng);
    if (chance(p, rng)) x.mlp = draw(ch.mlp, rng);
    if (chance(p, rng) || (x.attn && x.heads == 0)) x.heads = draw(ch.heads, rng);
    if (chance(p, rng) || (x.mlp && x.mlp_dim == 0)) x.mlp_dim = draw(ch.mlp_dims, rng);
    if (chance(p, rng)) x.rank_ratio = draw(ch.rank_ratios, rng);
    if (chance(p, rng)) x.wbits = draw(ch.wbits, rng);
    if (chance(p, rng)) x.abits = draw(ch.abits, rng);
    if (chance(p, rng)) x.share = ch.share && chance(0.5, rng);
    if (chance(p, rng)) x.merge_r = draw(ch.merge_r, rng);
  }
  return repair(m);
}

Genome Space::crossover(const Genome& a, const Genome& b, std::mt19937_64& rng) const {
  const Genome ra = repair(a), rb = repair(b);
  // Blocks of different bases do not mix: the child is one parent.
  if (ra.student != rb.student) return chance(0.5, rng) ? ra : rb;
  Genome c;
  c.student = ra.student;
  // (No draw when the parents agree: a space with one side draws as it did before it had sides.)
  c.resolution = ra.resolution == rb.resolution || chance(0.5, rng) ? ra.resolution : rb.resolution;
  for (size_t i = 0; i < blocks_[static_cast<size_t>(c.student)].size(); ++i)
    c.blocks.push_back(chance(0.5, rng) ? ra.blocks[i] : rb.blocks[i]);
  return repair(c);
}

Genome Space::repair(Genome g) const {
  // A base the space does not have: the model searched, its blocks kept only if they fit.
  if (g.student < 0 || g.student >= num_bases()) {
    g.student = 0;
    if (g.blocks.size() != blocks_.front().size()) g.blocks = largest_of(blocks_.front(), 0).blocks;
  }
  const size_t k = static_cast<size_t>(g.student);
  const std::vector<BlockChoices>& blocks = blocks_[k];
  // A side snaps to the base's nearest; the base's own is spelled 0.
  if (g.resolution != 0) {
    g.resolution = nearest(resolutions_[k], g.resolution);
    if (g.resolution == bases_[k].image_size) g.resolution = 0;
  }
  // A wrong depth: extra blocks go, missing ones are the base model's.
  g.blocks.resize(std::min(g.blocks.size(), blocks.size()));
  while (g.blocks.size() < blocks.size()) g.blocks.push_back(base_gene(blocks[g.blocks.size()]));
  for (size_t b = 0; b < blocks.size(); ++b) {
    const BlockChoices& ch = blocks[b];
    BlockGene& x = g.blocks[b];
    x.attn = snap_bool(ch.attn, x.attn);
    x.mlp = snap_bool(ch.mlp, x.mlp);
    x.heads = nearest(ch.heads, x.heads);
    x.mlp_dim = nearest(ch.mlp_dims, x.mlp_dim);
    x.rank_ratio = nearest(ch.rank_ratios, x.rank_ratio);
    x.wbits = nearest(ch.wbits, x.wbits);
    x.abits = nearest(ch.abits, x.abits);
    x.merge_r = nearest(ch.merge_r, x.merge_r);
    x.share = x.share && ch.share;
  }
  apply_rules(g.blocks);
  if (std::none_of(g.blocks.begin(), g.blocks.end(), kept)) {
    // Nothing kept: the first block that can keep an MLP keeps its narrowest one (else the first
    // that can keep attention, its fewest heads). Every block is unshared here (apply_rules).
    auto can = [&](bool attn) {
      return std::find_if(blocks.begin(), blocks.end(), [&](const BlockChoices& ch) {
        return contains(attn ? ch.attn : ch.mlp, true);
      });
    };
    if (auto it = can(false); it != blocks.end()) {
      BlockGene& x = g.blocks[static_cast<size_t>(it - blocks.begin())];
      x.mlp = true;
      x.mlp_dim = it->mlp_dims.front();
    } else if (auto at = can(true); at != blocks.end()) {
      BlockGene& x = g.blocks[static_cast<size_t>(at - blocks.begin())];
      x.attn = true;
      x.heads = at->heads.front();
    }
    apply_rules(g.blocks);
  }
  return g;
}

void Space::check(const Genome& g, const std::string& source) const {
  if (g.student < 0 || g.student >= num_bases())
    throw_bad_field(
        source, "student",
        fmt::format("0..{} (0: the model searched, k: the space's k-th student)", num_bases() - 1),
        std::to_string(g.student));
  const size_t k = static_cast<size_t>(g.student);
  const std::vector<BlockChoices>& blocks = blocks_[k];
  const int side = bases_[k].image_size;
  if (g.resolution != 0) {
    std::vector<int> others;
    for (int r : resolutions_[k])
      if (r != side) others.push_back(r);
    if (!contains(others, g.resolution))
      throw_bad_field(
          source, "resolution",
          fmt::format("0 (the base's own side {}) or one of [{}]", side, fmt::join(others, ", ")),
          std::to_string(g.resolution));
  }
  if (g.blocks.size() != blocks.size())
    throw_bad_field(source, "blocks",
                    k == 0 ? fmt::format("{} blocks (the model's depth)", blocks.size())
                           : fmt::format("{} blocks (the depth of student {}, {})", blocks.size(),
                                         k, bases_[k].name),
                    fmt::format("{} blocks", g.blocks.size()));
  auto need = [&](bool ok, size_t b, const char* gene, const std::string& expected,
                  const std::string& actual) {
    if (!ok) throw_bad_field(source, fmt::format("blocks[{}].{}", b, gene), expected, actual);
  };
  auto one_of = [&](const auto& choices, auto x, size_t b, const char* gene) {
    std::vector<std::string> shown;  // by hand: fmt cannot join std::vector<bool>
    for (decltype(x) c : choices) shown.push_back(fmt::format("{}", c));
    need(contains(choices, x), b, gene, fmt::format("one of [{}]", fmt::join(shown, ", ")),
         fmt::format("{}", x));
  };
  for (size_t b = 0; b < blocks.size(); ++b) {
    const BlockChoices& ch = blocks[b];
    const BlockGene& x = g.blocks[b];
    one_of(ch.attn, x.attn, b, "attn");
    one_of(ch.mlp, x.mlp, b, "mlp");
    if (x.attn) {
      one_of(ch.heads, x.heads, b, "heads");
    } else {
      need(x.heads == 0, b, "heads", "0 (attention dropped)", std::to_string(x.heads));
      need(x.merge_r == 0, b, "merge_r", "0 (attention dropped: no keys to merge by)",
           std::to_string(x.merge_r));
    }
    if (x.mlp) {
      one_of(ch.mlp_dims, x.mlp_dim, b, "mlp_dim");
    } else {
      need(x.mlp_dim == 0, b, "mlp_dim", "0 (MLP dropped)", std::to_string(x.mlp_dim));
    }
    one_of(ch.rank_ratios, x.rank_ratio, b, "rank_ratio");
    one_of(ch.wbits, x.wbits, b, "wbits");
    one_of(ch.abits, x.abits, b, "abits");
    need(x.wbits < 32 || x.abits == 32, b, "abits", "32 (quantized inputs need wbits < 32)",
         std::to_string(x.abits));
    one_of(ch.merge_r, x.merge_r, b, "merge_r");
    if (x.share) {
      need(ch.share, b, "share",
           b == 0 ? "false (block 0 has no previous block)"
                  : "false (the space or the block shapes do not allow sharing here)",
           "true");
      BlockGene same = x;
      copy_structure(same, g.blocks[b - 1]);
      need(same == x, b, "share",
           "the previous block's attn, mlp, heads, mlp_dim, rank_ratio, wbits and abits",
           "different genes");
    }
    if (!kept(x)) {
      need(x.rank_ratio == 1.0 && x.wbits == 32 && x.abits == 32 && !x.share, b, "attn",
           "a block that drops both parts to have rank_ratio 1, wbits 32, abits 32, share false",
           "other genes");
    }
  }
  if (std::none_of(g.blocks.begin(), g.blocks.end(), kept))
    throw_bad_field(source, "blocks", "at least one attention or MLP sub-block kept",
                    "every sub-block dropped");
  if (repair(g) != g)  // the rules above are repair's: this only guards their agreement
    core::throw_internal("{}: genome {} passes the checks but is not in repaired form", source,
                         g.key());
}

// ---------------------------------------------------------------------------------------------
// Genome -> config

int rank_for(double ratio, int out, int in) {
  if (!(ratio < 1.0)) return 0;  // (a NaN too: dense is always valid)
  const int full = std::min(out, in);
  long r = std::max(1L, std::lround(ratio * full));
  r = (r + 7) / 8 * 8;                                         // the runtime's SIMD width
  if (r * (int64_t{out} + in) >= int64_t{out} * in) return 0;  // (also covers r >= full)
  return static_cast<int>(r);
}

io::ViTConfig genome_config(const io::ViTConfig& base, const Genome& g) {
  io::ViTConfig c = base;
  c.normalize(c.name);
  const std::string source = "genome " + g.key();
  if (static_cast<int>(g.blocks.size()) != c.depth)
    throw_bad_field(source, "blocks", fmt::format("{} blocks (the model's depth)", c.depth),
                    fmt::format("{} blocks", g.blocks.size()));
  const int C = c.embed_dim, D = c.head_dim;
  for (int b = 0; b < c.depth; ++b) {
    const BlockGene& x = g.blocks[static_cast<size_t>(b)];
    io::BlockConfig& bc = c.blocks[static_cast<size_t>(b)];
    const std::string f = fmt::format("blocks[{}].", b);
    // Guards against genomes from elsewhere: 0 heads or width would silently mean "the default".
    if (x.attn && (x.heads < 1 || x.heads > bc.num_heads))
      throw_bad_field(source, f + "heads", fmt::format("a head count in [1, {}]", bc.num_heads),
                      std::to_string(x.heads));
    if (x.mlp && (x.mlp_dim < 1 || x.mlp_dim > bc.mlp_dim))
      throw_bad_field(source, f + "mlp_dim", fmt::format("a width in [1, {}]", bc.mlp_dim),
                      std::to_string(x.mlp_dim));
    if (x.share && b == 0)
      throw_bad_field(source, f + "share", "false (block 0 has no previous block)", "true");
    // Dropped sub-blocks keep the base widths, as slim_config leaves them.
    bc.kept_heads.clear();
    bc.skip_attn = !x.attn;
    bc.skip_mlp = !x.mlp;
    if (x.attn) bc.num_heads = x.heads;
    if (x.mlp) bc.mlp_dim = x.mlp_dim;
    const int hd = bc.num_heads * D, m = bc.mlp_dim;
    bc.qkv_rank = x.attn ? rank_for(x.rank_ratio, 3 * hd, C) : 0;
    bc.proj_rank = x.attn ? rank_for(x.rank_ratio, C, hd) : 0;
    bc.fc1_rank = x.mlp ? rank_for(x.rank_ratio, m, C) : 0;
    bc.fc2_rank = x.mlp ? rank_for(x.rank_ratio, C, m) : 0;
    bc.merge_r = x.attn ? x.merge_r : 0;
    bc.attn_shared_with = bc.mlp_shared_with = -1;
    if (x.share) {
      // A run of shared blocks all point at its first block, which owns the weight matrices of
      // both branches (the blocks keep their own LayerNorms and biases).
      const io::BlockConfig& prev = c.blocks[static_cast<size_t>(b - 1)];
      const int owner = prev.attn_shared_with >= 0  ? prev.attn_shared_with
                        : prev.mlp_shared_with >= 0 ? prev.mlp_shared_with
                                                    : b - 1;
      if (x.attn) bc.attn_shared_with = owner;
      if (x.mlp) bc.mlp_shared_with = owner;
    }
  }
  if (g.resolution != 0) {
    // Whole patches, never above the base's side (a genome from elsewhere is checked here too).
    if (g.resolution < c.patch_size || g.resolution > c.image_size ||
        g.resolution % c.patch_size != 0)
      throw_bad_field(source, "resolution",
                      fmt::format("0 or a multiple of the patch size {} in [{}, {}]", c.patch_size,
                                  c.patch_size, c.image_size),
                      std::to_string(g.resolution));
    c.image_size = g.resolution;
  }
  c.normalize(source);
  return c;
}

bool quantized(const Genome& g) {
  return std::any_of(g.blocks.begin(), g.blocks.end(),
                     [](const BlockGene& x) { return x.wbits < 32; });
}

}  // namespace vitopt::search
