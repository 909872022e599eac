// RuntimeEngine: eval::Engine over runtime::Engine. Both read the header through
// io::read_model_header with the same import hints (--heads reaches the runtime's loader;
// --mean/--std only change the evaluator's normalization), so they see the same config.
#include "eval/runtime_engine.h"

#include "core/error.h"
#include "io/metadata_keys.h"
#include "io/safetensors.h"
#include "io/model_header.h"
#include "vitopt/runtime.h"

namespace vitopt::eval {

namespace {

class RuntimeEngine : public Engine {
 public:
  RuntimeEngine(const std::filesystem::path& file, const EngineOptions& o) {
    if (o.device != "cpu")
      core::throw_input("--device {}: the runtime engine runs on the CPU only (use --engine torch)",
                        o.device);
    const auto st = io::SafeTensorsFile::load(file);
    io::ImportHints hints;
    hints.num_heads = o.import_heads;
    if (!o.import_mean.empty()) hints.mean = o.import_mean;
    if (!o.import_std.empty()) hints.std = o.import_std;
    hints.merge_r = o.merge_r;
    config_ = io::read_model_header(st, hints).config;
    nonzero_ = count_nonzero_fp32(st);
    runtime::RuntimeOptions ro;
    ro.threads = o.threads;
    ro.import_heads = o.import_heads.value_or(0);
    ro.merge_r = o.merge_r.value_or("");
    engine_ = runtime::Engine::load(file, ro);
    const auto& info = engine_->info();
    if (info.image_size != config_.image_size || info.in_channels != config_.in_channels ||
        info.num_classes != config_.num_classes)
      core::throw_input("{}: the runtime reads the model as {}x{}x{} with {} classes, the config "
                        "says {}x{}x{} with {}",
                        file.string(), info.image_size, info.image_size, info.in_channels,
                        info.num_classes, config_.image_size, config_.image_size,
                        config_.in_channels, config_.num_classes);
  }

  std::string name() const override { return "runtime"; }
  const io::ViTConfig& config() const override { return config_; }

  void run(const float* images, int64_t batch, float* logits) override {
    engine_->run(images, static_cast<int>(batch), logits);
  }

  std::optional<int64_t> nonzero_params() const override { return nonzero_; }

  // The runtime's own buffers (packed weights + activation plans for the batch sizes run): what a
  // deployment of this model needs, without LibTorch's and the evaluator's memory around it.
  std::optional<int64_t> allocator_peak_bytes(std::string* why) const override {
    if (why != nullptr) *why = "runtime buffers (packed weights + activation plans), exact";
    return static_cast<int64_t>(runtime::peak_allocated_bytes());
  }
  void reset_allocator_peak() override { runtime::reset_peak_allocated_bytes(); }

 private:
  // Non-zero parameters of an fp32 file (every tensor is a parameter); quantized files store
  // integers whose zero depends on the zero-point, so they report none rather than a guess.
  static std::optional<int64_t> count_nonzero_fp32(const io::SafeTensorsFile& st) {
    if (st.metadata().count(io::kQuantKey)) return std::nullopt;
    int64_t n = 0;
    for (const auto& name : st.names()) {
      if (st.info(name).dtype != io::DType::F32) return std::nullopt;
      for (float v : st.read_f32(name)) n += v != 0.0f;  // a copy: the data may be unaligned
    }
    return n;
  }

  io::ViTConfig config_;
  std::optional<int64_t> nonzero_;
  std::unique_ptr<runtime::Engine> engine_;
};

}  // namespace

std::unique_ptr<Engine> make_runtime_engine(const std::filesystem::path& model_file,
                                            const EngineOptions& options) {
  return std::make_unique<RuntimeEngine>(model_file, options);
}

}  // namespace vitopt::eval
