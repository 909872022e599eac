// Distiller: turns the chosen modes into one training loss (see distiller.h). The teacher always
// runs in eval mode under NoGradGuard; its internals are traced only for feature/attention modes.
#include "compress/distill/distiller.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <sstream>

#include "compress/distill/kd_losses.h"
#include "core/error.h"
#include "train/torch_env.h"

namespace vitopt::distill {

namespace F = torch::nn::functional;

namespace {

const std::vector<std::pair<std::string, Mode>>& mode_table() {
  static const std::vector<std::pair<std::string, Mode>> table = {
      {"logit", Mode::Logit},     {"hard", Mode::Hard},          {"token", Mode::Token},
      {"feature", Mode::Feature}, {"attention", Mode::Attention}};
  return table;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

int parse_int(const std::string& text, const std::string& pair) {
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  core::throw_input("--layer-map: '{}' is not STUDENT:TEACHER with block indices (e.g. 0:1)", pair);
}

}  // namespace

std::set<Mode> parse_modes(const std::string& text) {
  std::set<Mode> modes;
  std::stringstream ss(text);
  std::string item;
  bool none = false;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    if (item == "none") {
      none = true;
      continue;
    }
    bool found = false;
    for (const auto& [name, m] : mode_table()) {
      if (name == item) {
        modes.insert(m);
        found = true;
      }
    }
    if (!found)
      core::throw_input("--mode: unknown mode '{}' (expected logit, hard, token, feature, "
                        "attention, or none, comma-separated)",
                        item);
  }
  if (none && !modes.empty())
    core::throw_input("--mode: 'none' (student alone) cannot be combined with other modes in '{}'",
                      text);
  return modes;
}

std::string mode_name(Mode m) {
  for (const auto& [name, mode] : mode_table())
    if (mode == m) return name;
  return "?";
}

std::string modes_name(const std::set<Mode>& modes) {
  if (modes.empty()) return "none";
  std::string out;
  for (Mode m : modes) {
    if (!out.empty()) out += '+';
    out += mode_name(m);
  }
  return out;
}

std::vector<std::pair<int, int>> parse_layer_map(const std::string& text) {
  std::vector<std::pair<int, int>> map;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    const auto colon = item.find(':');
    if (colon == std::string::npos)
      core::throw_input("--layer-map: '{}' is not STUDENT:TEACHER (e.g. 0:1,1:3)", item);
    map.emplace_back(parse_int(trim(item.substr(0, colon)), item),
                     parse_int(trim(item.substr(colon + 1)), item));
  }
  return map;
}

std::vector<std::pair<int, int>> default_layer_map(int student_depth, int teacher_depth) {
  // Spread the student's blocks evenly over the teacher's; the last block always maps to the
  // last (the representation closest to the heads).
  std::vector<std::pair<int, int>> map;
  for (int i = 0; i < student_depth; ++i) {
    const double t = static_cast<double>(i + 1) * teacher_depth / student_depth;
    map.emplace_back(i, std::max(0, static_cast<int>(std::lround(t)) - 1));
  }
  return map;
}

void validate(const std::set<Mode>& modes, const DistillSettings& s,
              const io::ViTConfig& student, const io::ViTConfig* teacher) {
  if (!(s.alpha >= 0 && s.alpha <= 1))
    core::throw_input("--alpha: expected a value in [0, 1], got {}", s.alpha);
  if (!(s.temperature > 0) || !std::isfinite(s.temperature))
    core::throw_input("--temperature: expected > 0, got {}", s.temperature);
  if (!(s.feature_weight >= 0)) core::throw_input("--feature-weight: expected >= 0, got {}", s.feature_weight);
  if (!(s.attn_weight >= 0)) core::throw_input("--attn-weight: expected >= 0, got {}", s.attn_weight);
  if (s.attn_loss != "kl" && s.attn_loss != "mse")
    core::throw_input("--attn-loss: expected 'kl' or 'mse', got '{}'", s.attn_loss);
  if (modes.count(Mode::Logit) && modes.count(Mode::Hard))
    core::throw_input("--mode: 'logit' (soft targets) and 'hard' (teacher argmax) are two forms of "
                      "the same term: pick one");
  if (modes.count(Mode::Token) && !student.distill_token)
    core::throw_input("--mode token: student '{}' has no distillation token (use a preset or "
                      "config, which gets one, or a model file saved with distill_token)",
                      student.name);
  if (modes.empty()) return;
  if (teacher == nullptr) core::throw_input("--teacher: required for --mode {}", modes_name(modes));
  const auto& t = *teacher;
  if (t.num_classes != student.num_classes)
    core::throw_input("--teacher: teacher '{}' has {} classes, student '{}' {}: they must match",
                      t.name, t.num_classes, student.name, student.num_classes);
  // Another input side is fine (the teacher sees the images resized, see teacher_input);
  // other channels are not.
  if (t.in_channels != student.in_channels)
    core::throw_input(
        "--teacher: teacher '{}' takes {}-channel images, student '{}' {}: they "
        "must match",
        t.name, t.in_channels, student.name, student.in_channels);
  const bool internals = modes.count(Mode::Feature) || modes.count(Mode::Attention);
  if (internals && t.num_patches() != student.num_patches())
    core::throw_input("--mode feature/attention: teacher '{}' has {} patches and student '{}' {}; "
                      "token-wise matching needs the same patch grid",
                      t.name, t.num_patches(), student.name, student.num_patches());
  for (const auto& [sb, tb] : s.layer_map) {
    if (sb < 0 || sb >= student.depth || tb < 0 || tb >= t.depth)
      core::throw_input("--layer-map: pair {}:{} out of range (student blocks 0..{}, teacher "
                        "blocks 0..{})",
                        sb, tb, student.depth - 1, t.depth - 1);
  }
}

Distiller::Distiller(std::optional<model::ViT> teacher, const io::ViTConfig& student_config,
                     std::set<Mode> modes, DistillSettings settings, size_t train_size,
                     uint64_t seed)
    : teacher_(std::move(teacher)),
      student_config_(student_config),
      modes_(std::move(modes)),
      settings_(std::move(settings)) {
  const io::ViTConfig* tc = teacher_ ? &(*teacher_)->config() : nullptr;
  validate(modes_, settings_, student_config_, tc);
  if (modes_.empty()) return;
  (*teacher_)->eval();
  for (auto& p : (*teacher_)->parameters()) p.set_requires_grad(false);

  // Renormalize student inputs for the teacher only when their preprocessing differs.
  const auto& ms = student_config_.preprocess.mean;
  const auto& ss = student_config_.preprocess.std;
  const auto& mt = tc->preprocess.mean;
  const auto& st = tc->preprocess.std;
  if (ms != mt || ss != st) {
    const int64_t C = student_config_.in_channels;
    input_scale_ = torch::empty({1, C, 1, 1});
    input_shift_ = torch::empty({1, C, 1, 1});
    auto chan = [](const std::vector<float>& v, int64_t c) { return v.size() == 1 ? v[0] : v[c]; };
    for (int64_t c = 0; c < C; ++c) {
      // x_t = (p - m_t) / s_t with p = x_s * s_s + m_s
      input_scale_[0][c][0][0] = chan(ss, c) / chan(st, c);
      input_shift_[0][c][0][0] = (chan(ms, c) - chan(mt, c)) / chan(st, c);
    }
  }

  if (has(Mode::Feature) || has(Mode::Attention))
    layer_map_ = settings_.layer_map.empty() ? default_layer_map(student_config_.depth, tc->depth)
                                             : settings_.layer_map;
  if (has(Mode::Feature) && student_config_.embed_dim != tc->embed_dim) {
    // One learned linear map per pair (timm-style init, seeded so runs repeat exactly).
    at::Generator gen = at::detail::createCPUGenerator(seed + 7919);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < layer_map_.size(); ++i) {
      torch::nn::Linear proj(torch::nn::LinearOptions(student_config_.embed_dim, tc->embed_dim));
      proj->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(student_config_.embed_dim)),
                           gen);
      proj->bias.zero_();
      projections_.push_back(proj);
    }
  }
  // Only logits are cached: feature/attention runs need the teacher's internals every step, so
  // for them the flag has no effect (a job may mix both kinds of runs under one flag).
  if (settings_.cache_teacher && !has(Mode::Feature) && !has(Mode::Attention)) {
    cache_ = torch::zeros({static_cast<int64_t>(train_size), tc->num_classes});
    cached_.assign(train_size, false);
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Distiller::projection_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < projections_.size(); ++i) {
    const auto& [sb, tb] = layer_map_[i];
    out.emplace_back(fmt::format("distill.proj{}_{}.weight", sb, tb), projections_[i]->weight);
    out.emplace_back(fmt::format("distill.proj{}_{}.bias", sb, tb), projections_[i]->bias);
  }
  return out;
}

torch::Tensor Distiller::teacher_input(const torch::Tensor& x) const {
  torch::Tensor t = x;  // (B, C, H, W) as the student takes it
  if (input_scale_.defined()) t = t * input_scale_.to(x.device()) + input_shift_.to(x.device());
  // A student at another input side (the architecture search's resolution gene): the teacher
  // sees the same images resized to its own side (bilinear, antialiased when shrinking).
  const int64_t side = (*teacher_)->config().image_size;
  if (t.size(-1) != side || t.size(-2) != side) {
    namespace F = torch::nn::functional;
    t = F::interpolate(t, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{side, side})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(side < t.size(-1)));
  }
  return t;
}

torch::Tensor Distiller::teacher_logits(const torch::Tensor& x,
                                        const std::vector<int64_t>* indices) {
  const bool use_cache = cache_.defined() && indices != nullptr;
  if (use_cache) {
    bool all = !indices->empty();
    for (int64_t i : *indices) all = all && cached_.at(static_cast<size_t>(i));
    if (all) {
      ++cache_hits_;
      const auto idx = torch::tensor(*indices, torch::kLong);
      return cache_.index_select(0, idx).to(x.device());  // (B, K)
    }
  }
  torch::NoGradGuard no_grad;
  auto logits = (*teacher_)->forward(teacher_input(x));  // (B, K), eval mode
  ++teacher_forwards_;
  if (use_cache) {
    ++cache_misses_;
    const auto idx = torch::tensor(*indices, torch::kLong);
    cache_.index_copy_(0, idx, logits.to(torch::kCPU));
    for (int64_t i : *indices) cached_[static_cast<size_t>(i)] = true;
  }
  return logits;
}

LossParts Distiller::compute(model::ViT& student, const torch::Tensor& x, const torch::Tensor& y,
                             const std::vector<int64_t>* indices) {
  LossParts parts;
  const bool internals = has(Mode::Feature) || has(Mode::Attention);
  model::Trace strace;
  strace.record_hidden = has(Mode::Feature);
  strace.record_attn = has(Mode::Attention);
  auto [cls_logits, dist_logits] = student->forward_heads(x, internals ? &strace : nullptr);
  const auto ce_opts = F::CrossEntropyFuncOptions().label_smoothing(settings_.label_smoothing);
  parts.ce = F::cross_entropy(cls_logits, y, ce_opts);
  parts.logits = dist_logits.defined() ? ((cls_logits + dist_logits) / 2).detach()
                                       : cls_logits.detach();
  if (modes_.empty()) {
    parts.total = parts.ce;
    return parts;
  }

  // Teacher: logits (cached or live) and, when needed, its traced internals in one forward.
  torch::Tensor t_logits;
  model::Trace ttrace;
  if (internals) {
    ttrace.record_hidden = has(Mode::Feature);
    ttrace.record_attn = has(Mode::Attention);
    torch::NoGradGuard no_grad;
    t_logits = (*teacher_)->forward(teacher_input(x), &ttrace);  // (B, K)
    ++teacher_forwards_;
  } else {
    t_logits = teacher_logits(x, indices);
  }

  const bool logit_term = has(Mode::Logit) || has(Mode::Hard) || has(Mode::Token);
  parts.total = parts.ce;
  if (logit_term) {
    // Token mode routes the teacher term to the distillation head; the class head keeps CE.
    const auto& s = has(Mode::Token) ? dist_logits : cls_logits;
    parts.kd = has(Mode::Logit) ? kd_logit_loss(s, t_logits, settings_.temperature)
                                : hard_distill_loss(s, t_logits);  // hard, or token alone (DeiT)
    parts.total = (1.0 - settings_.alpha) * parts.ce + settings_.alpha * parts.kd;
  }
  const int64_t s_prefix = student_config_.num_prefix_tokens();
  const int64_t t_prefix = (*teacher_)->config().num_prefix_tokens();
  if (has(Mode::Feature)) {
    torch::Tensor sum;
    int used = 0;
    for (size_t i = 0; i < layer_map_.size(); ++i) {
      const auto& [sb, tb] = layer_map_[i];
      auto sh = common_tokens(strace.hidden[sb + 1], s_prefix, 1);  // (B, N, Cs)
      auto th = common_tokens(ttrace.hidden[tb + 1], t_prefix, 1);  // (B, N, Ct)
      if (!projections_.empty()) sh = projections_[i]->forward(sh);  // (B, N, Ct)
      auto l = feature_loss(sh, th);
      sum = sum.defined() ? sum + l : l;
      ++used;
    }
    parts.feature = sum / static_cast<double>(used);
    parts.total = parts.total + settings_.feature_weight * parts.feature;
  }
  if (has(Mode::Attention)) {
    torch::Tensor sum;
    int used = 0;
    for (const auto& [sb, tb] : layer_map_) {
      const auto& sa = strace.attn_probs[sb];  // (B, Hs, Ns, Ns)
      const auto& ta = ttrace.attn_probs[tb];  // (B, Ht, Nt, Nt)
      if (!sa.defined() || !ta.defined()) continue;  // a skipped attention sub-block
      auto s_map = common_attention(sa, s_prefix);
      auto t_map = map_teacher_heads(common_attention(ta, t_prefix), s_map.size(1));
      auto l = attention_loss(s_map, t_map, settings_.attn_loss);
      sum = sum.defined() ? sum + l : l;
      ++used;
    }
    if (used == 0)
      core::throw_input("--mode attention: no mapped block pair has attention in both models");
    parts.attention = sum / static_cast<double>(used);
    parts.total = parts.total + settings_.attn_weight * parts.attention;
  }
  return parts;
}

void Distiller::install(train::TrainOptions& options) {
  if (cache_.defined() && (options.crop_padding > 0 || options.hflip))
    core::throw_input("--cache-teacher: needs augmentation off (--crop-padding 0 --no-hflip): with "
                      "random crops/flips the teacher sees a different image every epoch");
  options.label_smoothing = settings_.label_smoothing;
  // Module::to swaps parameter data in place, so the tensors handed out below stay the leaves.
  const auto device = train::parse_device(options.device);
  if (teacher_) (*teacher_)->to(device);
  for (auto& p : projections_) p->to(device);
  options.extra_parameters = projection_parameters();
  options.on_batch = [this](const data::Batch& batch) { batch_indices_ = batch.indices; };
  options.loss = [this](model::ViT& student, const torch::Tensor& x, const torch::Tensor& y,
                        torch::Tensor& logits) {
    auto parts = compute(student, x, y, &batch_indices_);
    logits = parts.logits;
    return parts.total;
  };
}

}  // namespace vitopt::distill
