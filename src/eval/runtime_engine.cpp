// RuntimeEngine: eval::Engine over runtime::Engine. Import hints that only change the evaluator's
// normalization (--mean/--std) apply as with LibTorch; a heads hint cannot reach the runtime's
// loader (it infers heads as C/64 for timm files without vitopt metadata), so a disagreeing one is
// refused rather than silently ignored.
#include "eval/runtime_engine.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "model/model_file.h"
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
    model::ImportHints hints;
    hints.num_heads = o.import_heads;
    if (!o.import_mean.empty()) hints.mean = o.import_mean;
    if (!o.import_std.empty()) hints.std = o.import_std;
    config_ = model::config_from_file(st, hints);
    nonzero_ = count_nonzero_fp32(st);
    runtime::RuntimeOptions ro;
    ro.threads = o.threads;
    engine_ = runtime::Engine::load(file, ro);
    const auto& info = engine_->info();
    if (info.image_size != config_.image_size || info.in_channels != config_.in_channels ||
        info.num_classes != config_.num_classes)
      core::throw_input("{}: the runtime reads the model as {}x{}x{} with {} classes, the config "
                        "says {}x{}x{} with {}",
                        file.string(), info.image_size, info.image_size, info.in_channels,
                        info.num_classes, config_.image_size, config_.image_size,
                        config_.in_channels, config_.num_classes);
    if (o.import_heads && !st.metadata().count(model::kConfigKey) &&
        *o.import_heads != config_.embed_dim / 64)
      core::throw_input("--heads {}: the runtime engine infers heads as embed_dim/64 = {} for timm "
                        "files without vitopt metadata; re-save the model with `vitopt info` or "
                        "use --engine torch",
                        *o.import_heads, config_.embed_dim / 64);
  }

  std::string name() const override { return "runtime"; }
  const model::ViTConfig& config() const override { return config_; }

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
    if (st.metadata().count("vitopt.quant")) return std::nullopt;
    int64_t n = 0;
    for (const auto& name : st.names()) {
      if (st.info(name).dtype != io::DType::F32) return std::nullopt;
      for (float v : st.read_f32(name)) n += v != 0.0f;  // a copy: the data may be unaligned
    }
    return n;
  }

  model::ViTConfig config_;
  std::optional<int64_t> nonzero_;
  std::unique_ptr<runtime::Engine> engine_;
};

}  // namespace

std::unique_ptr<Engine> make_runtime_engine(const std::filesystem::path& model_file,
                                            const EngineOptions& options) {
  return std::make_unique<RuntimeEngine>(model_file, options);
}

}  // namespace vitopt::eval
