// What the evaluator runs a model with: an Engine maps a normalized float batch to logits. The
// LibTorch engine ("torch") is built in; other engines (the dependency-free runtime) register a
// factory under their name so the evaluator never depends on them directly.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::eval {

struct EngineOptions {
  std::string device = "cpu";       // torch only: "cpu", "cuda", "cuda:N"
  int threads = 0;                  // already applied process-wide; engines with own pools use it
  std::optional<int> import_heads;  // hints for timm files without vitopt metadata
  std::vector<float> import_mean, import_std;
  std::optional<std::string> merge_r;  // token-merging schedule replacing the file's
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;
  // The model's config (input shape, classes, preprocessing) as stored in / inferred from the file.
  virtual const io::ViTConfig& config() const = 0;
  // images: (B, C, H, W) float32 contiguous, normalized with config().preprocess;
  // logits: (B, num_classes) float32 written by the engine. One call at a time.
  virtual void run(const float* images, int64_t batch, float* logits) = 0;
  // Weights that are exactly zero do not count (pruning); nullopt if the engine cannot tell.
  virtual std::optional<int64_t> nonzero_params() const { return std::nullopt; }
  // Peak bytes of the engine's own allocator since the last reset; nullopt with `why` set when
  // it has no such figure.
  virtual std::optional<int64_t> allocator_peak_bytes(std::string* why) const;
  virtual void reset_allocator_peak() {}
};

using EngineFactory = std::function<std::unique_ptr<Engine>(const std::filesystem::path& model_file,
                                                            const EngineOptions& options)>;

// Adds (or replaces) an engine under `name`; "torch" is registered from the start.
void register_engine(const std::string& name, EngineFactory factory);
std::vector<std::string> engine_names();
// Throws InputError listing the registered engines if `name` is unknown.
std::unique_ptr<Engine> make_engine(const std::string& name,
                                    const std::filesystem::path& model_file,
                                    const EngineOptions& options);

}  // namespace vitopt::eval
