// libFuzzer target for the config.json reader of `vitopt import` (timm's model_args /
// architecture / pretrained_cfg, Hugging Face's num_attention_heads / id2label): the input is the
// config.json next to a fixed tiny timm checkpoint (2 blocks, width 8, 3 classes; the seed of
// fuzz_model_header), then converted. Any bytes must give a model file or an InputError naming
// the field; never another exception, a crash, a hang or a bad memory access. Built and run by
// fuzz.cmake (fuzz_checkpoint_config_bounded); seeds in corpus/fuzz_checkpoint_config.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/checkpoint_convert.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;

// The checkpoint (read once) and a folder of this process for its config.json.
struct Fixture {
  vitopt::io::SafeTensorsFile checkpoint = vitopt::io::SafeTensorsFile::load(
      fs::path(VITOPT_FUZZ_CORPUS) / "fuzz_model_header" / "timm_import.safetensors");
  fs::path config = fs::temp_directory_path() /
                    ("vitopt-fuzz-config-" + std::to_string(::getpid())) / "config.json";
  Fixture() { fs::create_directories(config.parent_path()); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  std::ofstream(fixture.config, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  vitopt::io::ImportHints hints;
  hints.config_json = fixture.config;
  try {
    (void)vitopt::io::convert_checkpoint(fixture.checkpoint, hints);
  } catch (const vitopt::core::InputError&) {
    // Refused config: the expected outcome for most mutations.
  }
  return 0;
}
