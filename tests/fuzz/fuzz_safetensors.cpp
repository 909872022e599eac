// libFuzzer target for the safetensors container parser: any byte string must either parse or
// throw a core::Error, never crash, hang or read out of bounds. Built and run by fuzz.cmake
// (`ctest -L fuzz` in the sanitizer build, scripts/sanitize.sh); seeds in corpus/fuzz_safetensors.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = vitopt::io::SafeTensorsFile::parse(std::vector<uint8_t>(data, data + size),
                                                         "fuzz.safetensors");
    // A file that parsed must be fully readable: touch every tensor the way a loader would.
    for (const std::string& name : file.names()) {
      const vitopt::io::TensorInfo& info = file.info(name);
      if (vitopt::io::dtype_is_float(info.dtype)) {
        (void)file.read_f32(name, &info.shape);
      } else {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < info.nbytes; ++i) sink = sink ^ file.data(name)[i];
      }
    }
  } catch (const vitopt::core::Error&) {
    // Rejected input: the expected outcome for almost every mutation.
  }
  return 0;
}
