// The ViT modules (timm's VisionTransformer numerics and tensor names) and their initialization.
// Loading/saving weights lives in model_file.cpp; config validation in vit_config.cpp.
// Legend: B batch, N tokens, C embed dim, H heads, D head dim, M MLP width, P patch, K classes.
#include "model/vit.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/ranges.h>

#include <cmath>

#include "core/error.h"
#include "model/fused_attention.h"
#include "model/partial_forward.h"
#include "model/token_merge.h"

namespace vitopt::model {
namespace {

// A gate for block b from a (possibly shorter or partly undefined) vector, or undefined.
const torch::Tensor* gate_at(const std::vector<torch::Tensor>& gates, int b) {
  if (b < static_cast<int>(gates.size()) && gates[b].defined()) return &gates[b];
  return nullptr;
}

// x * g, or x * g + (1 - g) * mean for mean ablation (g and mean already broadcast against x).
torch::Tensor gated(const torch::Tensor& x, const torch::Tensor& g, const torch::Tensor* mean) {
  if (mean == nullptr) return x * g;
  return x * g + (1 - g) * *mean;
}

// timm's trunc_normal_(std) truncated at two standard deviations, drawn on the CPU from `gen`
// (deterministic and independent of the global RNG), then copied to t's device.
void trunc_normal(torch::Tensor& t, double stddev, at::Generator& gen) {
  auto cpu = torch::empty(t.sizes(), torch::TensorOptions().dtype(torch::kFloat));
  cpu.normal_(0.0, stddev, gen).clamp_(-2 * stddev, 2 * stddev);
  t.copy_(cpu);
}

}  // namespace

// ---- Linear -------------------------------------------------------------------------------------

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias, int64_t r, bool own,
                       int64_t delta_rank)
    : in_features(in), out_features(out), rank(r), own_weights(own) {
  if (!own_weights) {
    // share_weights() sets weight / weight_u / weight_v; the delta starts at zero (W = W_owner).
    if (delta_rank > 0) {
      delta_u = register_parameter("delta_u", torch::zeros({out, delta_rank}));  // (out, dr)
      delta_v = register_parameter("delta_v", torch::zeros({delta_rank, in}));   // (dr, in)
    }
  } else if (rank > 0) {
    weight_u = register_parameter("weight_u", torch::empty({out, rank}));  // (out, r)
    weight_v = register_parameter("weight_v", torch::empty({rank, in}));   // (r, in)
  } else {
    weight = register_parameter("weight", torch::empty({out, in}));  // (out, in)
  }
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));  // (out)
}

void LinearImpl::share_weights(const LinearImpl& owner) {
  if (own_weights || owner.shares_weights() || owner.rank != rank ||
      owner.in_features != in_features || owner.out_features != out_features)
    core::throw_internal("Linear::share_weights: [{}, {}] rank {} cannot share [{}, {}] rank {}",
                         out_features, in_features, rank, owner.out_features, owner.in_features,
                         owner.rank);
  // The same tensors (not copies): in-place updates, .to() and loads of the owner reach here.
  weight = owner.weight;
  weight_u = owner.weight_u;
  weight_v = owner.weight_v;
}

namespace {

// The (possibly shared) weight with mask and transform applied, without the delta (out, in).
torch::Tensor hooked_weight(const LinearImpl& l) {
  torch::Tensor w = l.rank > 0 ? l.weight_u.mm(l.weight_v) : l.weight;
  if (l.mask.defined()) w = w * l.mask;
  return l.weight_transform ? l.weight_transform(w) : w;
}

}  // namespace

torch::Tensor LinearImpl::effective_weight() const {
  torch::Tensor w = hooked_weight(*this);
  if (delta_u.defined()) w = w + delta_u.mm(delta_v);  // fp32, after the shared weight's quant
  return w;
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  const torch::Tensor& in = input_transform ? input_transform(x) : x;  // (..., in)
  torch::Tensor y;
  if (rank > 0 && !mask.defined() && !weight_transform) {
    // Two thin matmuls: (..., in) -> (..., r) -> (..., out).
    auto mid = torch::linear(in, weight_v);  // (..., r)
    if (mid_transform) mid = mid_transform(mid);
    y = torch::linear(mid, weight_u, bias);
  } else {
    if (mid_transform)
      core::throw_internal(
          "Linear: an intermediate hook needs the two-factor path (no mask or "
          "weight transform)");
    y = torch::linear(in, hooked_weight(*this), bias);  // (..., out)
  }
  // A shared Linear's delta runs on the unquantized input in fp32 (as the runtime runs it).
  if (delta_u.defined()) y = y + torch::linear(torch::linear(x, delta_v), delta_u);
  return y;
}

void LinearImpl::set_mask(const torch::Tensor& mask01) {
  const auto ref = rank > 0 ? weight_u : weight;
  if (mask01.dim() != 2 || mask01.size(0) != out_features || mask01.size(1) != in_features) {
    core::throw_internal("Linear::set_mask: expected mask shape [{}, {}], got [{}]", out_features,
                         in_features, fmt::join(mask01.sizes(), ", "));
  }
  auto m = mask01.to(ref.options()).detach();
  if (mask.defined()) {
    torch::NoGradGuard no_grad;
    mask.copy_(m);
  } else {
    mask = register_buffer("mask", m.clone());
  }
  if (rank == 0) {
    torch::NoGradGuard no_grad;
    weight.mul_(mask);
  }
}

// ---- Attention ----------------------------------------------------------------------------------

AttentionImpl::AttentionImpl(int64_t dim, int64_t h, int64_t d, bool qkv_bias, int64_t qkv_rank,
                             int64_t proj_rank, bool shared, int64_t delta_rank)
    : heads(h), head_dim(d) {
  qkv = register_module("qkv", Linear(dim, 3 * h * d, qkv_bias, qkv_rank, !shared, delta_rank));
  proj = register_module("proj", Linear(h * d, dim, true, proj_rank, !shared, delta_rank));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, Trace* trace, int block,
                                     const torch::Tensor& key_bias, torch::Tensor* key_metric) {
  const int64_t B = x.size(0), N = x.size(1);
  // (B, N, 3*H*D) -> (B, N, 3, H, D) -> (3, B, H, N, D), exactly timm's layout.
  auto qkv_out = qkv->forward(x).reshape({B, N, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  auto q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];  // (B, H, N, D)
  if (key_metric != nullptr) *key_metric = k.detach().mean(1);  // (B, N, D), before quantization
  q = q * std::pow(static_cast<double>(head_dim), -0.5);
  if (q_transform) q = q_transform(q);
  if (k_transform) k = k_transform(k);
  if (v_transform) v = v_transform(v);
  torch::Tensor ctx;  // (B, N, H, D)
  const bool grad = torch::GradMode::is_enabled() &&
                    (q.requires_grad() || k.requires_grad() || v.requires_grad());
  const bool need_probs = probs_transform || (trace != nullptr && trace->record_attn);
  if (grad && !need_probs && use_fused_attention(N)) {
    // Training: no (B, H, N, N) probabilities kept for backward (q is already scaled).
    ctx = fused_attention(q, k, v, 1.0, key_bias).transpose(1, 2);
  } else {
    auto scores = torch::matmul(q, k.transpose(-2, -1));  // (B, H, N, N)
    if (key_bias.defined()) scores = scores + key_bias.view({B, 1, 1, N});
    auto attn = scores.softmax(-1);  // (B, H, N, N)
    if (probs_transform) attn = probs_transform(attn);
    ctx = torch::matmul(attn, v).transpose(1, 2);
    if (trace != nullptr && trace->record_attn) trace->attn_probs[block] = attn;
  }
  if (trace != nullptr) {
    if (const auto* g = gate_at(trace->head_gates, block)) {
      // (H, D) means, or per-example values (B, N, H, D) (circuits' resample ablation).
      const auto* mean = gate_at(trace->head_means, block);
      const auto mv = !mean              ? torch::Tensor()
                      : mean->dim() == 2 ? mean->view({1, 1, heads, head_dim})
                                         : *mean;
      ctx = gated(ctx, g->view({1, 1, -1, 1}), mean ? &mv : nullptr);
    }
    if (trace->record_heads) trace->head_out[block] = ctx;
  }
  return proj->forward(ctx.reshape({B, N, heads * head_dim}));  // (B, N, C)
}

// ---- Mlp ----------------------------------------------------------------------------------------

MlpImpl::MlpImpl(int64_t dim, int64_t hidden, int64_t fc1_rank, int64_t fc2_rank, bool shared,
                 int64_t delta_rank) {
  fc1 = register_module("fc1", Linear(dim, hidden, true, fc1_rank, !shared, delta_rank));
  fc2 = register_module("fc2", Linear(hidden, dim, true, fc2_rank, !shared, delta_rank));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, Trace* trace, int block) {
  auto h = torch::gelu(fc1->forward(x));  // (B, N, M), exact erf GELU like nn.GELU()
  if (trace != nullptr) {
    if (const auto* g = gate_at(trace->neuron_gates, block))
      h = gated(h, *g, gate_at(trace->neuron_means, block));  // means (M)
    if (trace->record_mlp) trace->mlp_act[block] = h;
  }
  return fc2->forward(h);  // (B, N, C)
}

// ---- Block --------------------------------------------------------------------------------------

BlockImpl::BlockImpl(const io::ViTConfig& c, int i) : index(i) {
  const io::BlockConfig& bc = c.blocks.at(i);
  attn_shared_with = bc.attn_shared_with;
  mlp_shared_with = bc.mlp_shared_with;
  merge_r = bc.skip_attn ? 0 : bc.merge_r;  // the keys are the merge metric
  prefix_tokens = c.num_prefix_tokens();
  const auto ln = torch::nn::LayerNormOptions({c.embed_dim}).eps(c.ln_eps);
  if (!bc.skip_attn) {
    const bool shared = attn_shared_with >= 0;
    norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
    attn = register_module(
        "attn", Attention(c.embed_dim, c.block_heads(i), c.head_dim, c.qkv_bias, bc.qkv_rank,
                          bc.proj_rank, shared, shared ? bc.delta_rank : 0));
  }
  if (!bc.skip_mlp) {
    const bool shared = mlp_shared_with >= 0;
    norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
    mlp = register_module("mlp", Mlp(c.embed_dim, c.block_mlp(i), bc.fc1_rank, bc.fc2_rank, shared,
                                     shared ? bc.delta_rank : 0));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& input, Trace* trace, torch::Tensor* sizes) {
  torch::Tensor x = input;  // (B, N, C)
  torch::Tensor local_sizes;
  if (sizes == nullptr) sizes = &local_sizes;
  const int64_t N = x.size(1);
  const int64_t r = std::min<int64_t>(merge_r, std::max<int64_t>(N - prefix_tokens, 0) / 2);
  if (attn) {
    // Proportional attention: a token standing for s patches gets log(s) on its scores.
    const auto bias = sizes->defined() ? sizes->log().squeeze(-1) : torch::Tensor();  // (B, N)
    torch::Tensor metric;
    auto a = attn->forward(norm1->forward(x), trace, index, bias, r > 0 ? &metric : nullptr);
    if (trace != nullptr) {
      if (const auto* g = gate_at(trace->attn_gates, index))
        a = gated(a, *g, gate_at(trace->attn_means, index));  // mean (C)
    }
    x = x + a;
    if (r > 0) {
      const TokenMatch match = bipartite_soft_matching(metric, r, prefix_tokens);
      std::tie(x, *sizes) = merge_weighted(match, x, *sizes);  // (B, N - r, C), (B, N - r, 1)
    }
  }
  if (mlp) {
    auto m = mlp->forward(norm2->forward(x), trace, index);  // (B, N, C)
    if (trace != nullptr) {
      if (const auto* g = gate_at(trace->mlp_gates, index))
        m = gated(m, *g, gate_at(trace->mlp_means, index));  // mean (C)
    }
    x = x + m;
  }
  if (trace != nullptr && trace->record_hidden) trace->hidden[index + 1] = x;
  return x;
}

// ---- ViT ----------------------------------------------------------------------------------------

ViTImpl::ViTImpl(io::ViTConfig config) : config_(std::move(config)) {
  config_.normalize(config_.name);
  const io::ViTConfig& c = config_;
  const int64_t C = c.embed_dim;

  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  patch_embed_proj = patch_embed->register_module(
      "proj", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(c.in_channels, C, c.patch_size).stride(c.patch_size)));
  if (c.class_token) cls_token = register_parameter("cls_token", torch::zeros({1, 1, C}));
  if (c.distill_token) dist_token = register_parameter("dist_token", torch::zeros({1, 1, C}));
  if (c.reg_tokens > 0)
    reg_token = register_parameter("reg_token", torch::zeros({1, c.reg_tokens, C}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, c.pos_embed_tokens(), C}));

  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.depth; ++i) {
    auto block = Block(c, i);
    if (block->attn_shared_with >= 0) {
      const BlockImpl& o = *blocks[block->attn_shared_with]->as<BlockImpl>();
      block->attn->qkv->share_weights(*o.attn->qkv);
      block->attn->proj->share_weights(*o.attn->proj);
    }
    if (block->mlp_shared_with >= 0) {
      const BlockImpl& o = *blocks[block->mlp_shared_with]->as<BlockImpl>();
      block->mlp->fc1->share_weights(*o.mlp->fc1);
      block->mlp->fc2->share_weights(*o.mlp->fc2);
    }
    blocks->push_back(block);
  }
  norm = register_module(c.final_norm_name(),
                         torch::nn::LayerNorm(torch::nn::LayerNormOptions({C}).eps(c.ln_eps)));
  head = register_module("head", Linear(C, c.num_classes));
  if (c.distill_token) head_dist = register_module("head_dist", Linear(C, c.num_classes));
  init_weights(0);
}

void ViTImpl::set_merge(const std::vector<int>& merge_r) {
  if (static_cast<int>(merge_r.size()) != config_.depth)
    core::throw_internal("ViT::set_merge: {} values for {} blocks", merge_r.size(), config_.depth);
  for (int i = 0; i < config_.depth; ++i) {
    config_.blocks[static_cast<size_t>(i)].merge_r = merge_r[static_cast<size_t>(i)];
    BlockImpl& b = block(i);
    b.merge_r =
        config_.blocks[static_cast<size_t>(i)].skip_attn ? 0 : merge_r[static_cast<size_t>(i)];
  }
  config_.normalize(config_.name);
}

void ViTImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const double sd = 0.02;
  trunc_normal(pos_embed, sd, gen);
  for (torch::Tensor* t : {&cls_token, &dist_token, &reg_token})
    if (t->defined()) trunc_normal(*t, sd, gen);
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* lin = module->as<LinearImpl>()) {
      if (lin->shares_weights()) {
        // The owner initialized the weights. The delta starts as LoRA does: delta_u zero (so
        // W = W_owner) and delta_v random (so delta_u gets gradients).
        if (lin->delta_u.defined()) {
          lin->delta_u.zero_();
          trunc_normal(lin->delta_v, sd, gen);
        }
      } else if (lin->rank > 0) {
        // Factors with std s give a product of std sqrt(r) * s^2: aim for timm's 0.02.
        const double s = std::sqrt(sd / std::sqrt(static_cast<double>(lin->rank)));
        trunc_normal(lin->weight_u, s, gen);
        trunc_normal(lin->weight_v, s, gen);
      } else {
        trunc_normal(lin->weight, sd, gen);
        if (lin->mask.defined()) lin->weight.mul_(lin->mask);
      }
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* ln = module->as<torch::nn::LayerNormImpl>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    } else if (auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      trunc_normal(conv->weight, sd, gen);  // like a Linear on the flattened (C, in*P*P) weight
      conv->bias.zero_();
    }
  }
}

torch::Tensor embed_tokens(ViTImpl& m, const torch::Tensor& x) {
  const int64_t B = x.size(0);
  const auto& pe_in = m.patch_input_transform ? m.patch_input_transform(x) : x;  // (B, in, H, W)
  auto h = m.patch_embed_proj->forward(pe_in).flatten(2).transpose(1, 2);  // (B, N - prefix, C)
  // Prefix tokens in the layout's order: class, distillation, registers.
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor* t : {&m.cls_token, &m.dist_token, &m.reg_token})
    if (t->defined()) parts.push_back(t->expand({B, -1, -1}));  // (B, 1 or R, C)
  // timm's no_embed_class: the position embedding covers the patches only.
  if (m.config().no_embed_class) {
    parts.push_back(h + m.pos_embed);
    return torch::cat(parts, 1);  // (B, N, C)
  }
  parts.push_back(h);
  return torch::cat(parts, 1) + m.pos_embed;  // (B, N, C)
}

namespace {

// The pooled features (B, C) of the final tokens (B, N, C): the class token, or the mean of the
// patch tokens, weighted by their sizes under token merging (so the mean stays over patches);
// then the final norm when it is fc_norm (forward_tokens normed every token otherwise).
torch::Tensor pool_features(ViTImpl& m, const torch::Tensor& feats, const torch::Tensor& sizes) {
  const io::ViTConfig& c = m.config();
  torch::Tensor pooled;
  if (c.pool != "avg") {
    pooled = feats.select(1, 0);
  } else {
    const auto patches = feats.slice(1, c.num_prefix_tokens());
    if (!sizes.defined()) {
      pooled = patches.mean(1);
    } else {
      const auto s = sizes.slice(1, c.num_prefix_tokens());  // (B, N', 1)
      pooled = (patches * s).sum(1) / s.sum(1);
    }
  }
  return c.fc_norm ? m.norm->forward(pooled) : pooled;
}

// The distillation head's input (B, C): token 1, normed like the class token.
torch::Tensor dist_features(ViTImpl& m, const torch::Tensor& feats) {
  const auto t = feats.select(1, 1);
  return m.config().fc_norm ? m.norm->forward(t) : t;
}

}  // namespace

torch::Tensor logits_from_block(ViTImpl& m, torch::Tensor h, int first, Trace* trace) {
  const auto& c = m.config();
  for (int i = 0; i < first && i < c.depth; ++i) {
    if (m.block(i).merge_r > 0)
      core::throw_input(
          "ViT '{}': rerunning from block {} needs the token sizes of merging block {}: "
          "set token merging after this step (or run without it)",
          c.name, first, i);
  }
  torch::Tensor sizes;
  for (int i = first; i < c.depth; ++i) h = m.block(i).forward(h, trace, &sizes);
  auto feats = c.fc_norm ? h : m.norm->forward(h);                // (B, N, C)
  auto logits = m.head->forward(pool_features(m, feats, sizes));  // (B, K)
  if (c.distill_token) logits = (logits + m.head_dist->forward(dist_features(m, feats))) / 2;
  return logits;
}

torch::Tensor ViTImpl::forward_features(const torch::Tensor& x, Trace* trace) {
  torch::Tensor sizes;
  return forward_tokens(x, trace, &sizes);
}

torch::Tensor ViTImpl::forward_tokens(const torch::Tensor& x, Trace* trace, torch::Tensor* sizes) {
  const io::ViTConfig& c = config_;
  if (x.dim() != 4 || x.size(1) != c.in_channels || x.size(2) != c.image_size ||
      x.size(3) != c.image_size) {
    core::throw_input("ViT '{}': expected input of shape [B, {}, {}, {}], got [{}]", c.name,
                      c.in_channels, c.image_size, c.image_size, fmt::join(x.sizes(), ", "));
  }
  if (trace != nullptr) {
    auto reset = [](bool on, std::vector<torch::Tensor>& v, size_t n) {
      if (on) v.assign(n, torch::Tensor());
    };
    reset(trace->record_attn, trace->attn_probs, c.depth);
    reset(trace->record_hidden, trace->hidden, c.depth + 1);
    reset(trace->record_heads, trace->head_out, c.depth);
    reset(trace->record_mlp, trace->mlp_act, c.depth);
  }
  auto h = embed_tokens(*this, x);  // (B, N, C)
  if (trace != nullptr && trace->record_hidden) trace->hidden[0] = h;
  for (int i = 0; i < c.depth; ++i) h = blocks[i]->as<BlockImpl>()->forward(h, trace, sizes);
  if (!c.fc_norm) h = norm->forward(h);  // (B, N, C); fc_norm norms the pooled features instead
  if (trace != nullptr && trace->record_features) trace->features = h;
  return h;
}

std::pair<torch::Tensor, torch::Tensor> ViTImpl::forward_heads(const torch::Tensor& x,
                                                               Trace* trace) {
  torch::Tensor sizes;
  const auto feats = forward_tokens(x, trace, &sizes);                // (B, N', C)
  auto logits = head->forward(pool_features(*this, feats, sizes));    // (B, K)
  torch::Tensor dist_logits;
  if (config_.distill_token) dist_logits = head_dist->forward(dist_features(*this, feats));
  return {logits, dist_logits};
}

torch::Tensor ViTImpl::forward(const torch::Tensor& x, Trace* trace) {
  auto [logits, dist_logits] = forward_heads(x, trace);
  if (dist_logits.defined()) return (logits + dist_logits) / 2;  // DeiT: average of both heads
  return logits;
}

}  // namespace vitopt::model
