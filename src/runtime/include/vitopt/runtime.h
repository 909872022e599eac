// vitopt runtime: a dependency-free (no LibTorch) ViT inference engine. Loads one vitopt model file
// (fp32, int8 or packed int2-4 weights, pruned/slimmed blocks, skipped sub-blocks, low-rank and
// shared blocks, distillation token), validates it completely, packs the weights for the CPU it
// runs on and executes batches with buffers allocated once per batch size.
// Legend: B batch, C channels, H/W image side, K classes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vitopt::runtime {

struct RuntimeOptions {
  int threads = 0;              // 0: all cores this process may use
  std::string isa;              // "" (best the CPU has, or $VITOPT_ISA), "ref", "avx2", "avx512"
  bool simulate_quant = false;  // quantized Linears run the exact fp32 simulation (dequantized
                                // weights, fake-quantized inputs) instead of integer kernels
  // How the blocks are spread over the threads (results are bit-identical either way):
  // "layer": every GEMM splits its weight panels over the threads (each weight read once);
  // "rows": each thread runs whole chains of Linears on its own token rows, synchronising only
  // around attention (far fewer synchronisations, every thread reads every weight);
  // "" or "auto": rows while the packed weights total at most 32 MB (they stay in cache), else layer.
  std::string schedule;
  // timm/HF checkpoints without vitopt metadata record no head count: heads per block to assume
  // (0: embed_dim / 64), as `--heads` on the LibTorch side. Ignored for vitopt files.
  int import_heads = 0;
};

struct ModelInfo {
  int image_size = 0, in_channels = 0, num_classes = 0;
  std::vector<float> mean, std;         // preprocessing from the model file
  std::vector<std::string> class_names;
  std::string precision;                // "fp32", "int<b>" (every quantized weight b bits), "mixed"
  // Additions beyond the shared API:
  std::string name;                     // config name, e.g. "deit-small"
  std::string isa;                      // kernel level in use: "ref", "avx2", "avx512"
  int threads = 0;                      // pool size in use
  int64_t params = 0;                   // parameters stored in the file (weights counted once)
  int64_t macs = 0;                     // multiply-accumulates per image
};

class Engine {
 public:
  // Throws core::InputError naming the file and field when the file is not a valid model.
  static std::unique_ptr<Engine> load(const std::filesystem::path& model_file,
                                      const RuntimeOptions& options = {});
  // Same from bytes already in memory (`source` names them in errors).
  static std::unique_ptr<Engine> load_bytes(std::vector<uint8_t> bytes, const std::string& source,
                                            const RuntimeOptions& options = {});
  virtual ~Engine();
  const ModelInfo& info() const;
  // images: (B, C, H, W) float32, normalized with info().mean/std, contiguous.
  // logits: (B, num_classes) float32. Thread-compatible (one call at a time per Engine).
  void run(const float* images, int batch, float* logits);

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Bytes of the runtime's buffers (packed weights, activation plans) alive in this process, and
// their high-water mark since the last reset_peak_allocated_bytes() (which sets it to the live
// figure). Exact counts of what the runtime allocated, not RSS.
size_t allocated_bytes();
size_t peak_allocated_bytes();
void reset_peak_allocated_bytes();

// The kernel levels this CPU supports, best last (always starts with "ref").
std::vector<std::string> supported_isas();

}  // namespace vitopt::runtime
