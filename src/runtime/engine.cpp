// Engine: a loaded, packed model plus one execution plan per batch size (every activation buffer
// allocated once), run on one persistent thread pool. The forward pass is timm's VisionTransformer:
//   patches -> Linear (+bias) -> [(cls), (dist), (reg x R), patches] + pos_embed       x (B, N, C)
//     (no_embed_class: pos_embed (Np, C) is added to the patches only, before the concatenation)
//   per block: x += proj(attn(LN1(x)));  x += fc2(gelu(fc1(LN2(x))))   (skips, shares honoured)
//   LN(x)[:, 0] -> head   (avg pool: mean of LN'd patch tokens; dist token: mean of both heads)
//     (fc_norm: the LayerNorm runs on the pooled (B, C) features instead of on every token)
// Legend: B batch, N tokens, Np patches, R registers, C embed dim, H heads, D head dim, M MLP
// width, K classes.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/threads.h"
#include "io/model_counts.h"
#include "io/safetensors.h"
#include "runtime/linear_layer.h"
#include "runtime/model_loader.h"
#include "runtime/token_merge.h"
#include "vitopt/runtime.h"

namespace vitopt::runtime {

namespace {

struct PackedNorm {
  AlignedBuffer<float> gamma, beta;
  explicit PackedNorm(const Norm& n = {}) : gamma(n.gamma.size()), beta(n.beta.size()) {
    std::copy(n.gamma.begin(), n.gamma.end(), gamma.data());
    std::copy(n.beta.begin(), n.beta.end(), beta.data());
  }
};

// A Linear with 1 (dense) or 2 (low-rank: v then u) factors, and, when it shares another
// block's weights with a delta, the delta's two fp32 factors (v then u, no bias).
struct Proj {
  std::vector<LinearOp> f, delta;
  bool empty() const { return f.empty(); }
  int out() const { return f.back().out(); }
  int rank() const { return f.size() == 2 ? f.front().out() : 0; }
  int delta_rank() const { return delta.empty() ? 0 : delta.front().out(); }
};

struct Block {
  int heads = 0, mlp = 0;
  bool attn = false, mlp_on = false;
  PackedNorm norm1, norm2;
  Proj qkv, proj, fc1, fc2;
  std::optional<kernels::AttentionQuantArgs> attn_quant;  // extras.attention: quantizers, codes
};

// A row-local step of blocks_by_rows, on the qkv and key slot of its block.
enum class RowStep { kPreAttn, kAttn, kPostAttn, kMlp };
struct ChainStep {
  RowStep step;
  const Block* block;
  int slot;
  bool merge_metric = false;  // kPreAttn of a block that merges: also its tokens' merge metric
};

// Activation buffers use one row stride per role (the widest block's), whatever the block, so a
// token row always occupies the same bytes; blocks_by_rows relies on it.
struct Plan {
  int batch = 0;
  bool by_rows = false;
  AlignedBuffer<float> x, xn, hidden_own, ctx, low, patches, pooled, pooled2, logits2;
  // qkv output and transposed keys. Row chains attend a block's keys on every row while the same
  // chain writes the next block's qkv on its own rows, so they alternate two slots by block.
  AlignedBuffer<float> qkv[2], kt;
  AlignedBuffer<float> kt_own;  // each thread's one-head transposed keys (D, Np)
  int qkv_ld = 0, hidden_ld = 0, ctx_ld = 0, low_ld = 0;
  // The MLP hidden activations share the qkv buffer layer by layer; row chains run an MLP and the
  // next qkv concurrently on different rows, so they get their own.
  float* hidden() { return by_rows ? hidden_own.data() : qkv[0].data(); }
  LinearScratch scratch;
  std::vector<ChainStep> pending;  // blocks_by_rows' current chain
  // Token merging: tokens per image now (starts at the model's N and shrinks block by block; the
  // rows of every buffer are packed image by image at this count), and, once a block has merged
  // (`sized`), each token's size (stride N per image) and its log (stride Np, the attention's key
  // bias). Sized for the unmerged N once, like every buffer here.
  int tokens = 0;
  bool sized = false;
  // merge_metric: the metric rows (B x N, D) of the block about to merge, made next to its keys.
  AlignedBuffer<float> sizes, sizes_next, key_bias, merge_metric, merge_f;
  AlignedBuffer<int> merge_i;
  std::vector<MergeImageArgs> merge_images;  // proj_and_merge's
};

}  // namespace

struct Engine::Impl {
  io::ViTConfig config;
  ModelInfo info;
  const kernels::KernelTable* kt = nullptr;
  std::unique_ptr<ThreadPool> pool;
  // prefix: the (class, distillation, register) token rows, pos_embed already added where the
  // layout gives them one (the same float sum forward would do); pos: the patches' (Np, C) rows.
  AlignedBuffer<float> prefix, pos;
  LinearOp patch, head, head_dist;
  std::vector<Block> blocks;  // by depth; shared weights are packed once (LinearOp)
  PackedNorm norm;  // the final LayerNorm ("norm" or "fc_norm": config.fc_norm says where)
  std::map<int, std::unique_ptr<Plan>> plans;
  enum class Schedule { kAuto, kLayer, kRows } schedule = Schedule::kAuto;
  size_t weight_bytes = 0;  // all packed Linear weights
  bool packed_int4 = false;  // <= 4-bit integer Linears run the nibble-packed kernels

  LinearOp make_op(const LinearData& d, bool simulate) const { return LinearOp(d, *kt, simulate, packed_int4); }
  // `packed`: ops already built, by weight tensor name; a Linear of a shared branch reuses its
  // owner's packed weights through them.
  Proj make_proj(const std::vector<LinearData>& d, const std::vector<LinearData>& delta,
                 bool simulate, const std::map<std::string, const LinearOp*>& packed) const {
    Proj p;
    for (const auto& l : d) {
      const auto it = packed.find(l.weight_name);
      p.f.emplace_back(l, *kt, simulate, packed_int4, it == packed.end() ? nullptr : it->second);
    }
    for (const auto& l : delta) p.delta.push_back(make_op(l, simulate));
    return p;
  }
  Plan& plan(int batch);
  // columns_done: LinearOp::run's, for a Proj of one factor without a delta only.
  void linear(const Proj& p, Plan& pl, const float* x, int ldx, int m, float* y, int ldy, bool gelu,
              bool accumulate, const LinearOp::ColumnsDone* columns_done = nullptr);
  void linear_rows(const Proj& p, Plan& pl, const float* x, int ldx, int r0, int r1, float* y,
                   int ldy, bool gelu, bool accumulate);
  void layernorm_rows(const PackedNorm& n, const float* x, float* y, int r0, int r1) const;
  // Only the fp32 SIMD attention reads transposed keys (quantized attention and the reference
  // read qkv in place): skip the work, and in the layer schedule its pool synchronisation too.
  bool needs_key_transpose(const Block& blk) const { return !blk.attn_quant && kt->fp32_isa != kernels::Isa::kRef; }
  void transpose_keys(const Block& blk, Plan& pl, int r0, int r1, int h0, int h1) const;
  kernels::AttentionArgs attention_args(const Block& blk, Plan& pl, int slot) const;
  void attention(const Block& blk, Plan& pl, int slot);
  void attention_rows(const Block& blk, Plan& pl, int slot, int chunk, int r0, int r1) const;
  void attention_with_transposes(const Block& blk, Plan& pl, int r, int rows);
  void merge_metric_rows(const Block& blk, Plan& pl, int slot, int r0, int r1) const;
  int merge_parts(const Plan& pl) const;
  void merge_tokens(const Block& blk, Plan& pl, int r);
  MergeImageArgs merge_args(const Block& blk, Plan& pl, int r, int b, int task) const;
  void proj_and_merge(const Block& blk, Plan& pl, int r, int rows);
  void merge_key_bias(Plan& pl, int b, int out_n) const;
  void finish_merge(Plan& pl, int r);
  void blocks_by_layer(Plan& pl);
  void blocks_by_rows(Plan& pl);
  bool by_rows() const;
  // Whether the packed weights exceed what the caches keep between forwards (32 MiB: about an
  // L3), so every forward streams them from memory.
  bool weights_stream() const { return weight_bytes > (size_t{32} << 20); }
  void forward(const float* images, int batch, float* logits);
};

namespace {

// The level Engine::load and kernel_report run: an explicit one must be supported, "" follows
// $VITOPT_ISA (capped) or the best this CPU has.
kernels::Isa resolve_isa(const std::string& isa) {
  if (isa.empty()) return kernels::default_isa();
  const kernels::Isa level = kernels::parse_isa(isa.c_str());
  if (!kernels::cpu_supports(level))
    core::throw_input("runtime: kernel level '{}' is not supported by this CPU (supported: {})", isa,
                      fmt::join(supported_isas(), ", "));
  return level;
}

// The int4 rule (RuntimeOptions::int4). `int8_bytes`: the model's Linear weights as the int8
// kernels would hold them. When they exceed the L3, every run streams them from memory (batch 1)
// or once per row block (batch 32), and the nibble-packed kernel moves half the bytes for a few
// extra instructions per 64 weights; while they fit, the int8 kernel skips the unpacking.
constexpr size_t kUnknownL3Bytes = size_t{32} << 20;  // one Zen 3/4 CCD, a mid Xeon socket

bool choose_packed_int4(std::string mode, size_t int8_bytes) {
  if (mode.empty() || mode == "auto") {
    const char* env = std::getenv("VITOPT_INT4");
    mode = env != nullptr && *env != '\0' ? env : "auto";
  }
  if (mode == "packed") return true;
  if (mode == "int8") return false;
  if (mode != "auto") core::throw_input("runtime: int4 kernel '{}': expected auto, packed or int8", mode);
  const size_t l3 = kernels::l3_cache_bytes();
  return int8_bytes > (l3 > 0 ? l3 : kUnknownL3Bytes);
}

size_t int8_kernel_bytes(const LoadedModel& m, bool simulate) {
  size_t total = 0;
  auto add = [&](const LinearData& d) {
    const size_t n = static_cast<size_t>(d.in) * static_cast<size_t>(d.out);
    total += runs_integer(d, simulate) ? n : n * sizeof(float);
  };
  add(m.patch);
  add(m.head);
  if (m.config.distill_token) add(m.head_dist);
  std::set<std::string> seen;  // shared weights are read once
  for (const BlockData& b : m.blocks)
    for (const auto* p : {&b.qkv, &b.proj, &b.fc1, &b.fc2})
      for (const LinearData& d : *p)
        if (seen.insert(d.weight_name).second) add(d);
  return total;
}

template <typename F>
void parallel_rows(ThreadPool& pool, int rows, int64_t work_per_row, F&& fn) {
  const int64_t total = work_per_row * rows;
  const int chunks = total < 16384 ? 1 : std::min(rows, pool.size() * 4);
  pool.run(chunks, [&](int c) {
    fn(static_cast<int>(int64_t{c} * rows / chunks), static_cast<int>(int64_t{c + 1} * rows / chunks));
  });
}

}  // namespace

Plan& Engine::Impl::plan(int batch) {
  auto& slot = plans[batch];
  if (slot) return *slot;
  auto p = std::make_unique<Plan>();
  const io::ViTConfig& c = config;
  const size_t B = static_cast<size_t>(batch), N = static_cast<size_t>(c.num_tokens());
  const size_t C = static_cast<size_t>(c.embed_dim), rows = B * N;
  const size_t np = (N + 15) / 16 * 16;
  size_t qkv_ld = 0, hidden_ld = 0, hd = 0, low = 0, heads = 0, act = 0, fake = 0;
  auto need_op = [&](const LinearOp& f) {
    act = std::max(act, static_cast<size_t>(f.act_row_bytes()));
    fake = std::max(fake, static_cast<size_t>(f.fake_row_floats()));
  };
  auto need = [&](const Proj& pr) {
    for (const auto& f : pr.f) need_op(f);
    for (const auto& f : pr.delta) need_op(f);
    low = std::max({low, static_cast<size_t>(pr.rank()), static_cast<size_t>(pr.delta_rank())});
  };
  for (const Block& b : blocks) {
    if (b.attn) {
      qkv_ld = std::max(qkv_ld, static_cast<size_t>(b.qkv.out()));
      hd = std::max(hd, static_cast<size_t>(b.proj.f.front().in()));
      heads = std::max(heads, static_cast<size_t>(b.heads));
      need(b.qkv);
      need(b.proj);
    }
    if (b.mlp_on) {
      hidden_ld = std::max(hidden_ld, static_cast<size_t>(b.mlp));
      need(b.fc1);
      need(b.fc2);
    }
  }
  for (const LinearOp* l : {&patch, &head, &head_dist}) {
    if (l->out() > 0) need_op(*l);
  }
  p->batch = batch;
  p->by_rows = by_rows();
  p->qkv_ld = static_cast<int>(qkv_ld);
  p->hidden_ld = static_cast<int>(hidden_ld);
  p->ctx_ld = static_cast<int>(hd);
  p->low_ld = static_cast<int>(low);
  p->x.resize(rows * C);
  p->xn.resize(rows * C);
  p->qkv[0].resize(rows * (p->by_rows ? qkv_ld : std::max(qkv_ld, hidden_ld)));
  if (p->by_rows) {
    p->qkv[1].resize(rows * qkv_ld);
    p->hidden_own.resize(rows * hidden_ld);
  }
  p->ctx.resize(rows * hd);
  p->low.resize(rows * low);
  // Each thread's one-head transposed keys: row chains, and the layer schedule's attention with
  // fewer images than threads (blocks_by_layer).
  p->kt_own.resize(static_cast<size_t>(pool->size()) * static_cast<size_t>(c.head_dim) * np);
  std::fill(p->kt_own.data(), p->kt_own.data() + p->kt_own.size(), 0.0f);  // padded keys
  if (!p->by_rows) p->kt.resize(B * heads * static_cast<size_t>(c.head_dim) * np);
  p->patches.resize(B * static_cast<size_t>(c.num_patches()) * static_cast<size_t>(c.patch_features()));
  p->pooled.resize(B * C);
  p->pooled2.resize(B * C);
  p->logits2.resize(B * static_cast<size_t>(c.num_classes));
  p->pending.reserve(static_cast<size_t>(c.depth) * 4);
  act = (act + 63) / 64 * 64;  // bytes: every op's element stride (u8 or s16) divides it
  p->scratch.act_ld = static_cast<int>(act);
  p->scratch.fake_ld = static_cast<int>(fake);
  p->scratch.act.resize(rows * act);
  p->scratch.row_a.resize(rows);
  p->scratch.row_b.resize(rows);
  p->scratch.row_scale.resize(rows);
  p->scratch.fake.resize(rows * fake);
  if (c.merges_tokens()) {
    p->sizes.resize(rows);
    p->sizes_next.resize(rows);
    p->key_bias.resize(B * np);
    p->merge_metric.resize(rows * static_cast<size_t>(c.head_dim));
    const size_t tasks = B * static_cast<size_t>(merge_parts(*p));
    p->merge_f.resize(tasks * merge_scratch_floats(c.num_tokens(), c.head_dim, kt));
    p->merge_i.resize(tasks * merge_scratch_ints(c.num_tokens()));
    p->merge_images.reserve(B);
  }
  slot = std::move(p);
  return *slot;
}

// A delta (shared Linear) is added before the GELU, which the GEMM epilogue would apply first:
// with one, the product runs without GELU, the delta accumulates onto it, then the GELU.
void Engine::Impl::linear(const Proj& p, Plan& pl, const float* x, int ldx, int m, float* y,
                          int ldy, bool gelu, bool accumulate,
                          const LinearOp::ColumnsDone* columns_done) {
  const bool epilogue_gelu = gelu && p.delta.empty();
  if (columns_done != nullptr && (p.f.size() != 1 || !p.delta.empty()))
    core::throw_internal("runtime: a column callback on a factored or delta Linear");
  if (p.f.size() == 1) {
    p.f[0].run(*pool, pl.scratch, x, ldx, m, y, ldy, epilogue_gelu, accumulate, columns_done);
  } else {
    // (m, in) -> (m, rank) -> (m, out)
    p.f[0].run(*pool, pl.scratch, x, ldx, m, pl.low.data(), pl.low_ld, false, false);
    p.f[1].run(*pool, pl.scratch, pl.low.data(), pl.low_ld, m, y, ldy, epilogue_gelu, accumulate);
  }
  if (p.delta.empty()) return;
  p.delta[0].run(*pool, pl.scratch, x, ldx, m, pl.low.data(), pl.low_ld, false, false);
  p.delta[1].run(*pool, pl.scratch, pl.low.data(), pl.low_ld, m, y, ldy, false, true);
  if (gelu) {
    const int out = p.out();
    parallel_rows(*pool, m, out, [&](int r0, int r1) {
      for (int r = r0; r < r1; ++r)
        kt->gelu(y + static_cast<size_t>(r) * static_cast<size_t>(ldy), static_cast<size_t>(out));
    });
  }
}

void Engine::Impl::linear_rows(const Proj& p, Plan& pl, const float* x, int ldx, int r0, int r1,
                               float* y, int ldy, bool gelu, bool accumulate) {
  const bool epilogue_gelu = gelu && p.delta.empty();
  if (p.f.size() == 1) {
    p.f[0].run_rows(pl.scratch, x, ldx, r0, r1, y, ldy, epilogue_gelu, accumulate);
  } else {
    p.f[0].run_rows(pl.scratch, x, ldx, r0, r1, pl.low.data(), pl.low_ld, false, false);
    p.f[1].run_rows(pl.scratch, pl.low.data(), pl.low_ld, r0, r1, y, ldy, epilogue_gelu,
                    accumulate);
  }
  if (p.delta.empty()) return;
  p.delta[0].run_rows(pl.scratch, x, ldx, r0, r1, pl.low.data(), pl.low_ld, false, false);
  p.delta[1].run_rows(pl.scratch, pl.low.data(), pl.low_ld, r0, r1, y, ldy, false, true);
  if (gelu)
    for (int r = r0; r < r1; ++r)
      kt->gelu(y + static_cast<size_t>(r) * static_cast<size_t>(ldy), static_cast<size_t>(p.out()));
}

void Engine::Impl::layernorm_rows(const PackedNorm& n, const float* x, float* y, int r0, int r1) const {
  const int C = config.embed_dim;
  const size_t off = static_cast<size_t>(r0) * static_cast<size_t>(C);
  kt->layernorm(x + off, C, y + off, C, r1 - r0, C, n.gamma.data(), n.beta.data(),
                static_cast<float>(config.ln_eps));
}

// Layer schedule: keys of token rows [r0, r1) and heads [h0, h1) into the transposed layout the
// fused attention reads: kt[b][h][d][t] = k[b, t, h, d] (the quantized-attention kernel reads qkv
// directly). Head by head and image by image, so the lines being filled (D of them) stay in L1.
void Engine::Impl::transpose_keys(const Block& blk, Plan& pl, int r0, int r1, int h0, int h1) const {
  const int N = pl.tokens, H = blk.heads, D = config.head_dim;
  const size_t np = static_cast<size_t>((N + 15) / 16 * 16), uD = static_cast<size_t>(D);
  const size_t ld = static_cast<size_t>(pl.qkv_ld), keys = static_cast<size_t>(H) * uD;
  for (int h = h0; h < h1; ++h) {
    for (int r = r0; r < r1;) {
      const int b = r / N, t = r % N, n = std::min(r1 - r, N - t);  // this image's part
      const float* k =
          pl.qkv[0].data() + static_cast<size_t>(r) * ld + keys + static_cast<size_t>(h) * uD;
      float* dst =
          pl.kt.data() +
          ((static_cast<size_t>(b) * static_cast<size_t>(H) + static_cast<size_t>(h)) * uD) * np +
          static_cast<size_t>(t);
      kt->transpose_keys(k, ld, n, D, dst, np);
      r += n;
    }
  }
}

// Attention of one block over the pool; qkv (in pl.qkv[slot]) and, for the fp32 kernel, the
// transposed keys (pl.kt, layer schedule) are complete.
void Engine::Impl::attention(const Block& blk, Plan& pl, int slot) {
  if (blk.attn_quant) {
    const int batch = pl.batch, N = pl.tokens, D = config.head_dim, H = blk.heads;
    kernels::AttentionQuantArgs qa = *blk.attn_quant;
    qa.qkv = pl.qkv[slot].data();
    qa.ldqkv = pl.qkv_ld;
    qa.batch = batch;
    qa.tokens = N;
    qa.heads = H;
    qa.head_dim = D;
    qa.ctx = pl.ctx.data();
    qa.ldctx = pl.ctx_ld;
    if (pl.sized) {
      qa.key_bias = pl.key_bias.data();
      qa.bias_ld = (config.num_tokens() + 15) / 16 * 16;
    }
    pool->run(batch * H, [&](int task) { kt->attention_q(qa, task); });
    return;
  }
  const kernels::AttentionArgs a = attention_args(blk, pl, slot);
  pool->run(kernels::attention_tasks(a), [&](int task) { kernels::run_attention_task(kt->attention, a, task); });
}

kernels::AttentionArgs Engine::Impl::attention_args(const Block& blk, Plan& pl, int slot) const {
  const int N = pl.tokens, D = config.head_dim;
  kernels::AttentionArgs a;
  a.qkv = pl.qkv[slot].data();
  a.ldqkv = pl.qkv_ld;
  a.kt = pl.kt.data();
  a.np = (N + 15) / 16 * 16;
  a.batch = pl.batch;
  a.tokens = N;
  a.heads = blk.heads;
  a.head_dim = D;
  a.scale = 1.0f / std::sqrt(static_cast<float>(D));
  a.ctx = pl.ctx.data();
  a.ldctx = pl.ctx_ld;
  if (pl.sized) {
    a.key_bias = pl.key_bias.data();
    a.bias_ld = (config.num_tokens() + 15) / 16 * 16;
  }
  return a;
}

// The merge metric of token rows [r0, r1) (any cut, across images) from qkv[slot]'s keys.
void Engine::Impl::merge_metric_rows(const Block& blk, Plan& pl, int slot, int r0, int r1) const {
  const int D = config.head_dim;
  runtime::merge_metric_rows(pl.qkv[slot].data() + static_cast<size_t>(blk.heads * D), pl.qkv_ld,
                             blk.heads, D, r0, r1, pl.merge_metric.data(), kt);
}

// Threads per image in merge_tokens: with fewer images than threads each image's output columns
// are split over several (every part picks the pairs itself: cheaper than a synchronisation).
int Engine::Impl::merge_parts(const Plan& pl) const {
  if (pl.batch >= pool->size()) return 1;
  // At least 16 columns (a cache line) per part, so that every part's cut is its own.
  return std::max(1, std::min(pool->size() / pl.batch, config.embed_dim / 16));
}

// The merge of image b after block blk's attention (x holds the residual, merge_metric its
// metric rows) into xn, on scratch slot `task`.
MergeImageArgs Engine::Impl::merge_args(const Block& blk, Plan& pl, int r, int b, int task) const {
  const size_t N = static_cast<size_t>(pl.tokens), N0 = static_cast<size_t>(config.num_tokens());
  const size_t C = static_cast<size_t>(config.embed_dim), D = static_cast<size_t>(config.head_dim);
  const size_t ub = static_cast<size_t>(b), out_n = N - static_cast<size_t>(r);
  MergeImageArgs m;
  m.x = pl.x.data() + ub * N * C;
  m.ldx = config.embed_dim;
  m.metric = pl.merge_metric.data() + ub * N * D;
  m.tokens = pl.tokens;
  m.dim = config.embed_dim;
  m.heads = blk.heads;
  m.head_dim = config.head_dim;
  m.r = r;
  m.prefix_tokens = config.num_prefix_tokens();
  m.sizes = pl.sized ? pl.sizes.data() + ub * N0 : nullptr;
  m.out = pl.xn.data() + ub * out_n * C;
  m.out_sizes = pl.sizes_next.data() + ub * N0;
  m.scratch =
      pl.merge_f.data() +
      static_cast<size_t>(task) * merge_scratch_floats(config.num_tokens(), config.head_dim, kt);
  m.index_scratch =
      pl.merge_i.data() + static_cast<size_t>(task) * merge_scratch_ints(config.num_tokens());
  m.kt = kt;
  return m;
}

// Token merging after block blk's attention: every image in parallel into xn (finish_merge).
void Engine::Impl::merge_tokens(const Block& blk, Plan& pl, int r) {
  const int C = config.embed_dim, parts = merge_parts(pl);
  pool->run(pl.batch * parts, [&](int task) {
    MergeImageArgs m = merge_args(blk, pl, r, task / parts, task);
    // Column cuts on 16-float (cache line) boundaries: parts never write the same line.
    auto cut = [&](int q) { return q == parts ? C : C * q / parts / 16 * 16; };
    m.col0 = cut(task % parts);
    m.col1 = cut(task % parts + 1);
    merge_image(m);
    if (m.col0 == 0) merge_key_bias(pl, task / parts, m.tokens - r);  // its out_sizes are written
  });
  finish_merge(pl, r);
}

// Fewer images than threads: the block's proj GEMM and its merge in one job. Each column task of
// the GEMM, once its columns of every row are final, writes those columns of the merged tokens
// from the x it has just written (in its cache); the first task to finish its GEMM part picks
// every image's pairs (a task finishing meanwhile waits for them). It replaces the merge's own
// job, whose threads read x written by the other: DeiT-S batch 1, r = 13, 2 threads, proj and
// merge 1.82-2.02 -> 1.78-1.84 ms per forward (alternated, a busy stretch of the host).
void Engine::Impl::proj_and_merge(const Block& blk, Plan& pl, int r, int rows) {
  std::vector<MergeImageArgs>& images = pl.merge_images;  // capacity kept from call to call
  images.clear();
  for (int b = 0; b < pl.batch; ++b) images.push_back(merge_args(blk, pl, r, b, b));
  // The callback's state behind one pointer, so the std::function holds it without allocating.
  struct Shared {
    const Impl* impl;
    Plan* pl;
    int r;
    std::atomic<int> pairs{0};  // 0: not picked, 1: being picked, 2: picked
  } shared{this, &pl, r};
  const LinearOp::ColumnsDone merge_columns_of = [s = &shared](int c0, int c1) {
    const std::vector<MergeImageArgs>& image_args = s->pl->merge_images;
    int expected = 0;
    if (s->pairs.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      for (const MergeImageArgs& m : image_args) merge_select(m);
      s->pairs.store(2, std::memory_order_release);
    } else {
      while (s->pairs.load(std::memory_order_acquire) != 2) _mm_pause();
    }
    for (size_t b = 0; b < image_args.size(); ++b) {
      merge_columns(image_args[b], c0, c1);
      if (c0 == 0)
        s->impl->merge_key_bias(*s->pl, static_cast<int>(b), image_args[b].tokens - s->r);
    }
  };
  linear(blk.proj, pl, pl.ctx.data(), pl.ctx_ld, rows, pl.x.data(), config.embed_dim, false, true,
         &merge_columns_of);
  finish_merge(pl, r);
}

// Image b's log(size) once its merged sizes are written: the proportional-attention bias of the
// next blocks (the padding past out_n keeps older, finite values).
void Engine::Impl::merge_key_bias(Plan& pl, int b, int out_n) const {
  const size_t N0 = static_cast<size_t>(config.num_tokens()), np0 = (N0 + 15) / 16 * 16;
  const size_t ub = static_cast<size_t>(b);
  for (size_t t = 0; t < static_cast<size_t>(out_n); ++t)
    pl.key_bias[ub * np0 + t] = std::log(pl.sizes_next[ub * N0 + t]);
}

// After the merge of every image into xn: x and xn swap roles and the sizes follow.
void Engine::Impl::finish_merge(Plan& pl, int r) {
  std::swap(pl.x, pl.xn);
  std::swap(pl.sizes, pl.sizes_next);
  pl.tokens -= r;
  pl.sized = true;
}

// fp32 attention of query rows [r0, r1) (any cut, across images), every head: what a row chain
// needs before its proj. Head by head, so one head's keys and values serve all its row blocks;
// the SIMD kernel's transposed keys of that head go to the chunk's own buffer (L1-sized), which
// also keeps the threads from writing the same lines of a shared one.
void Engine::Impl::attention_rows(const Block& blk, Plan& pl, int slot, int chunk, int r0, int r1) const {
  kernels::AttentionArgs a = attention_args(blk, pl, slot);
  const int N = a.tokens, D = a.head_dim, HD = a.heads * D;
  const size_t np = static_cast<size_t>(a.np), ld = static_cast<size_t>(a.ldqkv);
  float* own = pl.kt_own.data() + static_cast<size_t>(chunk) * static_cast<size_t>(D) * np;
  a.kt = own;
  a.kt_one_head = true;
  for (int b = r0 / N; b * N < r1; ++b) {
    const int t0 = std::max(r0 - b * N, 0), t1 = std::min(r1 - b * N, N);
    for (int h = 0; h < a.heads; ++h) {
      if (needs_key_transpose(blk)) {
        const float* k = a.qkv + static_cast<size_t>(b) * static_cast<size_t>(N) * ld + static_cast<size_t>(HD + h * D);
        kt->transpose_keys(k, ld, N, D, own, np);
      }
      for (int i0 = t0; i0 < t1; i0 += kernels::kAttnRows)
        kt->attention(a, b, h, i0, std::min(kernels::kAttnRows, t1 - i0));
    }
  }
}

bool Engine::Impl::by_rows() const {
  if (schedule != Schedule::kAuto) return schedule == Schedule::kRows;
  // Row chains save synchronisations but every thread streams every weight. Measured (2 threads,
  // rows vs layer, medians): batch 1 vit-fmnist -25..35%, deit-tiny -6%, deit-small int8 (22 MB
  // of weights) -5..10% and fp32 (88 MB) even; batch 32 deit-tiny -6%; ViT-B/16 fp32 (344 MB,
  // more than the L3) +40%. So: rows while the packed weights are small enough to stay cached.
  return !weights_stream();
}

// Layer by layer: every GEMM splits its weight panels over the pool (each weight read once).
void Engine::Impl::blocks_by_layer(Plan& pl) {
  const int C = config.embed_dim;
  ThreadPool& tp = *pool;
  int rows = 0;
  auto norm_all = [&](const PackedNorm& n) {
    parallel_rows(tp, rows, C, [&](int r0, int r1) { layernorm_rows(n, pl.x.data(), pl.xn.data(), r0, r1); });
  };
  for (int bi = 0; bi < config.depth; ++bi) {
    const Block& blk = blocks[static_cast<size_t>(bi)];
    rows = pl.batch * pl.tokens;
    if (blk.attn) {
      norm_all(blk.norm1);
      linear(blk.qkv, pl, pl.xn.data(), C, rows, pl.qkv[0].data(), pl.qkv_ld, false, false);
      const int r = config.merge_at(bi, pl.tokens);
      if (!blk.attn_quant && pl.batch < tp.size()) {
        // Fewer images than threads: one job, each thread the attention of its share of the
        // query rows over all keys, transposing every head's keys itself (attention_rows), and
        // the metric rows of its share before a merge. It replaces a transpose job and 8-row
        // attention tasks (DeiT-S batch 1, 2 threads: attention with its transposes 3.44 -> 3.24
        // ms per forward; 1.91 -> 1.79 with merging r = 13); a thread more per image costs each
        // one a transpose of every head, so only as many shares as threads.
        tp.run(tp.size(), [&](int c) {
          const int r0 = static_cast<int>(int64_t{c} * rows / tp.size());
          const int r1 = static_cast<int>(int64_t{c + 1} * rows / tp.size());
          if (r > 0) merge_metric_rows(blk, pl, 0, r0, r1);
          attention_rows(blk, pl, 0, c, r0, r1);
        });
      } else {
        attention_with_transposes(blk, pl, r, rows);
      }
      if (r > 0 && pl.batch < tp.size() && blk.proj.f.size() == 1 && blk.proj.delta.empty()) {
        proj_and_merge(blk, pl, r, rows);
      } else {
        linear(blk.proj, pl, pl.ctx.data(), pl.ctx_ld, rows, pl.x.data(), C, false, true);
        if (r > 0) merge_tokens(blk, pl, r);
      }
      rows = pl.batch * pl.tokens;
    }
    if (blk.mlp_on) {
      norm_all(blk.norm2);
      linear(blk.fc1, pl, pl.xn.data(), C, rows, pl.hidden(), pl.hidden_ld, true, false);
      linear(blk.fc2, pl, pl.hidden(), pl.hidden_ld, rows, pl.x.data(), C, false, true);
    }
  }
}

// The layer schedule's attention of a block from pl.qkv[0] (rows token rows): one pool job for
// the key transposes (a task per head) and, before a merge (r > 0), the metric rows; then the
// attention's own job.
void Engine::Impl::attention_with_transposes(const Block& blk, Plan& pl, int r, int rows) {
  ThreadPool& tp = *pool;
  const int t_heads = needs_key_transpose(blk) ? blk.heads : 0, t_metric = r > 0 ? tp.size() : 0;
  if (t_heads + t_metric > 0) {
    tp.run(t_heads + t_metric, [&](int task) {
      if (task < t_heads) {
        transpose_keys(blk, pl, 0, rows, task, task + 1);
      } else {
        const int64_t q = task - t_heads;
        merge_metric_rows(blk, pl, 0, static_cast<int>(rows * q / t_metric),
                          static_cast<int>(rows * (q + 1) / t_metric));
      }
    });
  }
  attention(blk, pl, 0);
}

// Row-local chains: from a block's attention to the next block's qkv (attention of the chain's own
// query rows over all keys, proj, LN2, fc1, fc2, the next LN1, qkv and its key transpose), each
// step only needs the keys, which are complete, and the chain's own rows, so each thread runs the
// whole chain on its rows and the pool synchronises once per block instead of six to ten times.
// Each thread reads every weight, which pays while the weights of a chain stay in its L2.
void Engine::Impl::blocks_by_rows(Plan& pl) {
  const int C = config.embed_dim;
  const int mr = std::max({kt->f32_mr, kt->q8.mr, kt->q4.mr});
  using Step = RowStep;
  auto& pending = pl.pending;
  auto flush = [&] {
    if (pending.empty()) return;
    // Every step of a chain sees the same token count: merging flushes before it changes.
    const int rows = pl.batch * pl.tokens, tiles = (rows + mr - 1) / mr;
    const int chunks = std::min(tiles, pool->size());
    pool->run(chunks, [&](int c) {
      const int r0 = static_cast<int>(int64_t{c} * tiles / chunks) * mr;
      const int r1 = std::min(rows, static_cast<int>(int64_t{c + 1} * tiles / chunks) * mr);
      for (const auto& [step, b, slot, metric] : pending) {
        switch (step) {
          case Step::kPreAttn: {
            layernorm_rows(b->norm1, pl.x.data(), pl.xn.data(), r0, r1);
            // Before a merge, the metric of every GEMM row block right after its keys, while
            // they are in L2 (after the whole chunk they were not: 8% of vit-fmnist-56 at
            // batch 32 went to those cache misses).
            const int piece = metric ? 16 * mr : std::max(r1 - r0, 1);
            for (int p0 = r0; p0 < r1; p0 += piece) {
              const int p1 = std::min(r1, p0 + piece);
              linear_rows(b->qkv, pl, pl.xn.data(), C, p0, p1, pl.qkv[slot].data(), pl.qkv_ld,
                          false, false);
              if (metric) merge_metric_rows(*b, pl, slot, p0, p1);
            }
            break;
          }
          case Step::kAttn:
            attention_rows(*b, pl, slot, c, r0, r1);
            break;
          case Step::kPostAttn:
            linear_rows(b->proj, pl, pl.ctx.data(), pl.ctx_ld, r0, r1, pl.x.data(), C, false, true);
            break;
          case Step::kMlp:
            layernorm_rows(b->norm2, pl.x.data(), pl.xn.data(), r0, r1);
            linear_rows(b->fc1, pl, pl.xn.data(), C, r0, r1, pl.hidden(), pl.hidden_ld, true, false);
            linear_rows(b->fc2, pl, pl.hidden(), pl.hidden_ld, r0, r1, pl.x.data(), C, false, true);
            break;
        }
      }
    });
    pending.clear();
  };
  for (int bi = 0, slot = 0; bi < config.depth; ++bi) {
    const Block& blk = blocks[static_cast<size_t>(bi)];
    if (blk.attn) {
      slot ^= 1;
      const int r = config.merge_at(bi, pl.tokens);
      pending.push_back({Step::kPreAttn, &blk, slot, r > 0});
      flush();
      // The fp32 attention joins the chain: each thread attends its own query rows (all keys are
      // ready after the flush), so the block costs one synchronisation. The quantized one codes
      // k and v of a whole (image, head) per task, so it stays a pool job of its own.
      if (blk.attn_quant) {
        attention(blk, pl, slot);
      } else {
        pending.push_back({Step::kAttn, &blk, slot});
      }
      pending.push_back({Step::kPostAttn, &blk, slot});
      // Merging needs every token of an image after its attention: the chain ends here.
      if (r > 0) {
        flush();
        merge_tokens(blk, pl, r);
      }
    }
    if (blk.mlp_on) pending.push_back({Step::kMlp, &blk, 0});
  }
  flush();
}

void Engine::Impl::forward(const float* images, int batch, float* logits) {
  const io::ViTConfig& c = config;
  Plan& pl = plan(batch);
  int N = c.num_tokens();
  const int C = c.embed_dim, P = c.patch_size, G = c.grid();
  const int Np = c.num_patches(), F = c.patch_features(), pre = c.num_prefix_tokens();
  int rows = batch * N;
  pl.tokens = N;
  pl.sized = false;
  const size_t uC = static_cast<size_t>(C);
  ThreadPool& tp = *pool;

  // Patch extraction (B*Np, in_ch*P*P), features ordered (channel, py, px) like the conv weight.
  const size_t img = static_cast<size_t>(c.in_channels) * static_cast<size_t>(c.image_size) *
                     static_cast<size_t>(c.image_size);
  parallel_rows(tp, batch * Np, F, [&](int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
      const int b = r / Np, pidx = r % Np, gy = pidx / G, gx = pidx % G;
      float* dst = pl.patches.data() + static_cast<size_t>(r) * static_cast<size_t>(F);
      for (int ch = 0; ch < c.in_channels; ++ch) {
        for (int py = 0; py < P; ++py) {
          const float* src = images + static_cast<size_t>(b) * img +
                             (static_cast<size_t>(ch) * static_cast<size_t>(c.image_size) +
                              static_cast<size_t>(gy * P + py)) * static_cast<size_t>(c.image_size) +
                             static_cast<size_t>(gx * P);
          std::memcpy(dst + (ch * P + py) * P, src, static_cast<size_t>(P) * sizeof(float));
        }
      }
    }
  });
  patch.run(tp, pl.scratch, pl.patches.data(), F, batch * Np, pl.xn.data(), C, false, false);
  // Tokens: x[b] = [prefix tokens (with their pos_embed, if any), patch embeddings + pos_embed].
  parallel_rows(tp, rows, C, [&](int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
      const int b = r / N, t = r % N;
      float* dst = pl.x.data() + static_cast<size_t>(r) * uC;
      if (t < pre) {
        std::copy(prefix.data() + static_cast<size_t>(t) * uC,
                  prefix.data() + static_cast<size_t>(t + 1) * uC, dst);
        continue;
      }
      const size_t p = static_cast<size_t>(t - pre);
      const float* src = pl.xn.data() + (static_cast<size_t>(b) * static_cast<size_t>(Np) + p) * uC;
      const float* pe = pos.data() + p * uC;
      for (int j = 0; j < C; ++j) dst[j] = src[j] + pe[j];
    }
  });

  if (pl.by_rows) {
    blocks_by_rows(pl);
  } else {
    blocks_by_layer(pl);
  }
  N = pl.tokens;  // after token merging
  rows = batch * N;

  const float eps = static_cast<float>(c.ln_eps);
  const int K = c.num_classes;
  if (c.pool == "avg") {
    // The mean of the patch tokens, of normed tokens ("norm"), or normed itself afterwards
    // ("fc_norm": one row per image instead of every token).
    const float* tokens = pl.x.data();
    float* mean = pl.xn.data();  // free now: B rows of it hold the means before fc_norm
    if (!c.fc_norm) {
      kt->layernorm(pl.x.data(), C, pl.xn.data(), C, rows, C, norm.gamma.data(), norm.beta.data(),
                    eps);
      tokens = pl.xn.data();
      mean = pl.pooled.data();
    }
    for (int b = 0; b < batch; ++b) {
      float* dst = mean + static_cast<size_t>(b) * uC;
      std::fill(dst, dst + C, 0.0f);
      // Under merging a token stands for `size` patches: the mean stays one over patches.
      const float* size =
          pl.sized ? pl.sizes.data() + static_cast<size_t>(b) * static_cast<size_t>(c.num_tokens())
                   : nullptr;
      float total = 0.0f;
      for (int t = pre; t < N; ++t) {
        const float* src =
            tokens +
            (static_cast<size_t>(b) * static_cast<size_t>(N) + static_cast<size_t>(t)) * uC;
        const float w = size != nullptr ? size[t] : 1.0f;
        total += w;
        if (size != nullptr) {
          for (int j = 0; j < C; ++j) dst[j] += src[j] * w;
        } else {
          for (int j = 0; j < C; ++j) dst[j] += src[j];
        }
      }
      for (int j = 0; j < C; ++j) dst[j] /= total;
    }
    if (c.fc_norm)
      kt->layernorm(mean, C, pl.pooled.data(), C, batch, C, norm.gamma.data(), norm.beta.data(),
                    eps);
  } else {
    // The class token normed: the same whether the layout puts the norm before or after pooling.
    kt->layernorm(pl.x.data(), N * C, pl.pooled.data(), C, batch, C, norm.gamma.data(),
                  norm.beta.data(), eps);
  }
  head.run(tp, pl.scratch, pl.pooled.data(), C, batch, logits, K, false, false);
  if (c.distill_token) {
    kt->layernorm(pl.x.data() + uC, N * C, pl.pooled2.data(), C, batch, C, norm.gamma.data(),
                  norm.beta.data(), eps);
    head_dist.run(tp, pl.scratch, pl.pooled2.data(), C, batch, pl.logits2.data(), K, false, false);
    const size_t n = static_cast<size_t>(batch) * static_cast<size_t>(K);
    for (size_t i = 0; i < n; ++i) logits[i] = (logits[i] + pl.logits2[i]) / 2;
  }
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

const ModelInfo& Engine::info() const { return impl_->info; }

size_t allocated_bytes() { return buffer_stats::live.load(); }
size_t peak_allocated_bytes() { return buffer_stats::peak.load(); }
void reset_peak_allocated_bytes() { buffer_stats::peak.store(buffer_stats::live.load()); }

void Engine::run(const float* images, int batch, float* logits) {
  if (batch <= 0) core::throw_input("runtime: batch must be positive, got {}", batch);
  if (images == nullptr || logits == nullptr) core::throw_input("runtime: null images or logits");
  impl_->forward(images, batch, logits);
}

std::unique_ptr<Engine> Engine::load(const std::filesystem::path& model_file,
                                     const RuntimeOptions& options) {
  return load_bytes({}, model_file.string(), options);
}

std::unique_ptr<Engine> Engine::load_bytes(std::vector<uint8_t> bytes, const std::string& source,
                                           const RuntimeOptions& options) {
  const auto file = bytes.empty() ? io::SafeTensorsFile::load(source)
                                  : io::SafeTensorsFile::parse(std::move(bytes), source);
  io::ImportHints hints;
  if (options.import_heads > 0) hints.num_heads = options.import_heads;
  if (!options.merge_r.empty()) hints.merge_r = options.merge_r;
  const LoadedModel m = load_model_data(file, hints);
  auto impl = std::make_unique<Impl>();
  const kernels::Isa isa = resolve_isa(options.isa);
  impl->kt = &kernels::table(isa);
  impl->packed_int4 = choose_packed_int4(options.int4, int8_kernel_bytes(m, options.simulate_quant));
  const int threads = options.threads > 0 ? options.threads : core::available_cores();
  impl->pool = std::make_unique<ThreadPool>(threads);
  impl->config = m.config;
  if (options.schedule == "layer") {
    impl->schedule = Impl::Schedule::kLayer;
  } else if (options.schedule == "rows") {
    impl->schedule = Impl::Schedule::kRows;
  } else if (!options.schedule.empty() && options.schedule != "auto") {
    core::throw_input("runtime: schedule '{}': expected auto, layer or rows", options.schedule);
  }
  const io::ViTConfig& c = m.config;
  const bool sim = options.simulate_quant;

  auto copy = [](const std::vector<float>& v, AlignedBuffer<float>& dst) {
    dst.resize(v.size());
    std::copy(v.begin(), v.end(), dst.data());
  };
  {
    // Prefix rows in sequence order (class, distillation, registers); pos_embed rows [0, pre) are
    // theirs unless no_embed_class, and the patches' rows follow.
    const size_t uC = static_cast<size_t>(c.embed_dim),
                 pre = static_cast<size_t>(c.num_prefix_tokens());
    std::vector<float> rows;
    rows.reserve(pre * uC);
    rows.insert(rows.end(), m.cls_token.begin(), m.cls_token.end());
    rows.insert(rows.end(), m.dist_token.begin(), m.dist_token.end());
    rows.insert(rows.end(), m.reg_token.begin(), m.reg_token.end());
    const size_t pos_prefix = c.no_embed_class ? 0 : pre;
    for (size_t i = 0; i < pos_prefix * uC; ++i) rows[i] += m.pos_embed[i];
    copy(rows, impl->prefix);
    impl->pos.resize(m.pos_embed.size() - pos_prefix * uC);
    std::copy(m.pos_embed.begin() + static_cast<std::ptrdiff_t>(pos_prefix * uC), m.pos_embed.end(),
              impl->pos.data());
  }
  impl->patch = impl->make_op(m.patch, sim);
  impl->head = impl->make_op(m.head, sim);
  if (c.distill_token) impl->head_dist = impl->make_op(m.head_dist, sim);
  impl->norm = PackedNorm(m.norm);
  // Ops by weight tensor name, for the blocks that share them. The pointers stay valid: `blocks`
  // never reallocates (reserved) and moving a Block keeps its ops' storage.
  std::map<std::string, const LinearOp*> packed;
  impl->blocks.reserve(m.blocks.size());
  for (const BlockData& bd : m.blocks) {
    const io::BlockConfig& s = c.blocks[static_cast<size_t>(bd.index)];
    Block b;
    b.heads = s.num_heads;
    b.mlp = s.mlp_dim;
    b.attn = !s.skip_attn;
    b.mlp_on = !s.skip_mlp;
    b.norm1 = PackedNorm(bd.norm1);
    b.norm2 = PackedNorm(bd.norm2);
    b.qkv = impl->make_proj(bd.qkv, bd.qkv_delta, sim, packed);
    b.proj = impl->make_proj(bd.proj, bd.proj_delta, sim, packed);
    b.fc1 = impl->make_proj(bd.fc1, bd.fc1_delta, sim, packed);
    b.fc2 = impl->make_proj(bd.fc2, bd.fc2_delta, sim, packed);
    if (m.quant && m.quant->attention) {
      const auto& aq = *m.quant->attention;
      if (auto it = aq.blocks.find(bd.index); it != aq.blocks.end()) {
        kernels::AttentionQuantArgs qa;
        qa.q = to_act_quant(it->second.q);
        qa.k = to_act_quant(it->second.k);
        qa.v = to_act_quant(it->second.v);
        qa.prob_bits = aq.prob_bits;
        qa.prob_log2 = aq.prob_log2();
        // float(D^-1/2) computed in double, as the LibTorch simulation scales q.
        qa.scale = static_cast<float>(std::pow(static_cast<double>(c.head_dim), -0.5));
        b.attn_quant = qa;
      }
    }
    impl->blocks.push_back(std::move(b));
    const Block& placed = impl->blocks.back();
    const std::vector<LinearData>* data[] = {&bd.qkv, &bd.proj, &bd.fc1, &bd.fc2};
    const Proj* projs[] = {&placed.qkv, &placed.proj, &placed.fc1, &placed.fc2};
    for (int k = 0; k < 4; ++k)
      for (size_t i = 0; i < data[k]->size(); ++i)
        packed.emplace((*data[k])[i].weight_name, &projs[k]->f[i]);
  }
  for (const LinearOp* l : {&impl->patch, &impl->head, &impl->head_dist}) impl->weight_bytes += l->weight_bytes();
  std::set<const void*> counted;  // packed weights shared by several blocks count once
  for (const Block& b : impl->blocks)
    for (const Proj* p : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) {
      for (const LinearOp& f : p->f)
        if (counted.insert(f.weights_id()).second) impl->weight_bytes += f.weight_bytes();
      for (const LinearOp& f : p->delta) impl->weight_bytes += f.weight_bytes();
    }
  const bool stream = impl->weights_stream();
  for (LinearOp* l : {&impl->patch, &impl->head, &impl->head_dist}) l->set_prefetch_weights(stream);
  for (Block& b : impl->blocks)
    for (Proj* p : {&b.qkv, &b.proj, &b.fc1, &b.fc2})
      for (auto* ops : {&p->f, &p->delta})
        for (LinearOp& f : *ops) f.set_prefetch_weights(stream);
  bool small_int = false;  // <= 4-bit weights on the integer path (packed or as int8)
  auto small = [&](const LinearData& d) { small_int = small_int || (runs_integer(d, sim) && d.wq->bits <= 4); };
  small(m.patch);
  small(m.head);
  for (const BlockData& bd : m.blocks)
    for (const auto* p : {&bd.qkv, &bd.proj, &bd.fc1, &bd.fc2})
      for (const LinearData& d : *p) small(d);
  ModelInfo& info = impl->info;
  info.image_size = c.image_size;
  info.in_channels = c.in_channels;
  info.num_classes = c.num_classes;
  info.mean = c.preprocess.mean;
  info.std = c.preprocess.std;
  info.crop_pct = c.preprocess.crop_pct;
  info.class_names = m.class_names;
  info.precision = m.precision;
  info.name = c.name;
  info.isa = kernels::isa_name(isa);
  info.isa_fp32 = kernels::isa_name(impl->kt->fp32_isa);
  info.isa_int8 = kernels::isa_name(impl->kt->q8.isa);
  info.isa_int4 = kernels::isa_name(impl->kt->q4.isa);
  info.int4_kernel = !small_int ? "" : impl->packed_int4 ? "packed" : "int8";
  info.threads = impl->pool->size();
  info.params = m.params;
  info.macs = io::count_macs(impl->config);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (auto isa : kernels::kAllIsas) {
    if (kernels::cpu_supports(isa)) out.emplace_back(kernels::isa_name(isa));
  }
  return out;
}

KernelReport kernel_report(const std::string& isa) {
  KernelReport r;
  r.cpu = kernels::cpu_model_name();
  r.cpu_flags = kernels::cpu_flag_names();
  r.levels = supported_isas();
  const kernels::KernelTable& t = kernels::table(resolve_isa(isa));
  r.level = t.name;
  r.fp32 = kernels::isa_name(t.fp32_isa);
  r.int8 = kernels::isa_name(t.q8.isa);
  r.int4 = kernels::isa_name(t.q4.isa);
  r.l3_bytes = kernels::l3_cache_bytes();
  return r;
}

}  // namespace vitopt::runtime
