// Data parallelism inside one test process: two ranks on two threads, each with its own Gloo
// process group over loopback, train the tiny model and must end bit-identical to each other and
// equal (kSameTraining relative, see below) to one rank training with the same global batch and
// seed; the same with a fine-tuning stage's hooks (custom loss, extra parameters, after_step); and
// a checkpoint of a two-rank run resumes in one rank. Plus the world resolution from
// flags/environment. A build without c10d/Gloo skips the data-parallel runs and checks that a
// larger world is refused.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include "core/error.h"
#include "data/dataset.h"
#include "io/presets.h"
#include "test_util.h"
#include "train/distributed/communicator.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/world.h"
#include "train/torch_env.h"
#include "train/train_fixtures.h"
#include "train/trainer.h"

namespace vitopt::train {
namespace {

// Two runs of the same training that differ only in float summation order (here: 1 vs 2 GEMM
// threads in one process) end 2.9e-4 apart (relative weight norm) after these 8 AdamW steps:
// Adam normalises each update, so rounding in near-zero gradients becomes full-size steps. A real
// data-parallel fault (a wrong shard, a missing or doubled gradient, no broadcast) moves the
// weights by O(1) (training moves them by 1.0 relative here), so the bar sits between the two.
constexpr double kSameTraining = 3e-3;

using dist::DistFlags;
using dist::Role;

// A port the kernel just handed out (free at that moment): parallel ctest runs do not collide.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

using testing::synthetic;
using testing::tiny_model;

TrainOptions options_in(const std::filesystem::path& out) {
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 16;  // global: 8 per rank with two ranks
  o.lr = 2e-3;
  o.warmup_epochs = 0.5;
  o.crop_padding = 2;  // augmentation on: its randomness must follow the sample, not the rank
  o.hflip = true;
  o.workers = 1;
  o.seed = 7;
  o.quiet = true;
  o.out_dir = out;
  return o;
}

std::map<std::string, torch::Tensor> weights(model::ViT& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m->named_parameters(true)) out[p.key()] = p.value().detach().clone();
  return out;
}

// Largest per-tensor relative difference ||a - b|| / ||b||.
double max_relative_diff(const std::map<std::string, torch::Tensor>& a,
                         const std::map<std::string, torch::Tensor>& b) {
  double worst = 0;
  for (const auto& [name, t] : b) {
    const double denom = std::max(t.norm().item<double>(), 1e-12);
    worst = std::max(worst, (a.at(name) - t).norm().item<double>() / denom);
  }
  return worst;
}

bool identical(const std::map<std::string, torch::Tensor>& a,
               const std::map<std::string, torch::Tensor>& b) {
  for (const auto& [name, t] : a)
    if (!torch::equal(t, b.at(name))) return false;
  return true;
}

// Runs `body(rank, comm)` for ranks 0..world-1 on threads, each with its own process group.
template <typename Body>
void run_ranks(int world, Body body, double timeout_s = 60) {
  const int port = free_port();
  std::vector<std::future<void>> ranks;
  for (int r = 0; r < world; ++r) {
    ranks.push_back(std::async(std::launch::async, [=] {
      dist::WorldSpec w;
      w.rank = r;
      w.world_size = world;
      w.local_rank = r;
      w.local_world_size = world;
      w.master_addr = "127.0.0.1";
      w.master_port = port;
      w.timeout_s = timeout_s;
      auto comm = dist::connect(w);
      body(r, *comm);
    }));
  }
  for (auto& f : ranks) f.get();  // rethrows a rank's failure
}

TEST(DataParallel, TwoRanksEqualOneRankWithTheSameGlobalBatch) {
  if (!dist::available()) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto train_set = synthetic(64, 1);  // 4 global steps per epoch
  auto val_set = synthetic(31, 2);    // odd: the ranks' evaluation shards differ in size

  auto single = tiny_model(5);
  const auto one = train_model(single, train_set, val_set, options_in(tmp / "single"));
  ASSERT_TRUE(one.completed);

  std::vector<model::ViT> models = {tiny_model(5), tiny_model(99)};  // rank 1 starts elsewhere:
  std::vector<TrainResult> results(2);                               // the broadcast must fix it
  run_ranks(2, [&](int r, dist::Communicator& comm) {
    auto o = options_in(tmp / (r == 0 ? "dist" : "dist-rank1"));
    o.communicator = &comm;
    results[static_cast<size_t>(r)] =
        train_model(models[static_cast<size_t>(r)], train_set, val_set, o);
  });
  const auto w0 = weights(models[0]), w1 = weights(models[1]), ws = weights(single);
  EXPECT_TRUE(identical(w0, w1)) << "the ranks must hold bit-identical weights";
  EXPECT_LE(max_relative_diff(w0, ws), kSameTraining);
  auto initial = tiny_model(5);
  EXPECT_GT(max_relative_diff(weights(initial), ws), 10 * kSameTraining)
      << "training must have moved the weights for the comparison to mean anything";
  // Whole-world statistics: the same validation figures and training loss as one process.
  ASSERT_EQ(results[0].history.size(), one.history.size());
  for (size_t e = 0; e < one.history.size(); ++e) {
    EXPECT_NEAR(results[0].history[e]["val_top1"].get<double>(),
                one.history[e]["val_top1"].get<double>(), 1.5 / 31);  // one flip
    EXPECT_NEAR(results[1].history[e]["val_loss"].get<double>(),
                one.history[e]["val_loss"].get<double>(), 1e-3);
    EXPECT_NEAR(results[0].history[e]["train_loss"].get<double>(),
                one.history[e]["train_loss"].get<double>(), 1e-3);
    EXPECT_EQ(results[0].history[e]["world_size"], 2);
  }
  // Only rank 0 writes.
  EXPECT_TRUE(std::filesystem::exists(tmp / "dist" / "model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "dist" / "checkpoint.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "dist-rank1"));
}

// One step at the bar: the gradient two ranks average from their halves of a batch equals
// the gradient one process takes on the whole batch to 1e-5 relative (float rounding only), and a
// plain gradient step from it leaves both ranks bit-identical and within 1e-5 of the single
// process. (Whole AdamW runs then drift apart by rounding alone: kSameTraining above.)
TEST(DataParallel, AveragedGradientEqualsTheFullBatchGradient) {
  if (!dist::available()) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  configure_threads(1);
  torch::manual_seed(21);
  const auto x = torch::randn({16, 1, 28, 28});  // (B, C, H, W)
  const auto y = torch::randint(0, 10, {16}, torch::kLong);
  constexpr double kLr = 0.5;
  auto step = [&](model::ViT& m, const torch::Tensor& xs, const torch::Tensor& ys,
                  dist::Communicator* comm) {
    m->eval();  // no stochastic layer: the halves see exactly what the whole batch sees
    std::vector<torch::Tensor> params = m->parameters();
    std::unique_ptr<dist::GradientSync> sync;
    if (comm) sync = std::make_unique<dist::GradientSync>(*comm, params, 64 << 10);  // 2+ buckets
    torch::nn::functional::cross_entropy(m->forward(xs), ys).backward();
    if (sync) sync->finish();
    std::map<std::string, torch::Tensor> grads;
    for (const auto& p : m->named_parameters(true)) grads[p.key()] = p.value().grad().clone();
    torch::NoGradGuard no_grad;
    for (auto& p : params) p.sub_(kLr * p.grad());
    return grads;
  };
  auto single = tiny_model(8);
  const auto g_single = step(single, x, y, nullptr);
  std::vector<model::ViT> models = {tiny_model(8), tiny_model(8)};
  std::vector<std::map<std::string, torch::Tensor>> g(2);
  run_ranks(2, [&](int r, dist::Communicator& comm) {
    const auto half = torch::indexing::Slice(8 * r, 8 * (r + 1));
    g[static_cast<size_t>(r)] =
        step(models[static_cast<size_t>(r)], x.index({half}), y.index({half}), &comm);
  });
  EXPECT_TRUE(identical(g[0], g[1]));
  EXPECT_LE(max_relative_diff(g[0], g_single), 1e-5);
  EXPECT_TRUE(identical(weights(models[0]), weights(models[1])));
  EXPECT_LE(max_relative_diff(weights(models[0]), weights(single)), 1e-5);
  // The halves alone give other gradients: the comparison can fail.
  auto lone = tiny_model(8);
  EXPECT_GT(max_relative_diff(step(lone, x.slice(0, 0, 8), y.slice(0, 0, 8), nullptr), g_single),
            1e-2);
}

TEST(DataParallel, FineTuningHooksAgreeWithOneRank) {
  if (!dist::available()) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  // What prune fine-tuning, QAT and distillation plug in: a custom loss, an extra trained
  // parameter (like an LSQ step size) and an after_step hook (like re-applied pruning masks).
  configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto train_set = synthetic(48, 3);
  auto stage = [&](model::ViT& m, const std::filesystem::path& out, dist::Communicator* comm) {
    auto o = options_in(out);
    o.epochs = 1;
    o.communicator = comm;
    auto temperature = torch::ones({}, torch::requires_grad());  // extra parameter
    o.extra_parameters = {{"temperature", temperature}};
    o.loss = [temperature](model::ViT& model, const torch::Tensor& x, const torch::Tensor& y,
                           torch::Tensor& logits) {
      logits = model->forward(x);  // (B, classes)
      return torch::nn::functional::cross_entropy(logits / temperature, y);
    };
    o.after_step = [](model::ViT& model, int64_t) {  // keep the first head row pruned
      torch::NoGradGuard no_grad;
      model->named_parameters(true)["head.weight"][0].zero_();
    };
    train_model(m, train_set, nullptr, o);
    return temperature.detach().clone();
  };
  auto single = tiny_model(11);
  const auto t_single = stage(single, tmp / "single", nullptr);
  std::vector<model::ViT> models = {tiny_model(11), tiny_model(11)};
  std::vector<torch::Tensor> temps(2);
  run_ranks(2, [&](int r, dist::Communicator& comm) {
    temps[static_cast<size_t>(r)] =
        stage(models[static_cast<size_t>(r)], tmp / ("d" + std::to_string(r)), &comm);
  });
  EXPECT_TRUE(identical(weights(models[0]), weights(models[1])));
  EXPECT_TRUE(torch::equal(temps[0], temps[1]));
  EXPECT_LE(max_relative_diff(weights(models[0]), weights(single)), kSameTraining);
  EXPECT_NEAR(temps[0].item<double>(), t_single.item<double>(), 1e-3);
  EXPECT_NE(t_single.item<double>(), 1.0);  // the extra parameter was trained
  EXPECT_EQ(weights(models[0])["head.weight"][0].abs().sum().item<double>(), 0.0);
}

TEST(DataParallel, TwoRankCheckpointResumesInOneRank) {
  if (!dist::available()) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto train_set = synthetic(64, 1);
  auto straight = tiny_model(5);
  train_model(straight, train_set, nullptr, options_in(tmp / "straight"));

  // Two ranks stop after 3 global steps (mid-epoch 1); one rank finishes from the checkpoint.
  std::vector<model::ViT> models = {tiny_model(5), tiny_model(5)};
  run_ranks(2, [&](int r, dist::Communicator& comm) {
    auto o = options_in(tmp / (r == 0 ? "run" : "unused"));
    o.communicator = &comm;
    o.stop_after_steps = 3;
    EXPECT_FALSE(train_model(models[static_cast<size_t>(r)], train_set, nullptr, o).completed);
  });
  auto resumed = tiny_model(123);  // weights come from the checkpoint
  auto o = options_in(tmp / "run");
  o.resume = true;
  ASSERT_TRUE(train_model(resumed, train_set, nullptr, o).completed);
  EXPECT_LE(max_relative_diff(weights(resumed), weights(straight)), kSameTraining);
}

TEST(DataParallel, BatchThatDoesNotSplitIsAnInputError) {
  if (!dist::available()) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  configure_threads(1);
  vitopt::testing::TempDir tmp;
  auto train_set = synthetic(30, 1);
  std::vector<model::ViT> models = {tiny_model(1), tiny_model(1)};
  run_ranks(2, [&](int r, dist::Communicator& comm) {
    auto o = options_in(tmp / std::to_string(r));
    o.batch_size = 15;
    o.communicator = &comm;
    EXPECT_THROW(train_model(models[static_cast<size_t>(r)], train_set, nullptr, o),
                 core::InputError);
  });
}

// Work only rank 0 does (a circuit discovery, the search's evolution) may last longer than the
// collective timeout: the other rank waits for its result as long as rank 0's heartbeat goes on,
// gets rank 0's error when it fails, and each call has its own result.
TEST(DataParallel, RankZerosLongWorkReachesTheOthersPastTheTimeout) {
  if (!dist::available()) GTEST_SKIP() << "built without c10d/Gloo (libgloo-dev)";
  std::vector<std::vector<std::string>> got(2);
  std::vector<std::string> errors(2);
  run_ranks(
      2,
      [&](int r, dist::Communicator& comm) {
        auto& mine = got[static_cast<size_t>(r)];
        mine.push_back(comm.result_of_root(
            [] {
              std::this_thread::sleep_for(std::chrono::milliseconds(3000));  // > 2 s timeout
              return std::string("first answer");
            },
            "a long computation"));
        mine.push_back(comm.result_of_root([] { return std::string(); }, "an empty one"));
        try {
          comm.result_of_root([]() -> std::string { core::throw_input("no such layer 'x'"); },
                              "a failing computation");
        } catch (const core::Error& e) {
          errors[static_cast<size_t>(r)] = e.what();
        }
        mine.push_back(comm.result_of_root([] { return std::string("after"); }, "the next"));
      },
      /*timeout_s=*/2);
  const std::vector<std::string> expected = {"first answer", "", "after"};
  EXPECT_EQ(got[0], expected);
  EXPECT_EQ(got[1], expected);
  EXPECT_NE(errors[0].find("no such layer 'x'"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("a failing computation failed on rank 0"), std::string::npos)
      << errors[1];
  EXPECT_NE(errors[1].find("no such layer 'x'"), std::string::npos) << errors[1];
  // A world of one computes in place.
  EXPECT_EQ(dist::result_of_root([] { return std::string("here"); }, "alone"), "here");
}

TEST(DataParallel, BuildWithoutGlooRefusesALargerWorld) {
  if (dist::available()) GTEST_SKIP() << "this build has c10d/Gloo";
  dist::WorldSpec w;
  w.rank = 0;
  w.world_size = 2;
  w.master_port = free_port();
  vitopt::testing::expect_input_error([&] { dist::connect(w); }, {"unavailable", "libgloo-dev"});
  vitopt::testing::expect_input_error([&] { dist::init_process_group(w); }, {"rank 0 of 2"});
  EXPECT_EQ(dist::current(), nullptr);
  EXPECT_EQ(dist::process_world().world_size, 1) << "a failed start leaves a world of one";
  dist::init_process_group(dist::WorldSpec{});  // a world of one needs no Gloo
  EXPECT_TRUE(dist::is_root());
}

dist::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(World, TorchrunEnvironmentMakesAWorker) {
  const auto r = dist::resolve_world({}, env_of({{"WORLD_SIZE", "4"},
                                                 {"RANK", "3"},
                                                 {"LOCAL_RANK", "1"},
                                                 {"LOCAL_WORLD_SIZE", "2"},
                                                 {"MASTER_ADDR", "10.0.0.7"},
                                                 {"MASTER_PORT", "23456"}}));
  EXPECT_EQ(r.role, Role::Worker);
  EXPECT_EQ(r.world.rank, 3);
  EXPECT_EQ(r.world.world_size, 4);
  EXPECT_EQ(r.world.local_rank, 1);
  EXPECT_EQ(r.world.nnodes, 2);
  EXPECT_EQ(r.world.master_addr, "10.0.0.7");
  EXPECT_EQ(r.world.master_port, 23456);
  EXPECT_EQ(r.world.timeout_s, dist::kDefaultTimeoutS);
}

TEST(World, FlagsWithoutEnvironmentMakeALauncher) {
  DistFlags f;
  f.nnodes = 2;
  f.node_rank = 1;
  f.nproc_per_node = 3;
  f.master = "host.example:1234";
  f.timeout_s = 20;
  const auto r = dist::resolve_world(f, env_of({}));
  EXPECT_EQ(r.role, Role::Launcher);
  EXPECT_EQ(r.world.world_size, 6);
  EXPECT_EQ(r.world.local_world_size, 3);
  EXPECT_EQ(r.world.node_rank, 1);
  EXPECT_EQ(r.world.master_addr, "host.example");
  EXPECT_EQ(r.world.master_port, 1234);
  EXPECT_EQ(r.world.timeout_s, 20);
  EXPECT_EQ(dist::resolve_world({}, env_of({})).role, Role::Single);
}

TEST(World, ContradictionsAndBadValuesAreInputErrors) {
  DistFlags f;
  f.nproc_per_node = 3;
  EXPECT_THROW(dist::resolve_world(f, env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}})),
               core::InputError);
  EXPECT_THROW(dist::resolve_world({}, env_of({{"WORLD_SIZE", "2"}})), core::InputError);
  EXPECT_THROW(dist::resolve_world({}, env_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}})),
               core::InputError);
  DistFlags bad_rank;
  bad_rank.nnodes = 2;
  bad_rank.node_rank = 2;
  EXPECT_THROW(dist::resolve_world(bad_rank, env_of({})), core::InputError);
  EXPECT_THROW(dist::parse_host_port("nohost", "--master"), core::InputError);
  EXPECT_THROW(dist::parse_host_port("h:70000", "--master"), core::InputError);
  EXPECT_EQ(dist::parse_host_port("[::1]:29500", "--master").first, "::1");
}

}  // namespace
}  // namespace vitopt::train
