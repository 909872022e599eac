// Uses only the installed public header <vitopt/runtime.h>: loads a model file, runs a batch of
// two images twice and checks that the logits are finite and identical run to run. Prints the
// model's shape and the predicted classes; exit code 0 on success.
#include <vitopt/runtime.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors\n", argv[0]);
    return 2;
  }
  try {
    vitopt::runtime::RuntimeOptions options;
    options.threads = 1;
    auto engine = vitopt::runtime::Engine::load(argv[1], options);
    const auto& info = engine->info();
    const size_t per_image =
        static_cast<size_t>(info.in_channels) * info.image_size * info.image_size;
    std::vector<float> images(2 * per_image);  // (2, C, H, W): a ramp, then its negation
    for (size_t i = 0; i < per_image; ++i) {
      images[i] = static_cast<float>(i % 17) / 8.0f - 1.0f;
      images[per_image + i] = -images[i];
    }
    std::vector<float> first(2 * static_cast<size_t>(info.num_classes));
    std::vector<float> second(first.size());
    engine->run(images.data(), 2, first.data());
    engine->run(images.data(), 2, second.data());
    for (size_t i = 0; i < first.size(); ++i) {
      if (!std::isfinite(first[i]) || first[i] != second[i]) {
        std::fprintf(stderr, "logit %zu: %g then %g\n", i, first[i], second[i]);
        return 1;
      }
    }
    std::printf("%s: %dx%dx%d -> %d classes (%s, %s kernels)\n", argv[1], info.image_size,
                info.image_size, info.in_channels, info.num_classes, info.precision.c_str(),
                info.isa.c_str());
    for (int b = 0; b < 2; ++b) {
      const float* row = first.data() + b * info.num_classes;
      int best = 0;
      for (int c = 1; c < info.num_classes; ++c)
        if (row[c] > row[best]) best = c;
      std::printf("image %d: class %d (logit %.4f)\n", b, best, row[best]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitopt_consumer: %s\n", e.what());
    return 2;
  }
  return 0;
}
