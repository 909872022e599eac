// c10d's TCPStore + ProcessGroupGloo behind train::dist::Communicator. The only file that
// includes the c10d/Gloo headers; CMake compiles it only when they are found (else
// communicator_unavailable.cpp). The process-wide group is in process_group.cpp.
#include "train/distributed/communicator.h"

// Debian's LibTorch is built with Gloo, but its header hides the class unless told so (defined
// here, not in CMake, so the target's shared precompiled header stays valid for this file).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/error.h"

namespace vitopt::train::dist {
namespace {

[[noreturn]] void fail(const WorldSpec& w, const std::string& what, const std::exception& e) {
  core::throw_internal(
      "distributed: rank {} of {}: {} failed: {}. A worker probably died or stopped responding "
      "(see its output), or --dist-timeout ({} s) passed; the whole job stops",
      w.rank, w.world_size, what, e.what(), w.timeout_s);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

class GlooReduce final : public PendingReduce {
 public:
  GlooReduce(c10::intrusive_ptr<c10d::Work> work, const WorldSpec& world)
      : work_(std::move(work)), world_(world) {}
  void wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      fail(world_, "gradient all-reduce", e);
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  WorldSpec world_;
};

// Root's proof of life while it computes alone: adds 1 to `key` in the store every `period` until
// destroyed. Store errors end the beating quietly (the waiters then notice the silence).
class Heartbeat {
 public:
  Heartbeat(c10d::Store& store, std::string key, std::chrono::milliseconds period)
      : store_(store), key_(std::move(key)), period_(period) {
    thread_ = std::thread([this] { beat(); });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  void beat() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      try {
        store_.add(key_, 1);
      } catch (const std::exception&) {
        return;
      }
      wake_.wait_for(lock, period_, [this] { return stop_; });
    }
  }

  c10d::Store& store_;
  std::string key_;
  std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }
std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

class GlooCommunicator final : public Communicator {
 public:
  explicit GlooCommunicator(const WorldSpec& world) : world_(world) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(world.timeout_s * 1000));
    try {
      c10d::TCPStoreOptions sopts;
      sopts.port = static_cast<uint16_t>(world.master_port);
      sopts.isServer = world.rank == 0;
      sopts.numWorkers = static_cast<size_t>(world.world_size);
      sopts.waitWorkers = true;
      sopts.timeout = timeout;
      store_ = c10::make_intrusive<c10d::TCPStore>(world.master_addr, sopts);
    } catch (const std::exception& e) {
      core::throw_internal(
          "distributed: rank {} of {}: rendezvous at {}:{} failed within {} s: {}. Check that "
          "rank 0 runs, that MASTER_ADDR/--master is reachable from every machine and that the "
          "port is free and open",
          world.rank, world.world_size, world.master_addr, world.master_port, world.timeout_s,
          e.what());
    }
    try {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(world.master_addr))
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      group_ =
          c10::make_intrusive<c10d::ProcessGroupGloo>(store_, world.rank, world.world_size, opts);
    } catch (const std::exception& e) {
      fail(world_, "connecting the Gloo process group", e);
    }
  }

  int rank() const override { return world_.rank; }
  int world_size() const override { return world_.world_size; }

  std::unique_ptr<PendingReduce> allreduce_sum_async(at::Tensor& flat) override {
    std::vector<at::Tensor> one{flat};
    try {
      return std::make_unique<GlooReduce>(group_->allreduce(one), world_);
    } catch (const std::exception& e) {
      fail(world_, "starting an all-reduce", e);
    }
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    // One collective per dtype: the tensors flattened into one buffer (Gloo's broadcast takes a
    // single CPU tensor), then copied back.
    std::map<c10::ScalarType, std::vector<at::Tensor*>> by_type;
    for (auto& t : tensors) by_type[t.scalar_type()].push_back(&t);
    for (auto& [type, group] : by_type) {
      std::vector<at::Tensor> flat_parts;
      for (auto* t : group) flat_parts.push_back(t->detach().reshape({-1}).to(at::kCPU));
      std::vector<at::Tensor> buffer{at::cat(flat_parts)};
      try {
        c10d::BroadcastOptions o;
        o.rootRank = root;
        group_->broadcast(buffer, o)->wait();
      } catch (const std::exception& e) {
        fail(world_, "broadcast from rank 0", e);
      }
      at::NoGradGuard no_grad;
      int64_t offset = 0;
      for (auto* t : group) {
        const int64_t n = t->numel();
        t->detach().copy_(buffer[0].narrow(0, offset, n).view(t->sizes()));
        offset += n;
      }
    }
  }

  void broadcast_string(std::string& text, int root) override {
    std::vector<at::Tensor> size{at::full({1}, static_cast<int64_t>(text.size()), at::kLong)};
    broadcast(size, root);
    const int64_t n = size[0].item<int64_t>();
    std::vector<at::Tensor> bytes{at::zeros({std::max<int64_t>(n, 1)}, at::kByte)};
    if (world_.rank == root && n > 0) std::memcpy(bytes[0].data_ptr(), text.data(), text.size());
    broadcast(bytes, root);
    text.assign(reinterpret_cast<const char*>(bytes[0].data_ptr()), static_cast<size_t>(n));
  }

  void barrier() override {
    try {
      group_->barrier()->wait();
    } catch (const std::exception& e) {
      fail(world_, "barrier", e);
    }
  }

  std::string result_of_root(const std::function<std::string()>& compute,
                             const std::string& what) override {
    // The store outlives every call: each call gets keys of its own.
    const std::string key = fmt::format("vitopt/result_of_root/{}/", calls_++);
    if (world_.rank != 0) return wait_for_root(key, what);
    std::string text;
    {
      // Five beats per timeout (at most one a second): one late beat never looks like silence.
      const auto period = std::chrono::milliseconds(
          std::clamp<int64_t>(static_cast<int64_t>(world_.timeout_s * 200), 20, 1000));
      Heartbeat beat(*store_, key + "beat", period);
      try {
        text = compute();
      } catch (const std::exception& e) {
        publish(key + "error", e.what());
        try {
          wait_until_read(key + "read");  // so that the others report this error, not a lost root
        } catch (const core::Error&) {
        }
        throw;
      }
    }
    publish(key + "result", text);
    wait_until_read(key + "read");
    return text;
  }

 private:
  void publish(const std::string& key, const std::string& text) {
    try {
      store_->set(key, bytes_of(text));
    } catch (const std::exception& e) {
      fail(world_, "publishing rank 0's result", e);
    }
  }

  // Root waits until every other rank has its result (the store lives in root's process: a
  // root that went on and exited would take the result with it).
  void wait_until_read(const std::string& key) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(world_.timeout_s);
    try {
      while (store_->add(key, 0) < world_.world_size - 1) {
        if (std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error("the other ranks did not collect it in time");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    } catch (const std::exception& e) {
      fail(world_, "handing over rank 0's result", e);
    }
  }

  std::string wait_for_root(const std::string& key, const std::string& what) {
    using Clock = std::chrono::steady_clock;
    const auto silence = std::chrono::duration<double>(world_.timeout_s);
    int64_t last_beat = -1;
    auto last_change = Clock::now();
    for (;;) {
      std::string error;
      try {
        if (store_->check({key + "result"})) {
          auto text = text_of(store_->get(key + "result"));
          store_->add(key + "read", 1);
          return text;
        }
        if (store_->check({key + "error"})) {
          error = text_of(store_->get(key + "error"));
          store_->add(key + "read", 1);
        }
        const int64_t beat = store_->add(key + "beat", 0);
        if (beat != last_beat) {
          last_beat = beat;
          last_change = Clock::now();
        }
      } catch (const std::exception& e) {
        fail(world_, "waiting for rank 0's " + what, e);
      }
      if (!error.empty())
        core::throw_internal("distributed: rank {} of {}: {} failed on rank 0: {}", world_.rank,
                             world_.world_size, what, error);
      if (Clock::now() - last_change > silence)
        core::throw_internal(
            "distributed: rank {} of {}: rank 0 stopped answering while computing {} (no "
            "heartbeat for {} s, --dist-timeout); the whole job stops",
            world_.rank, world_.world_size, what, world_.timeout_s);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  WorldSpec world_;
  int64_t calls_ = 0;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

bool available() { return true; }

std::unique_ptr<Communicator> connect(const WorldSpec& world) {
  return std::make_unique<GlooCommunicator>(world);
}

}  // namespace vitopt::train::dist
