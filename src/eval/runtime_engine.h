// The evaluator's adapter for the dependency-free runtime (src/runtime): `--engine runtime` runs
// fp32 files on the runtime's fp32 kernels and quantized files on its integer kernels, so the
// report shows the speed and the (tiny) numeric differences of the deployable engine. The config
// (MACs, per-block params) is read from the file the same way the LibTorch engine does.
#pragma once

#include <filesystem>
#include <memory>

#include "eval/engine.h"

namespace vitopt::eval {

std::unique_ptr<Engine> make_runtime_engine(const std::filesystem::path& model_file,
                                            const EngineOptions& options);

}  // namespace vitopt::eval
