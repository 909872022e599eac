// DataLoader: worker threads claim batch numbers in order, build them (decode + transform) without
// holding the lock, and park them in a map keyed by batch number; next() hands them out in order.
// A worker may claim batch b only while b < consumed + prefetch, which bounds memory. Every random
// choice derives from (seed, epoch[, dataset index]), never from which thread built what.
#include "data/loader.h"

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "core/error.h"
#include "data/seed_mix.h"

namespace vitopt::data {

struct DataLoader::State {
  std::mutex mu;
  std::condition_variable work_cv;   // workers: room to claim, or stop
  std::condition_variable ready_cv;  // consumer: a batch arrived, or an error
  std::vector<std::thread> threads;
  std::vector<size_t> order;  // epoch order of dataset indices
  int epoch = 0;
  bool started = false;
  bool stop = false;
  int64_t next_claim = 0;    // next batch number a worker will build
  int64_t next_consume = 0;  // next batch number next() returns
  std::map<int64_t, Batch> ready;
  std::exception_ptr error;
};

namespace {

// Fisher-Yates with raw mt19937_64 draws: std::shuffle's use of the engine is unspecified, so its
// order would change with the standard library.
void shuffle_indices(std::vector<size_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)), state_(new State) {
  if (!dataset_) core::throw_internal("DataLoader: null dataset");
  if (options_.batch_size <= 0)
    core::throw_input("loader: batch size must be positive, got {}", options_.batch_size);
  if (options_.prefetch < 1) options_.prefetch = 1;
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards)
    core::throw_internal("loader: shard {} of {} is out of range", options_.shard, options_.shards);
  if (options_.batch_size % options_.shards != 0)
    core::throw_input("loader: batch size {} does not split into {} equal shards",
                      options_.batch_size, options_.shards);
  const int c = options_.transform.channels;
  if (c != 1 && c != 3) core::throw_input("loader: output channels must be 1 or 3, got {}", c);
  if (options_.transform.size <= 0)
    core::throw_input("loader: image size must be positive, got {}", options_.transform.size);
}

DataLoader::~DataLoader() { stop_workers(); }

size_t DataLoader::dataset_size() const { return dataset_->size(); }

int64_t DataLoader::batches_per_epoch() const {
  const auto n = static_cast<int64_t>(dataset_->size());
  const int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->work_cv.notify_all();
  for (std::thread& t : state_->threads) t.join();
  state_->threads.clear();
}

void DataLoader::start_epoch(int epoch) {
  stop_workers();  // workers of a previous, unfinished epoch must not touch the new state
  State& s = *state_;
  s.order.resize(dataset_->size());
  std::iota(s.order.begin(), s.order.end(), size_t{0});
  if (options_.shuffle) {
    std::mt19937_64 rng(mix_seed(options_.seed, static_cast<uint64_t>(epoch)));
    shuffle_indices(s.order, rng);
  }
  s.epoch = epoch;
  s.started = true;
  s.stop = false;
  s.next_claim = 0;
  s.next_consume = 0;
  s.ready.clear();
  s.error = nullptr;
  const int64_t threads = std::min<int64_t>(options_.workers, batches_per_epoch());
  for (int64_t t = 0; t < threads; ++t) s.threads.emplace_back([this] { worker_loop(); });
}

void DataLoader::build_batch(int64_t number, Batch& out) const {
  const State& s = *state_;
  const TransformOptions& tf = options_.transform;
  // This shard's slice of global batch `number` (a short last batch is split as evenly as its
  // size allows, so every sample is still seen by exactly one shard).
  const size_t global_begin = static_cast<size_t>(number * options_.batch_size);
  const size_t global_end =
      std::min(global_begin + static_cast<size_t>(options_.batch_size), s.order.size());
  const size_t global_count = global_end - global_begin;
  const auto shards = static_cast<size_t>(options_.shards);
  const auto shard = static_cast<size_t>(options_.shard);
  const size_t begin = global_begin + global_count * shard / shards;
  const size_t end = global_begin + global_count * (shard + 1) / shards;
  const size_t sample_floats = static_cast<size_t>(tf.channels) * tf.size * tf.size;
  out.size = static_cast<int64_t>(end - begin);
  out.channels = tf.channels;
  out.height = out.width = tf.size;
  out.images.resize(static_cast<size_t>(out.size) * sample_floats);
  out.labels.resize(static_cast<size_t>(out.size));
  out.indices.resize(static_cast<size_t>(out.size));
  const uint64_t epoch_seed = mix_seed(mix_seed(options_.seed, 0x6175676D),  // "augm"
                                       static_cast<uint64_t>(s.epoch));
  for (size_t i = begin; i < end; ++i) {
    const size_t index = s.order[i];
    std::mt19937_64 rng(mix_seed(epoch_seed, index));
    const size_t k = i - begin;
    apply_transform(dataset_->image(index), tf, rng, out.images.data() + k * sample_floats);
    out.labels[k] = dataset_->label(index);
    out.indices[k] = static_cast<int64_t>(index);
  }
}

void DataLoader::worker_loop() {
  State& s = *state_;
  const int64_t total = batches_per_epoch();
  while (true) {
    int64_t number = 0;
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.work_cv.wait(lock, [&] {
        return s.stop || s.error || s.next_claim >= total ||
               s.next_claim < s.next_consume + options_.prefetch;
      });
      if (s.stop || s.error || s.next_claim >= total) return;
      number = s.next_claim++;
    }
    Batch batch;
    try {
      build_batch(number, batch);
    } catch (...) {
      std::lock_guard<std::mutex> lock(s.mu);
      if (!s.error) s.error = std::current_exception();
      s.ready_cv.notify_all();
      s.work_cv.notify_all();  // the other workers stop too
      return;
    }
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.ready.emplace(number, std::move(batch));
    }
    s.ready_cv.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  State& s = *state_;
  if (!s.started) start_epoch(0);
  const int64_t total = batches_per_epoch();
  if (s.next_consume >= total) return false;
  if (s.threads.empty()) {  // workers == 0: build on the caller's thread
    try {
      build_batch(s.next_consume, out);
    } catch (...) {
      s.next_consume = total;  // the epoch ends with the error, as with workers
      throw;
    }
    ++s.next_consume;
    return true;
  }
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    s.ready_cv.wait(lock, [&] { return s.error || s.ready.count(s.next_consume) > 0; });
    auto it = s.ready.find(s.next_consume);
    if (it != s.ready.end()) {
      out = std::move(it->second);
      s.ready.erase(it);
      ++s.next_consume;
    } else {
      error = s.error;
      s.next_consume = total;  // the epoch ends with the error
    }
  }
  if (error) {
    stop_workers();
    std::rethrow_exception(error);
  }
  s.work_cv.notify_all();
  return true;
}

}  // namespace vitopt::data
