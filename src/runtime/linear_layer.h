// One Linear factor ready to run: weights packed at load for the chosen kernel level, bias padded,
// and the path fixed once: fp32 GEMM, integer GEMM (int weights <= 8 bits and a quantized input
// <= 8 bits; weights of <= 4 bits nibble-packed when the engine asks for it, else as int8), or
// the exact simulation (dequantized fp32 weights, fake-quantized input) for everything else or
// when RuntimeOptions::simulate_quant asks for it.
// Legend: M rows (tokens), in/out features, Kp = in rounded up to the kernel's k group.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtime/aligned_buffer.h"
#include "runtime/kernels/kernels.h"
#include "runtime/model_loader.h"
#include "runtime/thread_pool.h"

namespace vitopt::runtime {

// The kernels' form of a Linear's or attention matmul's input quantizer.
kernels::ActQuant to_act_quant(const io::InputQuant& iq);

// Per-plan scratch the Linears share (sized by the plan for its largest user). Row strides are
// the largest user's, not each op's, so row r of every op occupies the same bytes: threads that
// run different ops on disjoint row ranges (Engine's row chains) never overlap.
struct LinearScratch {
  AlignedBuffer<uint8_t> act;   // quantized activations, rows of act_ld bytes (u8 or s16 codes)
  AlignedBuffer<int32_t> row_a, row_b;
  AlignedBuffer<float> row_scale;
  AlignedBuffer<float> fake;    // fake-quantized input (M, fake_ld) for the simulation path
  int act_ld = 0;               // bytes per row (a multiple of 64)
  int fake_ld = 0;              // floats per row
};

// Whether a Linear runs on the integer kernels (int weights <= 8 bits, input quantized to <= 8).
bool runs_integer(const LinearData& d, bool simulate);

class LinearOp {
 public:
  enum class Path { kF32, kInt, kSimulated };
  LinearOp() = default;
  // packed_int4: weights of <= 4 bits run the nibble-packed kernel (else the int8 one).
  // same_weights: an op built from the same weight tensor (a block sharing another's weights);
  // when it runs the same path, its packed weights are reused (one copy in memory) and only
  // this op's bias and input quantization are its own.
  LinearOp(const LinearData& d, const kernels::KernelTable& kt, bool simulate, bool packed_int4,
           const LinearOp* same_weights = nullptr);

  int in() const { return in_; }
  int out() const { return out_; }
  Path path() const { return path_; }
  const std::string& name() const { return name_; }
  // The integer family in use (int path only), e.g. for reports.
  const kernels::GemmIntKernels* int_kernels() const { return ik_; }
  // Scratch row widths this op needs: quantized activations (bytes), fake-quantized input.
  int act_row_bytes() const;
  size_t weight_bytes() const { return w_ ? w_->wf.size() * sizeof(float) + w_->wq.size() : 0; }
  // Identifies the packed weights (ops that share them return the same pointer).
  const void* weights_id() const { return w_.get(); }
  int fake_row_floats() const;
  // The weights stream from memory at every call (the model's weights exceed the caches): the
  // GEMM prefetches them (panel_prefetch_impl.inc).
  void set_prefetch_weights(bool on) { prefetch_weights_ = on; }

  // y (m, out), row stride ldy  =  epilogue(x (m, in), row stride ldx  @ W^T + bias).
  // columns_done (optional): called in the task that finished output columns [c0, c1) of every
  // row, as soon as it has (the GEMM then splits columns only), so a consumer of whole columns
  // can start there without a job of its own.
  using ColumnsDone = std::function<void(int c0, int c1)>;
  void run(ThreadPool& pool, LinearScratch& s, const float* x, int ldx, int m, float* y, int ldy,
           bool gelu, bool accumulate, const ColumnsDone* columns_done = nullptr) const;
  // The same for rows [r0, r1) only, on the calling thread (x, y and the scratch stay indexed by
  // absolute row, so callers may run disjoint row ranges of one matrix concurrently).
  void run_rows(LinearScratch& s, const float* x, int ldx, int r0, int r1, float* y, int ldy,
                bool gelu, bool accumulate) const;

 private:
  std::string name_;
  const kernels::KernelTable* kt_ = nullptr;
  const kernels::GemmIntKernels* ik_ = nullptr;  // int path: q8 or q4 of kt_
  Path path_ = Path::kF32;
  int in_ = 0, out_ = 0, kp_ = 0;
  bool prefetch_weights_ = false;
  struct PackedWeights {
    AlignedBuffer<float> wf;    // packed fp32 (F32 and simulated paths)
    AlignedBuffer<uint8_t> wq;  // packed int weights (int path)
    AlignedBuffer<int32_t> colsum, wzp;
    AlignedBuffer<float> wscale;
  };
  std::shared_ptr<const PackedWeights> w_;
  AlignedBuffer<float> bias_;
  bool has_bias_ = false;
  bool has_input_quant_ = false;
  kernels::ActQuant aq_;
  // Int path, static inputs and zero weight zero points: the epilogue's per-column terms
  // (kernels::GemmIntArgs::col_offset / col_scale); empty otherwise.
  AlignedBuffer<int32_t> col_offset_;
  AlignedBuffer<float> col_scale_;
  void set_column_terms();

  // Quantizes (integer path) or fake-quantizes (simulated path) input rows [r0, r1) into s.
  void prepare_rows(LinearScratch& s, const float* x, int ldx, int m, int r0, int r1) const;
  kernels::GemmIntArgs int_args(LinearScratch& s, int m, float* y, int ldy, kernels::Epilogue ep) const;
  kernels::GemmF32Args f32_args(LinearScratch& s, const float* x, int ldx, int m, float* y, int ldy,
                                kernels::Epilogue ep) const;
  kernels::Epilogue epilogue(bool gelu, bool accumulate) const;
};

// fp32 GEMM over the pool: splits panels x row tiles into a few tasks per thread (panels only,
// and columns_done after each task, when given: LinearOp::run).
void gemm_f32(const kernels::KernelTable& kt, ThreadPool& pool, const kernels::GemmF32Args& g,
              const LinearOp::ColumnsDone* columns_done = nullptr);
void gemm_int(const kernels::GemmIntKernels& ik, ThreadPool& pool, const kernels::GemmIntArgs& g,
              const LinearOp::ColumnsDone* columns_done = nullptr);

}  // namespace vitopt::runtime
