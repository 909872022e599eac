// Token merging (ToMe) on the runtime's buffers: the rule of src/model/token_merge.h (bipartite
// soft matching of the keys averaged over heads, size-weighted averages, prefix tokens (class,
// distillation, registers) never merged, the same output order) for one image, single-threaded;
// the engine runs the images of a batch in parallel, computes the metric rows where it produces
// the keys, and at batch 1 splits an image's output columns over its threads. LibTorch-free.
// Legend: N tokens in, r merged away, C embed dim, H heads, D head dim.
#pragma once

#include <cstddef>

namespace vitopt::runtime {

namespace kernels {
struct KernelTable;
}

struct MergeImageArgs {
  const float* x = nullptr;     // (N, C) tokens after the attention residual, row stride ldx
  const float* keys = nullptr;  // token t's keys of every head at keys + t * ldk: (H, D)
  int ldx = 0, ldk = 0;
  int tokens = 0, dim = 0, heads = 0, head_dim = 0, r = 0;
  // Tokens [0, prefix_tokens) (class, distillation, registers: io::ViTConfig::num_prefix_tokens)
  // are protected: one in A never merges, nothing merges into one in B. They lead the output in
  // their order, then the unmerged other A tokens, then the other B tokens. The caller caps r at
  // (N - prefix_tokens) / 2 (io::ViTConfig::merge_at), which leaves enough of both unprotected.
  int prefix_tokens = 1;
  const float* sizes = nullptr;  // (N) token sizes, or null for all 1
  float* out = nullptr;          // (N - r, C), row stride ldx (must not alias x)
  float* out_sizes = nullptr;    // (N - r)
  float* scratch = nullptr;      // merge_scratch_floats(N, D, kt) floats, 64-byte aligned
  int* index_scratch = nullptr;  // merge_scratch_ints(N) ints
  // The similarities (|A| x |B| dot products of D) on this table's fp32 GEMM (packed B); null:
  // a scalar loop (tests).
  const kernels::KernelTable* kt = nullptr;
  // This image's metric rows (N, D) from merge_metric_rows, computed where the keys were made
  // (in parallel, while they are in cache); null: computed here from `keys`.
  const float* metric = nullptr;
  // Output columns [col0, col1) only (col1 < 0: all `dim`), so several threads can share one
  // image: each picks the same pairs (same inputs, same arithmetic) and writes its own columns.
  // out_sizes is written by the part with col0 == 0 only.
  int col0 = 0, col1 = -1;
};

// The merge metric of tokens [t0, t1): token t's keys (H, D) at keys + t * ldk averaged over
// the heads and L2-normalised into metric + t * head_dim, on kt's loops (null: the reference's;
// every level gives the same bits).
void merge_metric_rows(const float* keys, int ldk, int heads, int head_dim, int t0, int t1,
                       float* metric, const kernels::KernelTable* kt = nullptr);

size_t merge_scratch_floats(int tokens, int head_dim, const kernels::KernelTable* kt = nullptr);
size_t merge_scratch_ints(int tokens);
// merge_select (the pairs: similarities, first maxima, order; each output token's size, in the
// scratch) then merge_columns(a, col0, col1).
void merge_image(const MergeImageArgs& a);
// The two halves, for a caller that writes the columns as they become ready (the engine, after
// each of the proj GEMM's column tasks): merge_columns reads what merge_select left in a's
// scratch, so any number of column ranges may follow one selection, concurrently. out_sizes is
// written by the range starting at column 0.
void merge_select(const MergeImageArgs& a);
void merge_columns(const MergeImageArgs& a, int col0, int col1);

}  // namespace vitopt::runtime
