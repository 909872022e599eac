// DataLoader: every sample once per epoch, batches equal to the transforms applied by hand,
// identical output for 0, 1 and 3 workers, epoch/seed dependence, restarts, bounded prefetch and
// worker exceptions reaching the consumer.
#include "data/loader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "core/error.h"

namespace vitopt::data {
namespace {

std::shared_ptr<Dataset> synthetic(size_t count) {
  return open_dataset(parse_dataset_spec("synthetic:8:1:10:" + std::to_string(count)),
                      Split::Train);
}

LoaderOptions options(int workers, bool augment) {
  LoaderOptions o;
  o.batch_size = 10;
  o.shuffle = true;
  o.seed = 7;
  o.workers = workers;
  o.prefetch = 3;
  o.transform.size = 8;
  o.transform.channels = 1;
  o.transform.train = augment;
  o.transform.random_crop_padding = augment ? 2 : 0;
  o.transform.horizontal_flip = augment;
  return o;
}

std::vector<Batch> run_epoch(DataLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices) << "batch " << i;
    EXPECT_EQ(a[i].labels, b[i].labels) << "batch " << i;
    EXPECT_EQ(a[i].images, b[i].images) << "batch " << i;
  }
}

std::vector<int64_t> order(const std::vector<Batch>& batches) {
  std::vector<int64_t> out;
  for (const Batch& b : batches) out.insert(out.end(), b.indices.begin(), b.indices.end());
  return out;
}

TEST(DataLoader, EverySampleOncePerEpochWithHandTransformedPixels) {
  auto ds = synthetic(103);
  DataLoader loader(ds, options(2, false));
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  const auto batches = run_epoch(loader, 0);
  ASSERT_EQ(batches.size(), 11u);
  EXPECT_EQ(batches.back().size, 3);
  const auto seen = order(batches);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 103u);
  EXPECT_EQ(seen.size(), 103u);
  std::vector<int64_t> identity(103);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(seen, identity);  // shuffled

  const Batch& b = batches[4];
  EXPECT_EQ(b.channels, 1);
  EXPECT_EQ(b.height, 8);
  ASSERT_EQ(b.images.size(), 10u * 64);
  for (int64_t k = 0; k < b.size; ++k) {
    EXPECT_EQ(b.labels[k], ds->label(b.indices[k]));
    const Image img = ds->image(b.indices[k]);
    for (int p = 0; p < 64; ++p)
      ASSERT_NEAR(b.images[k * 64 + p], (img.pixels[p] / 255.0f - 0.5f) / 0.5f, 1e-6);
  }
}

TEST(DataLoader, DropLastAndNoShuffle) {
  auto o = options(1, false);
  o.drop_last = true;
  o.shuffle = false;
  DataLoader loader(synthetic(103), o);
  EXPECT_EQ(loader.batches_per_epoch(), 10);
  const auto seen = order(run_epoch(loader, 3));
  std::vector<int64_t> identity(100);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(seen, identity);
}

TEST(DataLoader, IdenticalForAnyWorkerCount) {
  auto ds = synthetic(95);
  DataLoader sync(ds, options(0, true)), one(ds, options(1, true)), three(ds, options(3, true));
  for (int epoch : {0, 1}) {
    const auto ref = run_epoch(sync, epoch);
    expect_same(ref, run_epoch(one, epoch));
    expect_same(ref, run_epoch(three, epoch));
  }
}

TEST(DataLoader, ShardsTogetherAreTheUnshardedBatches) {
  // Data parallelism: shard r of global batch k is part r of what one loader yields as batch k,
  // same samples and same augmentation, including a short last batch (95 = 9 x 10 + 5).
  auto ds = synthetic(95);
  DataLoader whole(ds, options(2, true));
  std::vector<std::unique_ptr<DataLoader>> shards;
  for (int s = 0; s < 2; ++s) {
    auto o = options(s, true);  // worker counts differ too
    o.shard = s;
    o.shards = 2;
    shards.push_back(std::make_unique<DataLoader>(ds, o));
  }
  for (int epoch : {0, 3}) {
    const auto ref = run_epoch(whole, epoch);
    const auto a = run_epoch(*shards[0], epoch), b = run_epoch(*shards[1], epoch);
    ASSERT_EQ(a.size(), ref.size());
    ASSERT_EQ(b.size(), ref.size());
    for (size_t k = 0; k < ref.size(); ++k) {
      Batch joined = a[k];
      joined.size += b[k].size;
      joined.indices.insert(joined.indices.end(), b[k].indices.begin(), b[k].indices.end());
      joined.labels.insert(joined.labels.end(), b[k].labels.begin(), b[k].labels.end());
      joined.images.insert(joined.images.end(), b[k].images.begin(), b[k].images.end());
      expect_same({ref[k]}, {joined});
    }
    EXPECT_EQ(a.back().size, 2);  // the short batch of 5 splits 2 + 3
  }
  auto bad = options(0, false);
  bad.shards = 3;  // 10 does not split into 3
  EXPECT_THROW(DataLoader(ds, bad), vitopt::core::InputError);
}

TEST(DataLoader, OrderAndAugmentationDependOnEpochAndSeed) {
  auto ds = synthetic(60);
  DataLoader a(ds, options(2, true)), b(ds, options(2, true));
  const auto e0 = run_epoch(a, 0);
  expect_same(e0, run_epoch(b, 0));  // same seed, same batches
  EXPECT_NE(order(e0), order(run_epoch(a, 1)));
  auto o = options(2, true);
  o.seed = 8;
  DataLoader c(ds, o);
  EXPECT_NE(order(e0), order(run_epoch(c, 0)));
  // Without shuffling the order is fixed but the augmentation still changes with the epoch.
  o.shuffle = false;
  DataLoader d(ds, o);
  const auto d0 = run_epoch(d, 0), d1 = run_epoch(d, 1);
  EXPECT_EQ(order(d0), order(d1));
  EXPECT_NE(d0[0].images, d1[0].images);
}

TEST(DataLoader, RestartMidEpochAndDestroyMidEpoch) {
  auto ds = synthetic(200);
  DataLoader fresh(ds, options(2, true));
  const auto want = run_epoch(fresh, 1);
  DataLoader loader(ds, options(3, true));
  loader.start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  ASSERT_TRUE(loader.next(b));
  expect_same(want, run_epoch(loader, 1));
  loader.start_epoch(2);
  ASSERT_TRUE(loader.next(b));
  // Destroyed with workers mid-epoch: must join without hanging.
}

// Counts image() calls and throws at one index.
class ProbeDataset : public Dataset {
 public:
  ProbeDataset(std::shared_ptr<Dataset> base, size_t bad) : base_(std::move(base)), bad_(bad) {}
  size_t size() const override { return base_->size(); }
  int num_classes() const override { return base_->num_classes(); }
  int channels() const override { return base_->channels(); }
  int native_size() const override { return base_->native_size(); }
  Image image(size_t index) const override {
    ++calls;
    if (index == bad_) core::throw_input("probe: sample {} is broken", index);
    return base_->image(index);
  }
  int label(size_t index) const override { return base_->label(index); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  std::string description() const override { return "probe"; }
  std::vector<float> default_mean() const override { return base_->default_mean(); }
  std::vector<float> default_std() const override { return base_->default_std(); }
  mutable std::atomic<int> calls{0};

 private:
  std::shared_ptr<Dataset> base_;
  size_t bad_;
};

TEST(DataLoader, PrefetchIsBounded) {
  auto probe = std::make_shared<ProbeDataset>(synthetic(1000), SIZE_MAX);
  auto o = options(2, false);
  o.prefetch = 2;
  DataLoader loader(probe, o);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // One batch consumed, two more may be ready: at most 3 batches of 10 decoded.
  EXPECT_LE(probe->calls.load(), 30);
  EXPECT_GE(probe->calls.load(), 10);
}

TEST(DataLoader, WorkerExceptionReachesConsumer) {
  for (int workers : {0, 1, 3}) {
    auto probe = std::make_shared<ProbeDataset>(synthetic(100), 57);
    auto o = options(workers, false);
    o.shuffle = false;
    DataLoader loader(probe, o);
    loader.start_epoch(0);
    Batch b;
    int delivered = 0;
    try {
      while (loader.next(b)) ++delivered;
      FAIL() << "no exception with " << workers << " workers";
    } catch (const core::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("sample 57"), std::string::npos);
    }
    EXPECT_LE(delivered, 5);                               // batch 5 holds sample 57
    EXPECT_FALSE(loader.next(b));                          // the epoch ended with the error
    EXPECT_THROW(run_epoch(loader, 1), core::InputError);  // restartable after an error
  }
}

}  // namespace
}  // namespace vitopt::data
