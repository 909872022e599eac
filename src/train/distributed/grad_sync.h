// Data-parallel gradient averaging without DistributedDataParallel (LibTorch's C++ API has none):
// parameters are grouped into buckets of ~kBucketBytes in reverse registration order (the order
// backward produces their gradients); a tensor hook on each parameter copies its gradient into
// the bucket's flat buffer, and a full bucket starts its all-reduce at once, so communication
// overlaps the rest of the backward pass. finish() waits for every bucket and writes the
// averaged gradients (sum / world size) into .grad.
// Legend: W world size.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "train/distributed/communicator.h"

namespace vitopt::train::dist {

class GradientSync {
 public:
  static constexpr int64_t kBucketBytes = 4 << 20;  // small enough to overlap, large enough to
                                                    // amortize Gloo's per-message latency

  // `params`: every tensor the optimizer updates (requires_grad ones are synchronized).
  GradientSync(Communicator& comm, const std::vector<torch::Tensor>& params,
               int64_t bucket_bytes = kBucketBytes);
  ~GradientSync();  // removes the hooks (the model may be trained again without this object)
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Call after loss.backward(): launches buckets the hooks did not (parameters without a gradient
  // this step contribute zeros and keep their .grad as it was), waits, averages into .grad.
  // Buckets always start in index order on every rank, whatever order the hooks fire in.
  void finish();

  size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Slot {
    torch::Tensor param;
    int bucket = 0;
    int64_t offset = 0;  // in the bucket's buffer
    bool ready = false;  // gradient copied in during this backward
    unsigned hook = 0;
  };
  struct Bucket {
    torch::Tensor buffer;  // (elements) float32, the bucket's gradients back to back
    int slots = 0, ready = 0;
    std::unique_ptr<PendingReduce> pending;
  };
  void on_gradient(size_t slot, const torch::Tensor& grad);
  void launch_ready_buckets();

  Communicator& comm_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;  // buckets launch strictly in order
};

}  // namespace vitopt::train::dist
