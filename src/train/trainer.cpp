#include "train/trainer.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "model/model_file.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data_bridge.h"
#include "train/distributed/data_parallel.h"
#include "train/evaluate.h"
#include "train/torch_env.h"

namespace vitopt::train {

namespace {

namespace F = torch::nn::functional;

void validate_options(const TrainOptions& o) {
  if (o.epochs < 1) core::throw_input("--epochs: expected >= 1, got {}", o.epochs);
  if (o.batch_size < 1) core::throw_input("--batch-size: expected >= 1, got {}", o.batch_size);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) core::throw_input("--lr: expected > 0, got {}", o.lr);
  if (o.weight_decay < 0) core::throw_input("--wd: expected >= 0, got {}", o.weight_decay);
  if (o.label_smoothing < 0 || o.label_smoothing >= 1)
    core::throw_input("--label-smoothing: expected in [0, 1), got {}", o.label_smoothing);
  if (o.grad_clip < 0) core::throw_input("--clip: expected >= 0, got {}", o.grad_clip);
  if (o.warmup_epochs < 0) core::throw_input("--warmup-epochs: expected >= 0, got {}", o.warmup_epochs);
  if (o.out_dir.empty()) core::throw_internal("train_model: out_dir not set");
}

// Options that must be identical for a resumed run to continue the same trajectory.
nlohmann::json fingerprint(const TrainOptions& o, const io::ViTConfig& c, size_t train_size) {
  return {{"epochs", o.epochs},           {"batch_size", o.batch_size},
          {"lr", o.lr},                   {"min_lr", o.min_lr},
          {"weight_decay", o.weight_decay}, {"warmup_epochs", o.warmup_epochs},
          {"label_smoothing", o.label_smoothing}, {"grad_clip", o.grad_clip},
          {"crop_padding", o.crop_padding}, {"hflip", o.hflip},
          {"seed", o.seed},               {"train_size", train_size},
          {"model", c.to_json()}};
}

void write_metrics_log(const std::filesystem::path& path, const nlohmann::json& history) {
  std::string text;
  for (const auto& rec : history) text += rec.dump() + "\n";
  core::write_file_atomic(path, text);
}

}  // namespace

TrainResult train_model(model::ViT& model, std::shared_ptr<const data::Dataset> train_set,
                        std::shared_ptr<const data::Dataset> val_set, const TrainOptions& in) {
  validate_options(in);
  // Data parallelism (a no-op in a world of one): every rank trains on its shard of each global
  // batch of --batch-size samples; only rank 0 writes files or prints progress.
  dist::DataParallel dp(in.communicator != nullptr ? in.communicator : dist::current());
  const bool root = dp.root();
  TrainOptions options = in;
  if (!root) options.quiet = true;
  if (options.batch_size % dp.world_size() != 0)
    core::throw_input(
        "--batch-size {}: the global batch must split evenly over {} processes "
        "(each trains on batch-size / processes images a step)",
        options.batch_size, dp.world_size());
  const auto& config = model->config();
  check_dataset_fits(*train_set, config);
  const torch::Device device = parse_device(options.device);
  model->to(device);
  if (root) std::filesystem::create_directories(options.out_dir);
  const auto ckpt_path = options.out_dir / "checkpoint.safetensors";
  const auto best_path = options.out_dir / "best.safetensors";
  const auto final_path = options.out_dir / "model.safetensors";
  const auto metrics_path = options.out_dir / "metrics.jsonl";

  data::LoaderOptions lopts;
  lopts.batch_size = options.batch_size;
  lopts.shuffle = true;
  lopts.drop_last = true;  // equal-sized steps keep the schedule and BatchNorm-free stats simple
  lopts.seed = options.seed;
  lopts.workers = options.workers;
  lopts.transform = train_transform(config, options.crop_padding, options.hflip);
  lopts.shard = dp.rank();
  lopts.shards = dp.world_size();
  data::DataLoader train_loader(train_set, lopts);
  const int64_t steps_per_epoch = train_loader.batches_per_epoch();
  if (steps_per_epoch < 1)
    core::throw_input("{}: {} images is less than one batch of {}", train_set->description(),
                      train_set->size(), options.batch_size);

  std::unique_ptr<data::DataLoader> val_loader;
  if (val_set) {
    data::LoaderOptions vopts;
    vopts.batch_size = options.eval_batch_size;
    vopts.workers = options.workers;
    vopts.transform = eval_transform(config);
    val_loader = std::make_unique<data::DataLoader>(dp.eval_shard(val_set), vopts);
  }

  AdamWOptions aopts;
  aopts.lr = options.lr;
  aopts.weight_decay = options.weight_decay;
  auto named_params = model->named_parameters(/*recurse=*/true).pairs();
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& [name, tensor] : options.extra_parameters) {
    named_params.emplace_back("extra." + name, tensor);
    params.push_back(tensor);
  }
  if (options.resume && !options.extra_parameters.empty())
    core::throw_input("--resume: this run trains extra parameters ({}, ...) that checkpoints do "
                      "not hold; start it again without --resume",
                      options.extra_parameters.front().first);
  AdamW optimizer(named_params, aopts);

  const auto fp = fingerprint(options, config, train_set->size());
  TrainerState state;
  state.fingerprint = fp;
  if (options.resume && root) {  // other ranks get the checkpoint's contents from rank 0
    if (!std::filesystem::exists(ckpt_path))
      core::throw_input("--resume: no checkpoint at {} (run without --resume to start fresh)",
                        ckpt_path.string());
    state = load_checkpoint(ckpt_path, model, optimizer, fp);
    if (!options.quiet)
      fmt::print(stderr, "resuming from {}: epoch {}, batch {}, step {}\n", ckpt_path.string(),
                 state.epoch + 1, state.batch, state.global_step);
  }
  std::vector<torch::Tensor> extra_tensors;
  for (const auto& item : options.extra_parameters) extra_tensors.push_back(item.second);
  dp.sync_start(model, extra_tensors, optimizer, state, options.resume);
  const auto grad_sync = dp.gradient_sync(params);
  if (root) {
    auto config_record = fp;
    config_record["world_size"] = dp.world_size();  // informative: not part of the fingerprint
    core::write_file_atomic(options.out_dir / "train_config.json", config_record.dump(2) + "\n");
  }

  const int64_t total_steps = steps_per_epoch * options.epochs;
  const auto warmup_steps =
      static_cast<int64_t>(std::llround(options.warmup_epochs * static_cast<double>(steps_per_epoch)));
  const auto ce_opts = F::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing);
  TrainResult result;
  int64_t steps_this_run = 0;
  // Saved with every model so `vitopt infer` can print class names.
  const std::map<std::string, std::string> names_meta = {
      {io::kClassNamesKey, nlohmann::json(train_set->class_names()).dump()}};

  for (int epoch = state.epoch; epoch < options.epochs; ++epoch) {
    model->train();
    train_loader.start_epoch(epoch);
    core::ProgressOptions popts;
    popts.quiet = options.quiet;
    core::Progress progress(fmt::format("epoch {}/{}", epoch + 1, options.epochs),
                            steps_per_epoch, popts);
    core::Stopwatch clock;
    // Running sums for this epoch, restored on mid-epoch resume (zero at an epoch start).
    // The saved running sums are rank 0's own; with several ranks a resumed epoch's train_loss /
    // train_top1 count only the batches after the resume (validation figures are unaffected).
    const bool restore_sums = state.batch > 0 && dp.world_size() == 1;
    double loss_sum = restore_sums ? state.epoch_loss_sum : 0.0;
    int64_t correct = restore_sums ? state.epoch_correct : 0;
    int64_t seen = restore_sums ? state.epoch_seen : 0;
    data::Batch batch;
    int64_t b = 0;
    for (; b < state.batch; ++b)  // mid-epoch resume: skip batches already trained on
      if (!train_loader.next(batch)) break;
    while (train_loader.next(batch)) {
      const double lr =
          warmup_cosine_lr(state.global_step, warmup_steps, total_steps, options.lr, options.min_lr);
      optimizer.set_lr(lr);
      auto x = batch_images(batch, device);
      auto y = batch_labels(batch, device);
      torch::Tensor logits;  // (B, classes)
      torch::Tensor loss;
      if (options.on_batch) options.on_batch(batch);
      if (options.loss) {
        loss = options.loss(model, x, y, logits);
      } else {
        logits = model->forward(x);
        loss = F::cross_entropy(logits, y, ce_opts);
      }
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value))
        core::throw_input(
            "training diverged: loss is {} at epoch {} step {} (lr {:.3g}); the last good "
            "checkpoint is kept at {}; lower --lr or raise --clip and --resume",
            loss_value, epoch + 1, b + 1, lr, ckpt_path.string());
      optimizer.zero_grad();
      loss.backward();
      if (grad_sync) grad_sync->finish();  // gradients averaged over the ranks
      if (options.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, options.grad_clip);
      optimizer.step();
      ++state.global_step;
      if (options.after_step) options.after_step(model, state.global_step);
      ++b;
      ++steps_this_run;
      loss_sum += loss_value * static_cast<double>(batch.size);
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      seen += batch.size;
      progress.update(
          b, seen * dp.world_size(),  // images the whole world trained on
          fmt::format("loss {:.4f} acc {:.2f}% lr {:.2e}", loss_sum / static_cast<double>(seen),
                      100.0 * static_cast<double>(correct) / static_cast<double>(seen), lr));
      const bool stop_now = options.stop_after_steps > 0 && steps_this_run >= options.stop_after_steps;
      if ((options.checkpoint_every_steps > 0 && b % options.checkpoint_every_steps == 0) || stop_now) {
        state.epoch = epoch;
        state.batch = b;
        state.epoch_loss_sum = loss_sum;
        state.epoch_correct = correct;
        state.epoch_seen = seen;
        if (root) save_checkpoint(ckpt_path, model, optimizer, state);
      }
      if (stop_now) {
        dp.barrier();  // the checkpoint exists before any rank reports the stop
        progress.finish("stopped early (checkpoint saved)");
        result.history = state.history;
        result.best_top1 = state.best_top1;
        result.best_epoch = state.best_epoch;
        return result;
      }
    }
    // Whole-world figures for the record: sums over the ranks' shards.
    std::vector<double> sums = {loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
    dp.sum(sums);
    loss_sum = sums[0];
    correct = static_cast<int64_t>(std::llround(sums[1]));
    seen = static_cast<int64_t>(std::llround(sums[2]));
    const double train_seconds = clock.seconds();
    nlohmann::json rec = {
        {"epoch", epoch + 1},
        {"train_loss", seen ? loss_sum / static_cast<double>(seen) : 0.0},
        {"train_top1", seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0},
        // The schedule's rate at the epoch's last step (not optimizer state: a run resumed from
        // a checkpoint taken after that step trains no batch of the epoch and never sets it).
        {"lr", warmup_cosine_lr(std::max<int64_t>(state.global_step - 1, 0), warmup_steps,
                                total_steps, options.lr, options.min_lr)},
        {"train_seconds", train_seconds},
        {"train_images_per_s", static_cast<double>(seen) / std::max(train_seconds, 1e-9)},
        {"step", state.global_step},
        {"world_size", dp.world_size()}};
    progress.finish(fmt::format("train loss {:.4f} acc {:.2f}% ({:.0f} img/s)",
                                rec["train_loss"].get<double>(), 100 * rec["train_top1"].get<double>(),
                                rec["train_images_per_s"].get<double>()));
    double top1 = rec["train_top1"].get<double>();
    if (val_loader) {
      EvalOptions eopts;
      eopts.device = device;
      eopts.quiet = options.quiet;
      eopts.label = "  validate";
      auto ev = evaluate(model, *val_loader, eopts);
      dp.reduce_eval(ev);  // every rank gets the same figures, so they agree on the best epoch
      rec["val_top1"] = ev.top1;
      rec["val_top5"] = ev.top5;
      rec["val_loss"] = ev.loss;
      top1 = ev.top1;
    }
    state.history.push_back(rec);
    if (top1 > state.best_top1) {
      state.best_top1 = top1;
      state.best_epoch = epoch + 1;
      auto meta = names_meta;
      meta["vitopt.train_epoch"] = std::to_string(epoch + 1);
      if (root) exporter::save_model(model, best_path, meta);
    }
    state.epoch = epoch + 1;
    state.batch = 0;
    state.epoch_loss_sum = 0;
    state.epoch_correct = state.epoch_seen = 0;
    if (root) {
      // Log before checkpoint: a kill between the two reruns this epoch and rewrites the log.
      write_metrics_log(metrics_path, state.history);
      save_checkpoint(ckpt_path, model, optimizer, state);
    }
    if (options.on_epoch) options.on_epoch(epoch, rec);
  }
  if (root) {
    write_metrics_log(metrics_path, state.history);  // complete even if the last run was killed
    exporter::save_model(model, final_path, names_meta);
  }
  dp.verify_same_weights(model, extra_tensors);  // also a barrier: rank 0's files exist now
  result.history = state.history;
  result.best_top1 = state.best_top1;
  result.best_epoch = state.best_epoch;
  result.final_top1 = state.history.empty() ? 0.0
                      : state.history.back().value("val_top1", state.history.back()["train_top1"].get<double>());
  result.completed = true;
  result.best_model = best_path;
  result.final_model = final_path;
  return result;
}

}  // namespace vitopt::train
