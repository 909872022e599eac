// libFuzzer entry point for the safetensors parser: any byte string must either parse or throw a
// core::Error, never crash, hang or read out of bounds. Not wired into CMake; build (one command,
// split here for width) and run from the repository root:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src -o fuzz
//       tests/fuzz/fuzz_safetensors.cpp src/io/safetensors.cpp src/core/*.cpp -lfmt
//   ./fuzz -max_total_time=30
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
