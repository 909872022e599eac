// Engine: a loaded, packed model plus one execution plan per batch size (every activation buffer
// allocated once), run on one persistent thread pool. The forward pass is timm's ViT:
//   patches -> Linear (+bias) -> [cls, (dist), patches] + pos_embed                    x (B, N, C)
//   per block: x += proj(attn(LN1(x)));  x += fc2(gelu(fc1(LN2(x))))   (skips, shares honoured)
//   LN(x)[:, 0] -> head   (avg pool: mean of LN'd patch tokens; dist token: mean of both heads)
// Legend: B batch, N tokens, Np patches, C embed dim, H heads, D head dim, M MLP width, K classes.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/threads.h"
#include "io/safetensors.h"
#include "runtime/linear_layer.h"
#include "runtime/model_loader.h"
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

// A Linear with 1 (dense) or 2 (low-rank: v then u) factors.
struct Proj {
  std::vector<LinearOp> f;
  bool empty() const { return f.empty(); }
  int out() const { return f.back().out(); }
  int rank() const { return f.size() == 2 ? f.front().out() : 0; }
};

struct Block {
  int heads = 0, mlp = 0;
  bool attn = false, mlp_on = false;
  PackedNorm norm1, norm2;
  Proj qkv, proj, fc1, fc2;
  std::optional<kernels::AttentionQuantArgs> attn_quant;  // extras.attention: quantizers, codes
};

struct Plan {
  int batch = 0;
  AlignedBuffer<float> x, xn, wide, ctx, low, kt, patches, pooled, pooled2, logits2;
  LinearScratch scratch;
};

}  // namespace

struct Engine::Impl {
  ModelConfig config;
  ModelInfo info;
  const kernels::KernelTable* kt = nullptr;
  std::unique_ptr<ThreadPool> pool;
  AlignedBuffer<float> cls, dist, pos;
  LinearOp patch, head, head_dist;
  std::vector<Block> owned;       // blocks with their own weights
  std::vector<int> block_of;      // depth -> index into owned
  PackedNorm norm;
  std::map<int, std::unique_ptr<Plan>> plans;

  Proj make_proj(const std::vector<LinearData>& d, bool simulate) const {
    Proj p;
    for (const auto& l : d) p.f.emplace_back(l, *kt, simulate);
    return p;
  }
  Plan& plan(int batch);
  void linear(const Proj& p, Plan& pl, const float* x, int ldx, int m, float* y, int ldy,
              bool gelu, bool accumulate);
  void forward(const float* images, int batch, float* logits);
};

namespace {

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
  const ModelConfig& c = config;
  const size_t B = static_cast<size_t>(batch), N = static_cast<size_t>(c.num_tokens());
  const size_t C = static_cast<size_t>(c.embed_dim), rows = B * N;
  const size_t np = (N + 15) / 16 * 16;
  size_t wide = 0, hd = 0, low = 0, heads = 0, act = 0, fake = 0;
  const int m = static_cast<int>(rows);
  auto need = [&](const Proj& pr) {
    for (const auto& f : pr.f) {
      act = std::max(act, f.act_bytes(m));
      fake = std::max(fake, f.fake_floats(m));
    }
    low = std::max(low, static_cast<size_t>(pr.rank()));
  };
  for (const Block& b : owned) {
    if (b.attn) {
      wide = std::max(wide, static_cast<size_t>(b.qkv.out()));
      hd = std::max(hd, static_cast<size_t>(b.proj.f.front().in()));
      heads = std::max(heads, static_cast<size_t>(b.heads));
      need(b.qkv);
      need(b.proj);
    }
    if (b.mlp_on) {
      wide = std::max(wide, static_cast<size_t>(b.mlp));
      need(b.fc1);
      need(b.fc2);
    }
  }
  for (const LinearOp* l : {&patch, &head, &head_dist}) {
    if (l->out() == 0) continue;
    act = std::max(act, l->act_bytes(m));
    fake = std::max(fake, l->fake_floats(m));
  }
  p->batch = batch;
  p->x.resize(rows * C);
  p->xn.resize(rows * C);
  p->wide.resize(rows * wide);
  p->ctx.resize(rows * hd);
  p->low.resize(rows * low);
  p->kt.resize(B * heads * static_cast<size_t>(c.head_dim) * np);
  p->patches.resize(B * static_cast<size_t>(c.num_patches()) * static_cast<size_t>(c.patch_features()));
  p->pooled.resize(B * C);
  p->pooled2.resize(B * C);
  p->logits2.resize(B * static_cast<size_t>(c.num_classes));
  p->scratch.act.resize(act);
  p->scratch.row_a.resize(rows);
  p->scratch.row_b.resize(rows);
  p->scratch.row_scale.resize(rows);
  p->scratch.fake.resize(fake);
  slot = std::move(p);
  return *slot;
}

void Engine::Impl::linear(const Proj& p, Plan& pl, const float* x, int ldx, int m, float* y,
                          int ldy, bool gelu, bool accumulate) {
  if (p.f.size() == 1) {
    p.f[0].run(*pool, pl.scratch, x, ldx, m, y, ldy, gelu, accumulate);
    return;
  }
  const int r = p.rank();  // (m, in) -> (m, r) -> (m, out)
  p.f[0].run(*pool, pl.scratch, x, ldx, m, pl.low.data(), r, false, false);
  p.f[1].run(*pool, pl.scratch, pl.low.data(), r, m, y, ldy, gelu, accumulate);
}

void Engine::Impl::forward(const float* images, int batch, float* logits) {
  const ModelConfig& c = config;
  Plan& pl = plan(batch);
  const int N = c.num_tokens(), C = c.embed_dim, P = c.patch_size, G = c.grid();
  const int Np = c.num_patches(), F = c.patch_features(), pre = c.num_prefix_tokens();
  const int rows = batch * N, D = c.head_dim;
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
  // Tokens: x[b] = [cls, (dist), patch embeddings] + pos_embed.
  parallel_rows(tp, rows, C, [&](int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
      const int b = r / N, t = r % N;
      const float* src = t == 0 ? cls.data()
                         : (t == 1 && pre == 2)
                             ? dist.data()
                             : pl.xn.data() + (static_cast<size_t>(b) * static_cast<size_t>(Np) +
                                               static_cast<size_t>(t - pre)) * uC;
      const float* pe = pos.data() + static_cast<size_t>(t) * uC;
      float* dst = pl.x.data() + static_cast<size_t>(r) * uC;
      for (int j = 0; j < C; ++j) dst[j] = src[j] + pe[j];
    }
  });

  const size_t np = static_cast<size_t>((N + 15) / 16 * 16);
  for (int bi = 0; bi < c.depth; ++bi) {
    const Block& blk = owned[static_cast<size_t>(block_of[static_cast<size_t>(bi)])];
    if (blk.attn) {
      const int H = blk.heads, HD = H * D, ld = blk.qkv.out();
      parallel_rows(tp, rows, C, [&](int r0, int r1) {
        kt->layernorm(pl.x.data() + static_cast<size_t>(r0) * uC, C,
                      pl.xn.data() + static_cast<size_t>(r0) * uC, C, r1 - r0, C,
                      blk.norm1.gamma.data(), blk.norm1.beta.data(), static_cast<float>(c.ln_eps));
      });
      linear(blk.qkv, pl, pl.xn.data(), C, rows, pl.wide.data(), ld, false, false);
      kernels::AttentionArgs a;
      a.qkv = pl.wide.data();
      a.ldqkv = ld;
      a.kt = pl.kt.data();
      a.np = static_cast<int>(np);
      a.batch = batch;
      a.tokens = N;
      a.heads = H;
      a.head_dim = D;
      a.scale = 1.0f / std::sqrt(static_cast<float>(D));
      a.ctx = pl.ctx.data();
      a.ldctx = HD;
      if (!blk.attn_quant && kt->isa != kernels::Isa::kRef) {
        // Keys transposed per (image, head): kt[b][h][d][t] = k[b, t, h, d].
        tp.run(batch * H, [&](int task) {
          const int b = task / H, h = task % H;
          float* dst = pl.kt.data() + static_cast<size_t>(task) * static_cast<size_t>(D) * np;
          for (int t = 0; t < N; ++t) {
            const float* k = pl.wide.data() + (static_cast<size_t>(b) * static_cast<size_t>(N) +
                                               static_cast<size_t>(t)) * static_cast<size_t>(ld) +
                             static_cast<size_t>(HD + h * D);
            for (int d = 0; d < D; ++d) dst[static_cast<size_t>(d) * np + static_cast<size_t>(t)] = k[d];
          }
        });
      }
      if (blk.attn_quant) {
        kernels::AttentionQuantArgs qa = *blk.attn_quant;
        qa.qkv = pl.wide.data();
        qa.ldqkv = ld;
        qa.batch = batch;
        qa.tokens = N;
        qa.heads = H;
        qa.head_dim = D;
        qa.ctx = pl.ctx.data();
        qa.ldctx = HD;
        tp.run(batch * H, [&](int task) { kt->attention_q(qa, task); });
      } else {
        const int blocks = (N + kernels::kAttnRows - 1) / kernels::kAttnRows;
        tp.run(batch * H * blocks, [&](int task) { kt->attention(a, task); });
      }
      linear(blk.proj, pl, pl.ctx.data(), HD, rows, pl.x.data(), C, false, true);
    }
    if (blk.mlp_on) {
      parallel_rows(tp, rows, C, [&](int r0, int r1) {
        kt->layernorm(pl.x.data() + static_cast<size_t>(r0) * uC, C,
                      pl.xn.data() + static_cast<size_t>(r0) * uC, C, r1 - r0, C,
                      blk.norm2.gamma.data(), blk.norm2.beta.data(), static_cast<float>(c.ln_eps));
      });
      linear(blk.fc1, pl, pl.xn.data(), C, rows, pl.wide.data(), blk.mlp, true, false);
      linear(blk.fc2, pl, pl.wide.data(), blk.mlp, rows, pl.x.data(), C, false, true);
    }
  }

  const float eps = static_cast<float>(c.ln_eps);
  const int K = c.num_classes;
  if (c.pool == "avg") {
    kt->layernorm(pl.x.data(), C, pl.xn.data(), C, rows, C, norm.gamma.data(), norm.beta.data(), eps);
    for (int b = 0; b < batch; ++b) {
      float* dst = pl.pooled.data() + static_cast<size_t>(b) * uC;
      std::fill(dst, dst + C, 0.0f);
      for (int t = pre; t < N; ++t) {
        const float* src = pl.xn.data() + (static_cast<size_t>(b) * static_cast<size_t>(N) + static_cast<size_t>(t)) * uC;
        for (int j = 0; j < C; ++j) dst[j] += src[j];
      }
      for (int j = 0; j < C; ++j) dst[j] /= static_cast<float>(N - pre);
    }
  } else {
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
  const LoadedModel m = load_model_data(file);
  auto impl = std::make_unique<Impl>();
  const kernels::Isa isa =
      options.isa.empty() ? kernels::default_isa() : kernels::parse_isa(options.isa.c_str());
  if (!kernels::cpu_supports(isa))
    core::throw_input("runtime: kernel level '{}' is not supported by this CPU", options.isa);
  impl->kt = &kernels::table(isa);
  const int threads = options.threads > 0 ? options.threads : core::available_cores();
  impl->pool = std::make_unique<ThreadPool>(threads);
  impl->config = m.config;
  const ModelConfig& c = m.config;
  const bool sim = options.simulate_quant;

  auto copy = [](const std::vector<float>& v, AlignedBuffer<float>& dst) {
    dst.resize(v.size());
    std::copy(v.begin(), v.end(), dst.data());
  };
  copy(m.cls_token, impl->cls);
  copy(m.dist_token, impl->dist);
  copy(m.pos_embed, impl->pos);
  impl->patch = LinearOp(m.patch, *impl->kt, sim);
  impl->head = LinearOp(m.head, *impl->kt, sim);
  if (c.distill_token) impl->head_dist = LinearOp(m.head_dist, *impl->kt, sim);
  impl->norm = PackedNorm(m.norm);
  for (const BlockData& bd : m.blocks) {
    if (bd.owner >= 0) {
      impl->block_of.push_back(impl->block_of[static_cast<size_t>(bd.owner)]);
      continue;
    }
    const BlockShape& s = c.blocks[static_cast<size_t>(bd.index)];
    Block b;
    b.heads = s.num_heads;
    b.mlp = s.mlp_dim;
    b.attn = !s.skip_attn;
    b.mlp_on = !s.skip_mlp;
    b.norm1 = PackedNorm(bd.norm1);
    b.norm2 = PackedNorm(bd.norm2);
    b.qkv = impl->make_proj(bd.qkv, sim);
    b.proj = impl->make_proj(bd.proj, sim);
    b.fc1 = impl->make_proj(bd.fc1, sim);
    b.fc2 = impl->make_proj(bd.fc2, sim);
    if (m.quant && m.quant->attention) {
      const auto& aq = *m.quant->attention;
      if (auto it = aq.blocks.find(bd.index); it != aq.blocks.end()) {
        kernels::AttentionQuantArgs qa;
        qa.q = to_act_quant(it->second.q);
        qa.k = to_act_quant(it->second.k);
        qa.v = to_act_quant(it->second.v);
        qa.prob_bits = aq.prob_bits;
        qa.prob_log2 = aq.prob_log2;
        // float(D^-1/2) computed in double, as the LibTorch simulation scales q.
        qa.scale = static_cast<float>(std::pow(static_cast<double>(c.head_dim), -0.5));
        b.attn_quant = qa;
      }
    }
    impl->block_of.push_back(static_cast<int>(impl->owned.size()));
    impl->owned.push_back(std::move(b));
  }
  ModelInfo& info = impl->info;
  info.image_size = c.image_size;
  info.in_channels = c.in_channels;
  info.num_classes = c.num_classes;
  info.mean = c.mean;
  info.std = c.std;
  info.class_names = m.class_names;
  info.precision = m.precision;
  info.name = c.name;
  info.isa = kernels::isa_name(isa);
  info.threads = impl->pool->size();
  info.params = m.params;
  info.macs = c.macs();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (auto isa : {kernels::Isa::kRef, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (kernels::cpu_supports(isa)) out.emplace_back(kernels::isa_name(isa));
  }
  return out;
}

}  // namespace vitopt::runtime
