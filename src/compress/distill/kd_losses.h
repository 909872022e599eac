// Knowledge-distillation losses as pure functions of tensors: soft logit KD (Hinton, KL * T^2),
// hard KD (cross-entropy on the teacher's argmax), attention-map KL/MSE with a teacher→student
// head mapping, hidden-state MSE, and the token alignment between models with and without a
// distillation token. No model, no training loop here (see distiller.h).
// Legend: B batch, K classes, H heads, N tokens, C width.
#pragma once

#include <torch/torch.h>

#include <string>

namespace vitopt::distill {

// Hinton's soft-target loss: KL(softmax(teacher/T) || softmax(student/T)) summed over classes,
// averaged over the batch, times T^2 (so gradient magnitudes stay comparable across T).
// student, teacher (B, K); teacher is treated as a constant.
torch::Tensor kd_logit_loss(const torch::Tensor& student, const torch::Tensor& teacher,
                            double temperature);

// Hard distillation (DeiT): cross-entropy of the student against the teacher's argmax label.
torch::Tensor hard_distill_loss(const torch::Tensor& student, const torch::Tensor& teacher);

// Teacher attention (B, Ht, N, N) mapped to `student_heads` heads: when Ht is a multiple of Hs,
// consecutive groups of Ht/Hs teacher heads are averaged (still row-stochastic); when Hs is a
// multiple of Ht each teacher head is repeated. Other ratios throw InputError.
torch::Tensor map_teacher_heads(const torch::Tensor& teacher_attn, int64_t student_heads);

// Attention-map losses between row-stochastic maps of equal shape (B, H, N, N).
// "kl": KL(teacher row || student row) summed over keys, averaged over B, H and query rows.
// "mse": mean squared difference of the probabilities.
torch::Tensor attention_loss(const torch::Tensor& student_attn, const torch::Tensor& teacher_attn,
                             const std::string& kind);

// Tokens shared by two models that may differ in prefix tokens: [cls, (dist), patches...].
// Selects the class token and the patch tokens from a (B, N, ...) tensor along `dim`, dropping
// the distillation token when `prefix` is 2. Returns the input itself when prefix is 1.
torch::Tensor common_tokens(const torch::Tensor& t, int64_t prefix, int64_t dim);

// An attention map (B, H, N, N) restricted to the common tokens (rows and columns) and
// renormalized over the kept keys, so maps of models with/without a distillation token compare.
torch::Tensor common_attention(const torch::Tensor& attn, int64_t prefix);

// Hidden-state loss: MSE between the parameter-free LayerNorm of the (projected) student state
// and of the teacher state, both (B, N, C). Normalizing first removes the residual stream's
// depth- and model-dependent scale, so one weight works for every layer pair.
torch::Tensor feature_loss(const torch::Tensor& student_projected, const torch::Tensor& teacher);

}  // namespace vitopt::distill
