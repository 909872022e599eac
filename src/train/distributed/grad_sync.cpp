// GradientSync (see grad_sync.h): bucket layout, the per-parameter hooks and in-order launches.
#include "train/distributed/grad_sync.h"

#include <algorithm>

#include "core/error.h"

namespace vitopt::train::dist {

GradientSync::GradientSync(Communicator& comm, const std::vector<torch::Tensor>& params,
                           int64_t bucket_bytes)
    : comm_(comm) {
  // Reverse order: the head's gradients are produced first by backward, the patch embedding's
  // last, so the first bucket fills (and starts reducing) while backward is still running.
  int64_t bucket_elems = 0;
  c10::ScalarType bucket_type = c10::ScalarType::Undefined;
  std::vector<int64_t> sizes;  // elements per bucket
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const auto& p = *it;
    if (!p.requires_grad()) continue;
    const int64_t bytes_so_far = bucket_elems * static_cast<int64_t>(p.element_size());
    if (sizes.empty() || p.scalar_type() != bucket_type ||
        (bucket_elems > 0 && bytes_so_far + static_cast<int64_t>(p.nbytes()) > bucket_bytes)) {
      sizes.push_back(0);
      buckets_.emplace_back();
      bucket_elems = 0;
      bucket_type = p.scalar_type();
    }
    Slot s;
    s.param = p;
    s.bucket = static_cast<int>(buckets_.size()) - 1;
    s.offset = bucket_elems;
    bucket_elems += p.numel();
    sizes.back() = bucket_elems;
    ++buckets_.back().slots;
    slots_.push_back(s);
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto& first = *std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) {
      return s.bucket == static_cast<int>(b);
    });
    buckets_[b].buffer = torch::zeros({sizes[b]}, first.param.options().requires_grad(false));
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].hook = slots_[i].param.register_hook(
        [this, i](const torch::Tensor& grad) { on_gradient(i, grad); });
  }
}

GradientSync::~GradientSync() {
  for (auto& s : slots_) s.param.remove_hook(s.hook);
}

void GradientSync::on_gradient(size_t index, const torch::Tensor& grad) {
  Slot& s = slots_[index];
  Bucket& b = buckets_[static_cast<size_t>(s.bucket)];
  torch::NoGradGuard no_grad;
  auto view = b.buffer.narrow(0, s.offset, s.param.numel());
  if (s.ready) {  // a second gradient for the same leaf in one backward: accumulate
    if (b.pending) core::throw_internal("GradientSync: a gradient arrived after its bucket left");
    view.add_(grad.reshape({-1}));
    return;
  }
  view.copy_(grad.reshape({-1}));
  s.ready = true;
  if (++b.ready == b.slots) launch_ready_buckets();
}

void GradientSync::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].slots) {
    Bucket& b = buckets_[next_launch_++];
    b.pending = comm_.allreduce_sum_async(b.buffer);
  }
}

void GradientSync::finish() {
  // Parameters that got no gradient this step (unused by this loss) contribute zeros.
  for (auto& s : slots_) {
    if (s.ready) continue;
    Bucket& b = buckets_[static_cast<size_t>(s.bucket)];
    if (b.pending)
      core::throw_internal("GradientSync: bucket {} left before it was full", s.bucket);
    b.buffer.narrow(0, s.offset, s.param.numel()).zero_();
    ++b.ready;
  }
  launch_ready_buckets();
  const double inv_world = 1.0 / static_cast<double>(comm_.world_size());
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    b.buffer.mul_(inv_world);
    b.ready = 0;
  }
  next_launch_ = 0;
  for (auto& s : slots_) {
    const bool had_grad = s.ready;
    s.ready = false;
    if (!had_grad) continue;  // same on every rank: the loss ignores this parameter everywhere
    auto& g = s.param.mutable_grad();
    const auto avg =
        buckets_[static_cast<size_t>(s.bucket)].buffer.narrow(0, s.offset, s.param.numel());
    if (g.defined())
      g.copy_(avg.view(s.param.sizes()));
    else
      g = avg.view(s.param.sizes()).clone();
  }
}

}  // namespace vitopt::train::dist
