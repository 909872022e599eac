// libFuzzer target for the runtime model loader (model header, config, quant spec, packed codes):
// any byte string must load (and then run one image) or throw core::Error, never crash, hang or
// touch memory it does not own. Built and run by fuzz.cmake; seeds in corpus/fuzz_runtime_loader
// (regenerate them with VITOPT_FUZZ_WRITE_SEEDS=DIR: start-up then writes valid fp32, int8,
// int4 and slimmed model files there).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "runtime/random_model.h"
#include "vitopt/runtime.h"

namespace {

using namespace vitopt::runtime;

void write_seeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  nlohmann::json j = {{"name", "seed"},  {"image_size", 8}, {"in_channels", 1},
                      {"patch_size", 4}, {"embed_dim", 8},  {"depth", 2},
                      {"num_heads", 2},  {"mlp_dim", 8},    {"num_classes", 3}};
  RandomModelOptions o;
  o.config = vitopt::io::ViTConfig::from_json(j, "seed");
  o.config.normalize("seed");
  write_random_model(o, dir / "fp32.safetensors");
  o.weight_bits = 8;
  o.input_bits = 8;
  o.input_dynamic = false;
  write_random_model(o, dir / "int8_static.safetensors");
  o.weight_bits = 4;
  o.weight_symmetric = false;
  o.input_dynamic = true;
  write_random_model(o, dir / "int4_dynamic.safetensors");
  j["distill_token"] = true;
  j["blocks"] = {{{"num_heads", 1}, {"skip_mlp", true}}, {{"qkv_rank", 2}, {"mlp_dim", 5}}};
  o.config = vitopt::io::ViTConfig::from_json(j, "seed");
  o.config.normalize("seed");
  o.weight_bits = 0;
  o.input_bits = 0;
  write_random_model(o, dir / "slim.safetensors");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("VITOPT_FUZZ_WRITE_SEEDS")) write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  try {
    RuntimeOptions ro;
    ro.threads = 1;
    auto engine =
        Engine::load_bytes(std::vector<uint8_t>(data, data + size), "fuzz.safetensors", ro);
    const ModelInfo& info = engine->info();
    if (info.macs < 2'000'000) {  // run small models once: packing and plan must be sound too
      std::vector<float> x(
          static_cast<size_t>(info.in_channels) * info.image_size * info.image_size, 0.5f);
      std::vector<float> y(static_cast<size_t>(info.num_classes));
      engine->run(x.data(), 1, y.data());
    }
  } catch (const vitopt::core::Error&) {
    // Rejected input: the expected outcome for almost every mutation.
  }
  return 0;
}
