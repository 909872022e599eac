// KD loss functions (see kd_losses.h). Teacher tensors are detached here so a caller cannot leak
// gradients into the teacher by accident.
#include "compress/distill/kd_losses.h"

#include <fmt/ranges.h>

#include "core/error.h"

namespace vitopt::distill {

namespace F = torch::nn::functional;

torch::Tensor kd_logit_loss(const torch::Tensor& student, const torch::Tensor& teacher,
                            double temperature) {
  if (!(temperature > 0)) core::throw_input("--temperature: expected > 0, got {}", temperature);
  if (student.sizes() != teacher.sizes())
    core::throw_input("KD: student logits [{}] and teacher logits [{}] differ in shape (are the "
                      "class counts the same?)",
                      fmt::join(student.sizes(), ", "), fmt::join(teacher.sizes(), ", "));
  const auto log_s = F::log_softmax(student / temperature, F::LogSoftmaxFuncOptions(1));  // (B, K)
  const auto log_t =
      F::log_softmax(teacher.detach() / temperature, F::LogSoftmaxFuncOptions(1));  // (B, K)
  // sum_k p_t (log p_t - log p_s), computed from log-probabilities (no 0 * log 0).
  const auto kl = (log_t.exp() * (log_t - log_s)).sum();
  return kl / static_cast<double>(student.size(0)) * (temperature * temperature);
}

torch::Tensor hard_distill_loss(const torch::Tensor& student, const torch::Tensor& teacher) {
  const auto target = teacher.detach().argmax(1);  // (B)
  return F::cross_entropy(student, target);
}

torch::Tensor map_teacher_heads(const torch::Tensor& teacher_attn, int64_t student_heads) {
  const int64_t B = teacher_attn.size(0), Ht = teacher_attn.size(1), N = teacher_attn.size(2);
  const int64_t Hs = student_heads;
  if (Ht == Hs) return teacher_attn;
  if (Hs > 0 && Ht % Hs == 0) {
    // (B, Ht, N, N) -> (B, Hs, Ht/Hs, N, N) -> mean over each group of consecutive heads.
    return teacher_attn.reshape({B, Hs, Ht / Hs, N, N}).mean(2);
  }
  if (Ht > 0 && Hs % Ht == 0) return teacher_attn.repeat_interleave(Hs / Ht, 1);  // (B, Hs, N, N)
  core::throw_input(
      "attention distillation: teacher has {} heads and student {}; one count must divide the "
      "other to map heads (average groups of teacher heads or repeat them)",
      Ht, Hs);
}

torch::Tensor attention_loss(const torch::Tensor& student_attn, const torch::Tensor& teacher_attn,
                             const std::string& kind) {
  if (student_attn.sizes() != teacher_attn.sizes())
    core::throw_internal("attention_loss: shapes [{}] and [{}] differ",
                         fmt::join(student_attn.sizes(), ", "),
                         fmt::join(teacher_attn.sizes(), ", "));
  const auto t = teacher_attn.detach();
  if (kind == "mse") return (student_attn - t).pow(2).mean();
  if (kind != "kl")
    core::throw_input("--attn-loss: expected 'kl' or 'mse', got '{}'", kind);
  // Probabilities can underflow to exactly 0; the clamp keeps log finite and 0 * log stays 0.
  const double eps = 1e-8;
  const auto kl = (t * (t.clamp_min(eps).log() - student_attn.clamp_min(eps).log())).sum(-1);
  return kl.mean();  // over (B, H, N query rows)
}

torch::Tensor common_tokens(const torch::Tensor& t, int64_t prefix, int64_t dim) {
  if (prefix == 1) return t;
  const int64_t n = t.size(dim);
  // [cls, dist, patches...] -> [cls, patches...]
  return torch::cat({t.narrow(dim, 0, 1), t.narrow(dim, 2, n - 2)}, dim);
}

torch::Tensor common_attention(const torch::Tensor& attn, int64_t prefix) {
  if (prefix == 1) return attn;
  auto a = common_tokens(common_tokens(attn, prefix, 2), prefix, 3);  // (B, H, N-1, N-1)
  return a / a.sum(-1, /*keepdim=*/true).clamp_min(1e-12);
}

torch::Tensor feature_loss(const torch::Tensor& student_projected, const torch::Tensor& teacher) {
  const int64_t C = teacher.size(-1);
  if (student_projected.sizes() != teacher.sizes())
    core::throw_internal("feature_loss: shapes [{}] and [{}] differ",
                         fmt::join(student_projected.sizes(), ", "),
                         fmt::join(teacher.sizes(), ", "));
  const auto s = F::layer_norm(student_projected, F::LayerNormFuncOptions({C}));
  const auto t = F::layer_norm(teacher.detach(), F::LayerNormFuncOptions({C}));
  return F::mse_loss(s, t);
}

}  // namespace vitopt::distill
