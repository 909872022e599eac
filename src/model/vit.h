// The ViT as a LibTorch module, timm layout and names (so named_parameters() are timm's keys):
//   [cls_token (1,1,C)], [dist_token (1,1,C)], [reg_token (1,R,C)], pos_embed (1,N or patches,C),
//   patch_embed.proj.{weight,bias}, blocks.<i>.norm1, .attn.qkv, .attn.proj, .norm2, .mlp.fc1,
//   .mlp.fc2, norm or fc_norm (final LayerNorm on tokens or on pooled features), head, [head_dist].
// Legend: B batch, N tokens, C embed dim, H heads, D head dim, M MLP width, P patch.
// forward(x) is the fast path; forward(x, &trace) also records what compression needs.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <utility>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::model {

// What a traced forward records/applies. Record flags fill the vectors (one entry per block, in
// block order; a skipped sub-block gives an undefined tensor). Gates, when defined, are multiplied
// in: head_gates[b] (H_b) on per-head attention outputs, neuron_gates[b] (M_b) on GELU outputs,
// attn_gates[b] / mlp_gates[b] (scalars) on the sub-block outputs before the residual add.
struct Trace {
  bool record_attn = false;      // attn_probs[b]: (B, H, N, N) post-softmax
  bool record_hidden = false;    // hidden[0]: embeddings (B,N,C); hidden[b+1]: output of block b
  bool record_heads = false;     // head_out[b]: (B, N, H, D) per-head context before proj
  bool record_mlp = false;       // mlp_act[b]: (B, N, M) post-GELU
  bool record_features = false;  // features: (B, N, C) after final norm
  std::vector<torch::Tensor> attn_probs, hidden, head_out, mlp_act;
  torch::Tensor features;
  std::vector<torch::Tensor> head_gates, neuron_gates, attn_gates, mlp_gates;
  // Mean ablation: where a gate g and the matching mean are both defined, the gated output is
  // g * x + (1 - g) * mean, so a removed part (g = 0) outputs its mean instead of zero.
  // head_means[b] (H_b, D), neuron_means[b] (M_b), attn_means[b] / mlp_means[b] (C).
  std::vector<torch::Tensor> head_means, neuron_means, attn_means, mlp_means;
};

// Linear with the variants compression swaps in (DESIGN §3): dense by default; `mask` (same shape
// as weight) zeroes pruned weights in forward and keeps them zero; `weight_transform` /
// `input_transform` let quantization insert fake-quant (STE) without the forward code knowing.
// rank > 0: low-rank, the weight is weight_u (out, r) @ weight_v (r, in) and `weight` is undefined.
// Weight sharing: a Linear made with own_weights = false registers only its bias (and delta);
// share_weights() points its weight tensors at the owner's, so forward runs those and gradients
// of every user accumulate into the owner's parameters. delta_rank > 0 (shared only) adds the
// Linear's own low-rank correction: W = W_owner + delta_u (out, r) @ delta_v (r, in).
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true, int64_t rank = 0,
             bool own_weights = true, int64_t delta_rank = 0);
  torch::Tensor forward(const torch::Tensor& x);  // (..., in) -> (..., out)
  // Weight with mask/transform applied, plus the delta of a shared Linear (out, in).
  torch::Tensor effective_weight() const;
  void share_weights(const LinearImpl& owner);  // same shapes (InternalError otherwise)
  bool shares_weights() const { return !own_weights; }
  // Registers (or overwrites) the `mask` buffer (out, in) and zeroes the masked weights.
  void set_mask(const torch::Tensor& mask01);
  torch::Tensor weight, bias;        // (out, in), (out) or undefined
  torch::Tensor weight_u, weight_v;  // low-rank factors (out, r), (r, in) or undefined
  torch::Tensor delta_u, delta_v;    // a shared Linear's delta (out, dr), (dr, in) or undefined
  torch::Tensor mask;                // optional buffer (out, in)
  std::function<torch::Tensor(const torch::Tensor&)> weight_transform, input_transform;
  // Low-rank only: applied to the (..., r) activation between the factors, i.e. the input of
  // weight_u (its input quantization in a quantized file). Unset: no cost.
  std::function<torch::Tensor(const torch::Tensor&)> mid_transform;
  int64_t in_features, out_features, rank;
  bool own_weights = true;
};
TORCH_MODULE(Linear);

class AttentionImpl : public torch::nn::Module {
 public:
  // shared: the Linears' weights come from another block (share_weights); delta_rank as Linear's.
  AttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, bool qkv_bias, int64_t qkv_rank = 0,
                int64_t proj_rank = 0, bool shared = false, int64_t delta_rank = 0);
  // x (B,N,C) -> (B,N,C). trace/block index used only when trace != nullptr. key_bias (B, N),
  // when defined, is added to every score of its key (token merging's log(size)); key_metric,
  // when given, receives the keys averaged over heads (B, N, D), token merging's similarity input.
  torch::Tensor forward(const torch::Tensor& x, Trace* trace = nullptr, int block = 0,
                        const torch::Tensor& key_bias = {}, torch::Tensor* key_metric = nullptr);
  int64_t heads, head_dim;
  Linear qkv{nullptr}, proj{nullptr};
  // Attention-matmul quantization hooks (unset: no work): q (already scaled by D^-0.5), k, v
  // (B, H, N, D) and the softmax probabilities (B, H, N, N) pass through them before the matmuls.
  std::function<torch::Tensor(const torch::Tensor&)> q_transform, k_transform, v_transform,
      probs_transform;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, int64_t fc1_rank = 0, int64_t fc2_rank = 0,
          bool shared = false, int64_t delta_rank = 0);
  torch::Tensor forward(const torch::Tensor& x, Trace* trace = nullptr, int block = 0);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// A block whose attention (attn_shared_with >= 0) or MLP (mlp_shared_with >= 0) shares an
// earlier block's weights has its own LayerNorms, biases and deltas; ViTImpl points the shared
// Linears' weights at the owner's (share_weights), so named_parameters() lists them once.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const io::ViTConfig& c, int index);
  // sizes: token merging state (B, N, 1), how many patches each token stands for; undefined while
  // no block has merged. A block that merges (merge_r > 0) reads and updates it (a null pointer
  // starts from size 1 everywhere); a block that does not merge leaves it as is.
  torch::Tensor forward(const torch::Tensor& x, Trace* trace = nullptr,
                        torch::Tensor* sizes = nullptr);
  int index;
  int attn_shared_with = -1, mlp_shared_with = -1;
  int merge_r = 0;        // BlockConfig::merge_r (capped per call by the token count)
  int prefix_tokens = 1;  // class, distillation and register tokens, never merged
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};  // null when the sub-block is skipped
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

class ViTImpl : public torch::nn::Module {
 public:
  explicit ViTImpl(io::ViTConfig config);  // config is normalize()d; weights timm-initialized
  // x (B, in_channels, image_size, image_size) normalized -> logits (B, num_classes). With a
  // distillation token: training mode returns (cls_logits + dist_logits) / 2 as well (see
  // forward_heads for both); eval mode returns their average like DeiT.
  torch::Tensor forward(const torch::Tensor& x, Trace* trace = nullptr);
  // (B, N, C) after the final norm (before it when the config's fc_norm norms pooled features)
  torch::Tensor forward_features(const torch::Tensor& x, Trace* trace = nullptr);
  // Both heads: {cls head logits, dist head logits (undefined without distillation token)}.
  std::pair<torch::Tensor, torch::Tensor> forward_heads(const torch::Tensor& x,
                                                        Trace* trace = nullptr);
  const io::ViTConfig& config() const { return config_; }
  BlockImpl& block(int i) { return *blocks[i]->as<BlockImpl>(); }
  void init_weights(uint64_t seed);  // trunc_normal(0.02) linears/pos/cls, zeros biases, LN 1/0
  // Token merging per block (depth entries, each >= 0): updates the config and the blocks.
  void set_merge(const std::vector<int>& merge_r);

  torch::nn::Conv2d patch_embed_proj{nullptr};  // registered as patch_embed.proj
  // Optional transform of the image (B, in_ch, H, W) before the patch embedding conv, e.g. input
  // fake-quantization of a quantized model (the conv is a Linear on patches). Unset: no cost.
  std::function<torch::Tensor(const torch::Tensor&)> patch_input_transform;
  torch::Tensor cls_token, dist_token, reg_token, pos_embed;  // undefined where the layout has none
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};  // registered as "norm" or, with fc_norm, "fc_norm"
  Linear head{nullptr}, head_dist{nullptr};

 private:
  io::ViTConfig config_;
  // forward_features, also returning the token sizes under merging (undefined without).
  torch::Tensor forward_tokens(const torch::Tensor& x, Trace* trace, torch::Tensor* sizes);
};
TORCH_MODULE(ViT);

}  // namespace vitopt::model
