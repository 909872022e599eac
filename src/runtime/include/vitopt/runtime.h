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
  // Kernel level: "ref", "avx2", "avx2vnni", "avx512", "avx512vnni" (a level this CPU lacks is an
  // InputError), or "" for $VITOPT_ISA when set (a level this CPU lacks is capped to the best it
  // has within that level, with a warning on stderr) and else the best level this CPU has.
  std::string isa;
  // Weights of <= 4 bits on the integer path: "packed" (nibbles unpacked in registers, half the
  // bytes of int8), "int8" (codes stored as int8), or "" / "auto": $VITOPT_INT4 when set, else
  // packed when the model's weights as the int8 kernels would hold them (1 byte per integer
  // weight, 4 per fp32 one) exceed the L3 size (kernel_report().l3_bytes; 32 MB when unknown):
  // inference then streams them from memory and half the bytes beats the unpacking work.
  std::string int4;
  bool simulate_quant = false;  // quantized Linears run the exact fp32 simulation (dequantized
                                // weights, fake-quantized inputs) instead of integer kernels
  // How the blocks are spread over the threads (results are bit-identical either way):
  // "layer": every GEMM splits its weight panels over the threads (each weight read once);
  // "rows": each thread runs whole chains of Linears on its own token rows, synchronising only
  // around attention (far fewer synchronisations, every thread reads every weight);
  // "" or "auto": rows while the packed weights total at most 32 MB (they stay in cache), else layer.
  std::string schedule;
  // Token merging (ToMe) per block, replacing what the model file stores: "8" (every block),
  // "8,8,4,..." (one per block), "decreasing[:R]", "0"/"off" (none); "" keeps the file's.
  std::string merge_r;
  // timm/HF checkpoints without vitopt metadata record no head count: heads per block to assume
  // (0: embed_dim / 64), as `--heads` on the LibTorch side. Ignored for vitopt files.
  int import_heads = 0;
};

struct ModelInfo {
  int image_size = 0, in_channels = 0, num_classes = 0;
  std::vector<float> mean, std;         // preprocessing from the model file
  float crop_pct = 1.0f;                // eval: resize to image_size / crop_pct, center-crop
  std::vector<std::string> class_names;
  std::string precision;                // "fp32", "int<b>" (every quantized weight b bits), "mixed"
  // Additions beyond the shared API:
  std::string name;                     // config name, e.g. "deit-small"
  std::string isa;                      // kernel level in use, e.g. "avx512vnni"
  // Implementation per kernel family at that level (they choose independently by CPU feature):
  std::string isa_fp32;                 // fp32 GEMM, attention, LayerNorm: "ref", "avx2", "avx512"
  std::string isa_int8;                 // int8 GEMM: also "avx2vnni" (AVX-VNNI), "avx512vnni"
  std::string isa_int4;                 // packed-int4 GEMM: the same names as int8
  std::string int4_kernel;              // this model's <= 4-bit integer Linears: "packed", "int8",
                                        // or "" when it has none
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

// The CPU and the kernels a level runs on it (`vitopt info`, `vitopt bench --json`).
struct KernelReport {
  std::string cpu;                     // CPUID brand string
  std::vector<std::string> cpu_flags;  // detected features the kernels care about
  std::vector<std::string> levels;     // supported levels, best last
  std::string level;                   // the level resolved from `isa` (as Engine::load does)
  std::string fp32, int8, int4;        // implementation per family at that level
  size_t l3_bytes = 0;                 // one L3 instance as detected (0: unknown)
};
KernelReport kernel_report(const std::string& isa = "");

}  // namespace vitopt::runtime
