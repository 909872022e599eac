// The teacher→student loss for the training loop: which distillation modes are on, how their
// terms are weighted, how student blocks/heads/widths map onto the teacher's, the learned feature
// projections, and the per-image cache of teacher logits. Plugs into train::TrainOptions hooks;
// the loop itself (optimizer, schedule, checkpoints) stays in train/.
// Legend: B batch, K classes, H heads, N tokens, C width.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/vit.h"
#include "train/trainer.h"

namespace vitopt::distill {

enum class Mode { Logit, Hard, Token, Feature, Attention };

// Everything that shapes the distillation loss except the modes themselves.
struct DistillSettings {
  double temperature = 4.0;     // T for soft KD (logit mode); typical 2-8
  double alpha = 0.5;           // weight of the teacher term vs cross-entropy, in [0, 1]
  double feature_weight = 1.0;  // weight of the hidden-state MSE (feature mode)
  double attn_weight = 1.0;     // weight of the attention-map loss (attention mode)
  std::string attn_loss = "kl"; // "kl" or "mse"
  // Student block -> teacher block pairs for feature/attention modes (0-based). Empty: every
  // student block i maps to teacher block round((i+1) * Dt / Ds) - 1 (identity for equal depth).
  std::vector<std::pair<int, int>> layer_map;
  // Keep teacher logits per dataset index (augmentation must be off); used by runs whose modes
  // need only the teacher's logits (logit, hard, token), ignored by feature/attention runs.
  bool cache_teacher = false;
  double label_smoothing = 0.1; // on the cross-entropy term, as in `vitopt train`
};

// "logit,attention" -> {Logit, Attention}; "none" or "" -> {} (the student alone). Throws
// InputError naming the unknown mode and the valid ones.
std::set<Mode> parse_modes(const std::string& text);
std::string mode_name(Mode m);
std::string modes_name(const std::set<Mode>& modes);  // "logit+attention", "none"
// "0:1,1:3" -> {{0,1},{1,3}}; throws InputError on malformed pairs.
std::vector<std::pair<int, int>> parse_layer_map(const std::string& text);
std::vector<std::pair<int, int>> default_layer_map(int student_depth, int teacher_depth);

// Checks that the modes and settings fit the two models (alpha range, class counts, input shapes,
// distillation token present for token mode, layer map in range). Throws InputError naming the flag/field and expected value.
void validate(const std::set<Mode>& modes, const DistillSettings& s,
              const io::ViTConfig& student, const io::ViTConfig* teacher);

// One step's loss terms (scalars; undefined when the mode is off).
struct LossParts {
  torch::Tensor total, ce, kd, feature, attention;
  torch::Tensor logits;  // (B, K) what accuracy is measured on (heads averaged in token mode)
};

class Distiller {
 public:
  // teacher may be null only when modes is empty. train_size: dataset size (cache rows).
  Distiller(std::optional<model::ViT> teacher, const io::ViTConfig& student_config,
            std::set<Mode> modes, DistillSettings settings, size_t train_size, uint64_t seed);

  // The combined loss for one batch. x (B,C,H,W) normalized for the student, y (B); indices (B)
  // dataset indices (needed only with the cache; null: no caching for this call).
  LossParts compute(model::ViT& student, const torch::Tensor& x, const torch::Tensor& y,
                    const std::vector<int64_t>* indices);

  // Teacher logits (B, K) for a student-normalized batch, from the cache when every index is
  // cached, else from a teacher forward (filling the cache).
  torch::Tensor teacher_logits(const torch::Tensor& x, const std::vector<int64_t>* indices);

  // Installs loss / on_batch / extra_parameters into `options` (which must outlive nothing: the
  // hooks capture this Distiller, which must outlive the training run).
  void install(train::TrainOptions& options);

  // Learned feature projections (student width -> teacher width), one per mapped layer pair.
  std::vector<std::pair<std::string, torch::Tensor>> projection_parameters() const;
  const std::vector<std::pair<int, int>>& layer_map() const { return layer_map_; }
  const std::set<Mode>& modes() const { return modes_; }
  int64_t cache_hits() const { return cache_hits_; }
  int64_t cache_misses() const { return cache_misses_; }
  int64_t teacher_forwards() const { return teacher_forwards_; }

 private:
  torch::Tensor teacher_input(const torch::Tensor& x) const;  // student -> teacher normalization
  bool has(Mode m) const { return modes_.count(m) > 0; }

  std::optional<model::ViT> teacher_;
  io::ViTConfig student_config_;
  std::set<Mode> modes_;
  DistillSettings settings_;
  std::vector<std::pair<int, int>> layer_map_;
  std::vector<torch::nn::Linear> projections_;  // per layer pair (empty when widths match)
  torch::Tensor input_scale_, input_shift_;     // (1, C, 1, 1) teacher renormalization, or undefined
  torch::Tensor cache_;                         // (train_size, K) teacher logits
  std::vector<bool> cached_;                    // per dataset index
  std::vector<int64_t> batch_indices_;          // set by the on_batch hook
  int64_t cache_hits_ = 0, cache_misses_ = 0, teacher_forwards_ = 0;
};

}  // namespace vitopt::distill
