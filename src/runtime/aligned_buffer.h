// A 64-byte aligned, zero-initialised array that owns its memory: packed weights and activation
// buffers live in these so SIMD loads never split cache lines and nothing reallocates per call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace vitopt::runtime {

// Bytes held by every AlignedBuffer in the process (packed weights and plan buffers: all of the
// runtime's large allocations), and their high-water mark since the last reset. This is the
// runtime's "allocator peak" (runtime.h: allocated_bytes / peak_allocated_bytes).
namespace buffer_stats {
inline std::atomic<size_t> live{0}, peak{0};
inline void add(size_t bytes) {
  const size_t now = live.fetch_add(bytes) + bytes;
  size_t p = peak.load();
  while (now > p && !peak.compare_exchange_weak(p, now)) {
  }
}
inline void sub(size_t bytes) { live.fetch_sub(bytes); }
}  // namespace buffer_stats

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)),
                                              size_(std::exchange(o.size_, 0)),
                                              bytes_(std::exchange(o.bytes_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~AlignedBuffer() { release(); }

  // Discards the contents; the new array is zeroed. Sizes round up to whole cache lines (plus one
  // spare line) so vector tails may read a little past the end without leaving the allocation.
  void resize(size_t n) {
    release();
    size_ = n;
    if (n == 0) return;
    const size_t bytes = ((n * sizeof(T) + 63) / 64 + 1) * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
    std::memset(static_cast<void*>(data_), 0, bytes);
    bytes_ = bytes;
    buffer_stats::add(bytes);
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void release() {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    buffer_stats::sub(std::exchange(bytes_, 0));
  }
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;  // allocated (rounded) bytes, counted in buffer_stats
};

}  // namespace vitopt::runtime
