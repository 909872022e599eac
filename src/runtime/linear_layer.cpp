// LinearOp packing and execution, and the GEMM work split over the thread pool.
#include "runtime/linear_layer.h"

#include <algorithm>

#include "core/error.h"

namespace vitopt::runtime {
namespace {

constexpr int64_t kSerialMacs = 1 << 16;  // below this one thread beats waking the pool

struct Split {
  int tn = 1, tm = 1;
};

// A task count in [target, 4 target], a multiple of the thread count, that splits the panels
// evenly (0 if none): target 4 on 2 threads: 12 panels -> 4 tasks, 36 -> 4, 72 -> 4, 10 -> 10.
int even_panel_tasks(int panels, int threads, int target) {
  for (int t = target; t <= 4 * target && t <= panels; t += threads)
    if (panels % t == 0) return t;
  return 0;
}

Split split_work(int m, int panels, int tiles, int threads, int64_t macs, bool columns_only) {
  Split s;
  if (threads <= 1 || macs < kSerialMacs) return s;
  if (columns_only) {
    const int even = even_panel_tasks(panels, threads, threads * 2);
    s.tn = even > 0 ? even : std::min(panels, threads * 4);
    return s;
  }
  // A few tasks per thread: dynamic balance on a shared machine.
  const int target = threads * 4;
  // A batch-1 ViT (m <= 256 rows, one row block) prefers tasks of equal panel counts: 8 tasks
  // over 12 panels (1 or 2 each) left one thread idle for up to a sixth of the GEMM. Measured
  // (bench_kernels, 2 threads): 50x128x384 -9%, 197x384x1152 -6%; splitting 72 panels into 32
  // tasks instead of 8 cost 197x768x2304 8%, hence the smallest even split rather than the finest.
  // And from 2 tasks per thread, not 4: each task starts its weight stream cold, which a model
  // whose weights exceed the caches pays at every task (DeiT-S fp32 batch 1, 2 threads, alternated:
  // 26.8-27.0 -> 26.3-26.5 ms; with token merging r = 13 16.9-17.0 -> 16.5-16.7 ms).
  const int even = m <= 256 ? even_panel_tasks(panels, threads, threads * 2) : 0;
  if (even > 0) {
    s.tn = even;
    return s;
  }
  s.tn = std::min(panels, target);
  s.tm = std::min(tiles, (target + s.tn - 1) / s.tn);
  return s;
}

template <typename Args, typename Fn>
void run_split(ThreadPool& pool, const Args& g, int mr, int nr, Fn kernel, int64_t k,
               const LinearOp::ColumnsDone* columns_done) {
  const int panels = (g.n + nr - 1) / nr, tiles = (g.m + mr - 1) / mr;
  const Split s =
      split_work(g.m, panels, tiles, pool.size(), int64_t{g.m} * g.n * k, columns_done != nullptr);
  pool.run(s.tn * s.tm, [&](int t) {
    const int pn = t / s.tm, pm = t % s.tm;
    const int p0 = static_cast<int>(int64_t{pn} * panels / s.tn);
    const int p1 = static_cast<int>(int64_t{pn + 1} * panels / s.tn);
    const int t0 = static_cast<int>(int64_t{pm} * tiles / s.tm);
    const int t1 = static_cast<int>(int64_t{pm + 1} * tiles / s.tm);
    const int r0 = t0 * mr, r1 = std::min(g.m, t1 * mr);
    if (p0 < p1 && r0 < r1) kernel(g, p0, p1, r0, r1);
    if (columns_done != nullptr && p0 < p1) (*columns_done)(p0 * nr, std::min(g.n, p1 * nr));
  });
}

}  // namespace

kernels::ActQuant to_act_quant(const io::InputQuant& iq) {
  kernels::ActQuant q;
  q.qmin = iq.range().qmin;
  q.qmax = iq.range().qmax;
  q.symmetric = iq.symmetric;
  q.dynamic = iq.dynamic;
  q.scale = iq.scale;
  q.zero_point = iq.zero_point;
  return q;
}

void gemm_f32(const kernels::KernelTable& kt, ThreadPool& pool, const kernels::GemmF32Args& g,
              const LinearOp::ColumnsDone* columns_done) {
  run_split(pool, g, kt.f32_mr, kt.f32_nr, kt.gemm_f32, g.k, columns_done);
}

void gemm_int(const kernels::GemmIntKernels& ik, ThreadPool& pool, const kernels::GemmIntArgs& g,
              const LinearOp::ColumnsDone* columns_done) {
  run_split(pool, g, ik.mr, ik.nr, ik.gemm, g.kp, columns_done);
}

bool runs_integer(const LinearData& d, bool simulate) {
  return !simulate && d.wq && d.wq->bits <= 8 && d.iq && d.iq->bits <= 8;
}

LinearOp::LinearOp(const LinearData& d, const kernels::KernelTable& kt, bool simulate,
                   bool packed_int4, const LinearOp* same_weights)
    : name_(d.name), kt_(&kt), in_(d.in), out_(d.out) {
  const int nr = std::max({kt.f32_nr, kt.q8.nr, kt.q4.nr});
  const size_t padded_out = static_cast<size_t>((out_ + nr - 1) / nr * nr);
  bias_.resize(padded_out);
  has_bias_ = !d.bias.empty();
  std::copy(d.bias.begin(), d.bias.end(), bias_.data());
  if (d.iq) {
    has_input_quant_ = true;
    aq_ = to_act_quant(*d.iq);
  }
  const bool integer = runs_integer(d, simulate);
  path_ = integer ? Path::kInt : (d.wq || d.iq) ? Path::kSimulated : Path::kF32;
  if (integer) {
    ik_ = packed_int4 && d.wq->bits <= kt.q4.max_bits ? &kt.q4 : &kt.q8;
    kp_ = (in_ + ik_->kgroup - 1) / ik_->kgroup * ik_->kgroup;
  }
  // The simulated and fp32 paths pack the same dequantized floats.
  if (same_weights != nullptr && same_weights->w_ && same_weights->in_ == in_ &&
      same_weights->out_ == out_ && (same_weights->path_ == Path::kInt) == integer &&
      same_weights->ik_ == ik_) {
    w_ = same_weights->w_;
    if (integer) set_column_terms();
    return;
  }
  auto pw = std::make_shared<PackedWeights>();
  w_ = pw;
  if (integer) {
    std::vector<int8_t> codes(d.q.size());
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<int8_t>(d.q[i]);
    pw->wq.resize(ik_->packed_bytes(out_, kp_));
    ik_->pack(codes.data(), out_, in_, kp_, pw->wq.data());
    // Sums and zero points over the stored values (code + offset): the offset cancels (kernels.h).
    pw->colsum.resize(padded_out);
    pw->wzp.resize(padded_out);
    pw->wscale.resize(padded_out);
    for (int o = 0; o < out_; ++o) {
      int32_t sum = 0;
      for (int i = 0; i < in_; ++i) sum += codes[static_cast<size_t>(o) * static_cast<size_t>(in_) + static_cast<size_t>(i)];
      pw->colsum[static_cast<size_t>(o)] = sum + in_ * ik_->code_offset;
      pw->wzp[static_cast<size_t>(o)] = d.zero[static_cast<size_t>(o)] + ik_->code_offset;
      pw->wscale[static_cast<size_t>(o)] = d.scale[static_cast<size_t>(o)];
    }
    set_column_terms();
    return;
  }
  const std::vector<float> w = d.dequantized();
  pw->wf.resize(kt.packed_f32_floats(out_, in_));
  kt.pack_f32(w.data(), out_, in_, pw->wf.data());
}

void LinearOp::set_column_terms() {
  // Per input tensor, not per weights: layers sharing weights keep their own activation ranges.
  if (aq_.dynamic) return;
  const size_t padded = w_->wzp.size();
  for (size_t o = 0; o < padded; ++o)
    if (w_->wzp[o] != 0) return;  // asymmetric weights (or int4's offset): per-row terms needed
  col_offset_.resize(padded);
  col_scale_.resize(padded);
  const int32_t row_a = 128 + aq_.zero_point;  // what every quantizer writes for a static row
  for (size_t o = 0; o < padded; ++o) {
    col_offset_[o] = row_a * w_->colsum[o];
    col_scale_[o] = aq_.scale * w_->wscale[o];
  }
}

int LinearOp::act_row_bytes() const { return path_ == Path::kInt ? kp_ * ik_->act_bytes : 0; }

int LinearOp::fake_row_floats() const {
  return path_ == Path::kSimulated && has_input_quant_ ? in_ : 0;
}

kernels::Epilogue LinearOp::epilogue(bool gelu, bool accumulate) const {
  kernels::Epilogue ep;
  ep.bias = has_bias_ ? bias_.data() : nullptr;
  ep.gelu = gelu;
  ep.accumulate = accumulate;
  return ep;
}

void LinearOp::prepare_rows(LinearScratch& s, const float* x, int ldx, int m, int r0, int r1) const {
  if (path_ == Path::kInt) {
    kernels::QuantRowsArgs qa;
    qa.x = x;
    qa.ldx = ldx;
    qa.m = m;
    qa.k = in_;
    qa.kp = kp_;
    qa.q = aq_;
    qa.out = s.act.data();
    qa.ldo = s.act_ld / ik_->act_bytes;
    qa.row_a = s.row_a.data();
    qa.row_b = s.row_b.data();
    qa.row_scale = s.row_scale.data();
    ik_->quantize_rows(qa, r0, r1);
    return;
  }
  if (path_ != Path::kSimulated || !has_input_quant_) return;
  // x_hat = s * (q - zp) with q = clamp(rne(x / s) + zp): the LibTorch side's fake quantization.
  for (int i = r0; i < r1; ++i) {
    const float* xi = x + static_cast<size_t>(i) * static_cast<size_t>(ldx);
    float* fi = s.fake.data() + static_cast<size_t>(i) * static_cast<size_t>(s.fake_ld);
    float scale = aq_.scale;
    int zp = aq_.zero_point;
    if (aq_.dynamic) {
      const auto [mn, mx] = std::minmax_element(xi, xi + in_);
      kernels::dynamic_params(*mn, *mx, aq_, &scale, &zp);
    }
    for (int k = 0; k < in_; ++k)
      fi[k] = scale * static_cast<float>(kernels::quantize_value(xi[k], scale, zp, aq_.qmin, aq_.qmax) - zp);
  }
}

kernels::GemmIntArgs LinearOp::int_args(LinearScratch& s, int m, float* y, int ldy,
                                        kernels::Epilogue ep) const {
  kernels::GemmIntArgs g;
  g.a = s.act.data();
  g.lda = s.act_ld / ik_->act_bytes;
  g.w = w_->wq.data();
  g.m = m;
  g.n = out_;
  g.kp = kp_;
  g.row_a = s.row_a.data();
  g.row_b = s.row_b.data();
  g.row_scale = s.row_scale.data();
  g.colsum = w_->colsum.data();
  g.wzp = w_->wzp.data();
  g.wscale = w_->wscale.data();
  if (!col_offset_.empty()) {
    g.col_offset = col_offset_.data();
    g.col_scale = col_scale_.data();
  }
  g.c = y;
  g.ldc = ldy;
  g.ep = ep;
  g.prefetch_weights = prefetch_weights_;
  return g;
}

kernels::GemmF32Args LinearOp::f32_args(LinearScratch& s, const float* x, int ldx, int m, float* y,
                                        int ldy, kernels::Epilogue ep) const {
  kernels::GemmF32Args g;
  const bool fake = path_ == Path::kSimulated && has_input_quant_;
  g.a = fake ? s.fake.data() : x;
  g.lda = fake ? s.fake_ld : ldx;
  g.w = w_->wf.data();
  g.m = m;
  g.n = out_;
  g.k = in_;
  g.c = y;
  g.ldc = ldy;
  g.ep = ep;
  g.prefetch_weights = prefetch_weights_;
  return g;
}

void LinearOp::run(ThreadPool& pool, LinearScratch& s, const float* x, int ldx, int m, float* y,
                   int ldy, bool gelu, bool accumulate, const ColumnsDone* columns_done) const {
  const kernels::Epilogue ep = epilogue(gelu, accumulate);
  if (path_ == Path::kInt) {
    const int chunks = m * in_ < 8192 ? 1 : std::min(m, pool.size() * 2);
    pool.run(chunks, [&](int c) {
      prepare_rows(s, x, ldx, m, static_cast<int>(int64_t{c} * m / chunks),
                   static_cast<int>(int64_t{c + 1} * m / chunks));
    });
    gemm_int(*ik_, pool, int_args(s, m, y, ldy, ep), columns_done);
    return;
  }
  prepare_rows(s, x, ldx, m, 0, m);
  gemm_f32(*kt_, pool, f32_args(s, x, ldx, m, y, ldy, ep), columns_done);
}

void LinearOp::run_rows(LinearScratch& s, const float* x, int ldx, int r0, int r1, float* y,
                        int ldy, bool gelu, bool accumulate) const {
  if (r0 >= r1) return;
  const kernels::Epilogue ep = epilogue(gelu, accumulate);
  prepare_rows(s, x, ldx, r1, r0, r1);
  if (path_ == Path::kInt) {
    ik_->gemm(int_args(s, r1, y, ldy, ep), 0, (out_ + ik_->nr - 1) / ik_->nr, r0, r1);
  } else {
    kt_->gemm_f32(f32_args(s, x, ldx, r1, y, ldy, ep), 0, (out_ + kt_->f32_nr - 1) / kt_->f32_nr, r0, r1);
  }
}

}  // namespace vitopt::runtime
