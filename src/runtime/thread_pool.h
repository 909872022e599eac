// One persistent pool of worker threads per Engine: threads start once at load, spin briefly
// between the back-to-back kernels of a forward pass and sleep when idle, so a small model's
// batch-1 call pays no thread start-up and almost no wake-up latency.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace vitopt::runtime {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller (>= 1)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(task) for task in [0, tasks) on the pool and the caller; returns when all are done.
  // Tasks are claimed dynamically, so a core taken by another process only delays its own share.
  template <typename F>
  void run(int tasks, F&& fn) {
    if (tasks <= 0) return;
    if (tasks == 1 || workers_.empty()) {
      for (int t = 0; t < tasks; ++t) fn(t);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    dispatch(tasks, [](void* ctx, int t) { (*static_cast<Fn*>(ctx))(t); },
             const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using TaskFn = void (*)(void*, int);
  void dispatch(int tasks, TaskFn fn, void* ctx);
  void worker_loop();
  void run_tasks(uint64_t generation);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // The current job in one word, so a claim can never mix two jobs: generation (24 bits) | task
  // count (20 bits) | next task (20 bits). Workers claim by compare-exchange on the whole word;
  // a worker that wakes late for a finished job fails the generation check and claims nothing,
  // so the caller waits for tasks, never for threads (a descheduled worker costs nothing).
  std::atomic<uint64_t> job_{0};
  std::atomic<int> done_{0};      // tasks finished in the current job
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::atomic<TaskFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
};

}  // namespace vitopt::runtime
