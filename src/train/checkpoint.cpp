#include "train/checkpoint.h"

#include "core/error.h"
#include "core/json_util.h"
#include "export/model_writer.h"
#include "io/metadata_keys.h"
#include "io/safetensors.h"
#include "io/vit_config.h"
#include "model/model_file.h"

namespace vitopt::train {

namespace {
constexpr const char* kStateKey = "vitopt.trainer_state";

void add_f32(io::SafeTensorsWriter& w, const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  w.add(name, io::DType::F32, c.sizes().vec(), c.data_ptr<float>(),
        static_cast<size_t>(c.numel()) * sizeof(float));
}
}  // namespace

nlohmann::json trainer_state_json(const TrainerState& state) {
  // "batch" counts global batches (--batch-size samples each, whatever the world size), so a
  // checkpoint resumes at the same sample with any number of processes; "samples" says so.
  return {{"epoch", state.epoch},
          {"batch", state.batch},
          {"global_step", state.global_step},
          {"best_top1", state.best_top1},
          {"best_epoch", state.best_epoch},
          {"history", state.history},
          {"fingerprint", state.fingerprint},
          {"epoch_loss_sum", state.epoch_loss_sum},
          {"epoch_correct", state.epoch_correct},
          {"epoch_seen", state.epoch_seen},
          {"samples", state.batch * state.fingerprint.value("batch_size", int64_t{0})}};
}

TrainerState trainer_state_from_json(const nlohmann::json& s, const std::string& source) {
  TrainerState state;
  state.epoch = core::json_get<int>(s, "epoch", source);
  state.batch = core::json_get<int64_t>(s, "batch", source);
  state.global_step = core::json_get<int64_t>(s, "global_step", source);
  state.best_top1 = core::json_get<double>(s, "best_top1", source);
  state.best_epoch = core::json_get<int>(s, "best_epoch", source);
  state.history = s.value("history", nlohmann::json::array());
  state.epoch_loss_sum = s.value("epoch_loss_sum", 0.0);  // absent in older checkpoints
  state.epoch_correct = s.value("epoch_correct", int64_t{0});
  state.epoch_seen = s.value("epoch_seen", int64_t{0});
  state.fingerprint = s.value("fingerprint", nlohmann::json::object());
  return state;
}

void save_checkpoint(const std::filesystem::path& path, model::ViT& model, const AdamW& optimizer,
                     const TrainerState& state) {
  io::SafeTensorsWriter w;
  exporter::add_model_tensors(model, w, "model.");
  for (const auto& [name, t] : optimizer.state()) add_f32(w, "optim." + name, t);
  nlohmann::json s = trainer_state_json(state);
  s["optimizer_step"] = optimizer.step_count();
  w.set_metadata(kStateKey, s.dump());
  w.set_metadata(io::kConfigKey, model->config().to_json().dump());
  w.set_metadata(io::kFormatVersionKey, std::to_string(io::kFormatVersion));
  w.write(path);
}

TrainerState load_checkpoint(const std::filesystem::path& path, model::ViT& model,
                             AdamW& optimizer, const nlohmann::json& expected_fingerprint) {
  const auto file = io::SafeTensorsFile::load(path);
  const std::string source = path.string();
  const std::string* raw = file.metadata_value(kStateKey);
  if (raw == nullptr)
    core::throw_input("{}: not a vitopt training checkpoint (no '{}' metadata)", source, kStateKey);
  const auto s = core::json_parse(*raw, source + " " + kStateKey);
  TrainerState state = trainer_state_from_json(s, source);
  // The model is compared as a config, not as text: a checkpoint written by an older version
  // spells the same architecture with older fields (e.g. "shared_with": -1) and still resumes.
  if (state.fingerprint.contains("model"))
    state.fingerprint["model"] =
        io::ViTConfig::from_json(state.fingerprint["model"], source + " fingerprint.model")
            .to_json();
  for (const auto& [key, value] : expected_fingerprint.items()) {
    if (!state.fingerprint.contains(key) || state.fingerprint[key] != value)
      core::throw_input(
          "{}: cannot resume: option '{}' was {} when the checkpoint was made, now {}; use the "
          "same options or start a new run folder",
          source, key, state.fingerprint.contains(key) ? state.fingerprint[key].dump() : "unset",
          value.dump());
  }
  model::load_model_tensors(model, file, "model.");
  std::map<std::string, torch::Tensor> optim_state;
  for (const auto& name : file.names()) {
    if (name.rfind("optim.", 0) != 0) continue;
    const auto& info = file.info(name);
    auto values = file.read_f32(name);
    optim_state[name.substr(6)] =
        torch::from_blob(values.data(), info.shape, torch::kFloat32).clone();
  }
  optimizer.load_state(optim_state, core::json_get<int64_t>(s, "optimizer_step", source), source);
  return state;
}

}  // namespace vitopt::train
