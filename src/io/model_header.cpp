// read_model_header: metadata -> config, quant spec, class names, version, precision (see
// model_header.h). The decisions where the two former readers disagreed are documented in
// docs/model-format.md, "One reader"; tests/io/model_header_test.cpp holds one test for each.
#include "io/model_header.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>

#include "core/error.h"
#include "core/json_util.h"
#include "io/checkpoint_convert.h"
#include "io/merge_schedule.h"
#include "io/metadata_keys.h"
#include "io/tensor_layout.h"

namespace vitopt::io {
namespace {

std::string meta_source(const SafeTensorsFile& file, const char* key) {
  return fmt::format("{}: metadata '{}'", file.source(), key);
}

void check_version(const SafeTensorsFile& file) {
  const std::string* version = file.metadata_value(kFormatVersionKey);
  const std::string want = std::to_string(kFormatVersion);
  if (version == nullptr || *version != want) {
    core::throw_input(
        "{}: metadata '{}': expected \"{}\" (the vitopt model format this build reads), got {}; "
        "{}",
        file.source(), kFormatVersionKey, want, version ? "\"" + *version + "\"" : "nothing",
        version ? "re-export the model with a matching vitopt"
                : "every vitopt file records its format version; was the metadata edited?");
  }
}

std::vector<std::string> read_class_names(const SafeTensorsFile& file) {
  const std::string* raw = file.metadata_value(kClassNamesKey);
  if (raw == nullptr) return {};
  const std::string src = meta_source(file, kClassNamesKey);
  const auto j = core::json_parse(*raw, src);
  if (!j.is_array()) core::throw_input("{}: expected a JSON array of strings, got {}", src, core::json_type_name(j));
  std::vector<std::string> names;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string())
      core::throw_input("{}: element {}: expected a string, got {}", src, i, j[i].dump());
    names.push_back(j[i].get<std::string>());
  }
  return names;
}

}  // namespace

std::string precision_label(const std::optional<QuantSpec>& quant) {
  if (!quant || quant->weights.empty()) return "fp32";
  std::set<int> bits;
  for (const auto& [name, w] : quant->weights) bits.insert(w.bits);
  return bits.size() == 1 ? fmt::format("int{}", *bits.begin()) : "mixed";
}

void validate_quant_names(const QuantSpec& spec, const ViTConfig& c, const std::string& source) {
  std::set<std::string> weights, linears;
  for (const LinearLayout& l : model_linears(c)) {
    linears.insert(l.name);
    // A low-rank Linear's second factor has its own input (the (tokens, r) activation):
    // "<linear>.weight_u" names its quantizer.
    if (l.rank > 0) linears.insert(l.name + ".weight_u");
    for (const WeightLayout& w : l.weights) weights.insert(w.name);
  }
  for (const auto& [name, w] : spec.weights) {
    if (!weights.count(name)) {
      core::throw_input("{}: weights['{}']: no Linear weight of that name in this model (expected "
                        "e.g. 'blocks.0.attn.qkv.weight'; skipped, shared and low-rank Linears "
                        "change the names)", source, name);
    }
  }
  for (const auto& [name, q] : spec.inputs) {
    if (!linears.count(name)) {
      core::throw_input("{}: inputs['{}']: no Linear of that name in this model (expected e.g. "
                        "'blocks.0.attn.qkv', 'patch_embed.proj' or, for a low-rank Linear, "
                        "'blocks.0.attn.qkv.weight_u')", source, name);
    }
  }
  if (spec.attention) {
    for (const auto& [index, b] : spec.attention->blocks) {
      const bool ok = index < c.depth && !c.blocks[static_cast<size_t>(index)].skip_attn;
      if (!ok) {
        core::throw_input(
            "{}: extras.attention.blocks['{}']: expected the index of a block with "
            "an attention (depth {}; not skipped)",
            source, index, c.depth);
      }
    }
  }
}

ModelHeader read_model_header(const SafeTensorsFile& file, const ImportHints& hints) {
  const std::string* config_text = file.metadata_value(kConfigKey);
  if (config_text == nullptr) {
    // A timm / HF checkpoint: the one conversion every reader shares (heads from config.json or
    // the hint, refused otherwise), then read like the vitopt file `vitopt import` would write.
    ModelHeader h = read_model_header(convert_checkpoint(file, hints), hints);
    h.imported = true;
    h.format_version = 0;
    return h;
  }
  ModelHeader h;
  check_version(file);
  h.format_version = kFormatVersion;
  const std::string config_src = meta_source(file, kConfigKey);
  h.config = ViTConfig::from_json(core::json_parse(*config_text, config_src), config_src);
  if (hints.mean) h.config.preprocess.mean = *hints.mean;
  if (hints.std) h.config.preprocess.std = *hints.std;
  h.config.normalize(config_src);
  if (hints.merge_r) {
    set_merge_schedule(h.config, parse_merge_schedule(*hints.merge_r, h.config.depth, "--merge-r"));
    h.config.normalize(file.source());
  }
  h.class_names = read_class_names(file);
  if (const std::string* text = file.metadata_value(kQuantKey)) {
    const std::string src = meta_source(file, kQuantKey);
    h.quant = QuantSpec::from_json(core::json_parse(*text, src), src);
    validate_quant_names(*h.quant, h.config, src);
  }
  h.precision = precision_label(h.quant);
  return h;
}

ModelHeader read_model_header(const std::filesystem::path& path, const ImportHints& hints) {
  return read_model_header(SafeTensorsFile::load(path), hints);
}

}  // namespace vitopt::io
