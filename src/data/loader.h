// Turns a Dataset into normalized float batches (B, C, H, W) with augmentation, on worker threads
// that prefetch ahead. Deterministic under a seed regardless of the worker count: the epoch order
// comes from (seed, epoch) and each sample's augmentation from (seed, epoch, index).
#pragma once

#include <memory>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace vitopt::data {

struct Batch {
  int64_t size = 0;  // B
  int channels = 0, height = 0, width = 0;
  std::vector<float> images;     // (B, C, H, W) normalized
  std::vector<int64_t> labels;   // (B)
  std::vector<int64_t> indices;  // dataset index of each sample
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 2;             // decode/augment threads (0: build batches inside next())
  int prefetch = 4;            // batches kept ready ahead of the consumer
  // Data-parallel sharding: each batch of `batch_size` (the global batch) is cut into `shards`
  // equal parts and this loader yields part `shard` of every batch. The epoch order is the same
  // for every shard count, so W loaders together see exactly what one unsharded loader sees.
  int shard = 0;
  int shards = 1;              // must divide batch_size
  TransformOptions transform;  // output size, normalization, augmentation
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts epoch `epoch` (order and augmentation depend on it); restarting discards prefetched
  // batches. Then call next() until it returns false. next() before any start_epoch starts epoch 0.
  // A worker's exception is rethrown by next(), which then ends the epoch.
  void start_epoch(int epoch);
  bool next(Batch& out);
  int64_t batches_per_epoch() const;
  size_t dataset_size() const;
  const LoaderOptions& options() const { return options_; }

 private:
  struct State;
  void stop_workers();                                 // joins; prefetched batches stay
  void worker_loop();                                  // one worker thread's body
  void build_batch(int64_t number, Batch& out) const;  // batch `number` of the current epoch

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace vitopt::data
