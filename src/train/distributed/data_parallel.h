// The data-parallel steps of the training loop, in one object the trainer asks at fixed points:
// start (rank 0's weights, and on resume its optimizer and position, to every rank), gradient
// averaging (GradientSync), sums of running statistics, the evaluation shard and its reduction,
// and a final barrier. In a world of one every call is a no-op, so the loop has no other branch.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "data/dataset.h"
#include "model/vit.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/distributed/communicator.h"
#include "train/distributed/grad_sync.h"
#include "train/evaluate.h"

namespace vitopt::train::dist {

class DataParallel {
 public:
  explicit DataParallel(Communicator* comm) : comm_(comm) {}
  bool active() const { return comm_ != nullptr && comm_->world_size() > 1; }
  int rank() const { return active() ? comm_->rank() : 0; }
  int world_size() const { return active() ? comm_->world_size() : 1; }
  bool root() const { return rank() == 0; }

  // Checks that every rank runs the same training (rank 0's `fingerprint` and model config must
  // equal this rank's: InputError otherwise), then copies rank 0's parameters, buffers and
  // `extra` tensors to every rank; with `resume`, also its optimizer state and trainer `state`
  // (only rank 0 reads the checkpoint, so other machines need no copy of it).
  void sync_start(model::ViT& model, const std::vector<torch::Tensor>& extra, AdamW& optimizer,
                  TrainerState& state, bool resume);

  // Hooks on `params` that average their gradients over the ranks; null in a world of one.
  std::unique_ptr<GradientSync> gradient_sync(const std::vector<torch::Tensor>& params);

  // Element-wise sum over ranks (running loss, correct, seen...), identical on every rank.
  void sum(std::vector<double>& values);

  // This rank's contiguous part of an evaluation set (ranks get sizes differing by at most 1).
  std::shared_ptr<const data::Dataset> eval_shard(std::shared_ptr<const data::Dataset> full) const;
  // Combines the ranks' results on their shards into the result on the whole set.
  void reduce_eval(EvalResult& r);

  void barrier();

  // Rank 0's weights compared bit for bit with this rank's: a difference (which would mean the
  // ranks trained different models) is an InternalError naming the first differing tensor.
  void verify_same_weights(model::ViT& model, const std::vector<torch::Tensor>& extra);

 private:
  Communicator* comm_;
};

}  // namespace vitopt::train::dist
