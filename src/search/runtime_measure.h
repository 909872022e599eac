// Measuring a candidate model file on the dependency-free runtime, the engine it will be deployed
// on: top-1 on a held-out split of the training data (never the test split), latency at a given
// batch and thread count, the runtime's peak allocated memory, and the file's size. Parameters
// and MACs come from the runtime's own count of the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/loader.h"
#include "io/vit_config.h"
#include "search/budget.h"

namespace vitopt::search {

// Images the search estimates accuracy on: the last `count` images of the training split,
// with the model's eval transform, in batches.
struct HeldOut {
  std::vector<data::Batch> batches;
  size_t count = 0;
  std::string description;
};
// InputError when the split has fewer than `count` + `reserved` images (`reserved`: the first
// images calibration uses, which must not overlap the held-out tail).
HeldOut held_out_split(const std::string& data, const io::ViTConfig& config, size_t count,
                       size_t reserved, int64_t batch, uint64_t seed);

struct MeasureOptions {
  int batch = 1;    // latency batch
  int threads = 1;  // runtime threads
  int runs = 20;    // timed runs (the median is reported)
  int warmup = 3;
};

// "top1", "latency-ms" (median of runs), "latency-iqr-ms", "memory-mb", "size-mb", "params",
// "macs" of one model file (fp32 or quantized). `held_out` may be empty (top1 then absent).
Metrics measure_file(const std::filesystem::path& path, const HeldOut& held_out,
                     const MeasureOptions& options);

}  // namespace vitopt::search
