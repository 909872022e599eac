// libFuzzer target for io::read_model_header, the one reader of a model file's header for both
// halves: any byte string must give a header (then the layout and size counts of its config are
// computed) or throw core::Error, never crash, hang or touch memory it does not own. Built and run
// by fuzz.cmake (fuzz_model_header_bounded); seeds in corpus/fuzz_model_header (fp32, quantized
// with attention, a timm import).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "io/tensor_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vitopt::io;
  try {
    const auto file = SafeTensorsFile::parse(std::vector<uint8_t>(data, data + size), "fuzz");
    const ModelHeader h = read_model_header(file, {});
    // What callers do next with a header: the layout, the counts and the expected bytes.
    (void)model_tensors(h.config);
    (void)count_params(h.config);
    (void)count_macs(h.config);
    (void)tensor_bytes(h.config, h.quant);
    ImportHints hints;
    hints.num_heads = 2;
    hints.mean = std::vector<float>{0.5f};
    (void)read_model_header(file, hints);
  } catch (const vitopt::core::Error&) {
    // Rejected input: the expected outcome for almost every mutation.
  }
  return 0;
}
