// ThreadPool: one atomic job word (generation | tasks | next) claimed by compare-exchange, and a
// count of finished tasks the caller waits on. Workers spin (with pause) for a short while after
// each job, because the next kernel of the forward pass usually follows within microseconds; then
// they sleep on a condition variable so an idle engine costs no CPU.
#include "runtime/thread_pool.h"

#include <immintrin.h>

#include "core/error.h"

namespace vitopt::runtime {
namespace {

constexpr int kSpinIterations = 20000;  // ~0.1-0.5 ms of pause before sleeping
constexpr uint64_t kIndexBits = 20, kIndexMask = (uint64_t{1} << kIndexBits) - 1;

uint64_t generation_of(uint64_t w) { return w >> (2 * kIndexBits); }
int tasks_of(uint64_t w) { return static_cast<int>((w >> kIndexBits) & kIndexMask); }
int next_of(uint64_t w) { return static_cast<int>(w & kIndexMask); }

}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int extra = threads > 1 ? threads - 1 : 0;
  workers_.reserve(static_cast<size_t>(extra));
  for (int i = 0; i < extra; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    job_.fetch_add(uint64_t{1} << (2 * kIndexBits));  // a new (empty) generation wakes everyone
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks(uint64_t generation) {
  uint64_t w = job_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(w) != generation || next_of(w) >= tasks_of(w)) return;
    if (!job_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    // The claimed task belongs to `generation`, which cannot finish before this task does, so
    // fn_/ctx_ still hold that job's function.
    fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), next_of(w));
    done_.fetch_add(1, std::memory_order_acq_rel);
    w = job_.load(std::memory_order_acquire);
  }
}

void ThreadPool::dispatch(int tasks, TaskFn fn, void* ctx) {
  if (static_cast<uint64_t>(tasks) > kIndexMask)
    core::throw_internal("ThreadPool: {} tasks exceed the limit {}", tasks, kIndexMask);
  fn_.store(fn, std::memory_order_relaxed);
  ctx_.store(ctx, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint64_t gen = generation_of(job_.load()) + 1;
  job_.store((gen << (2 * kIndexBits)) | (static_cast<uint64_t>(tasks) << kIndexBits));  // seq_cst
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_tasks(gen);
  for (int spin = 0; done_.load(std::memory_order_acquire) < tasks; ++spin) {
    if (spin < kSpinIterations) {
      _mm_pause();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_of(job_.load(std::memory_order_acquire));
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      _mm_pause();
      gen = generation_of(job_.load(std::memory_order_acquire));
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_of(job_.load()) != seen; });
      sleepers_.fetch_sub(1);
      gen = generation_of(job_.load());
    }
    seen = gen;
    if (stop_.load()) return;
    run_tasks(gen);
  }
}

}  // namespace vitopt::runtime
