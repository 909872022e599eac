// Seed derivation shared by the loader and the synthetic dataset: splitmix64 is fully specified
// (unlike std::hash or std::seed_seq's use by distributions), so derived seeds and hence epoch
// orders, augmentations and synthetic pixels are the same with every standard library.
#pragma once

#include <cstdint>

namespace vitopt::data {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Order-sensitive combination: mix_seed(a, b) != mix_seed(b, a).
inline uint64_t mix_seed(uint64_t a, uint64_t b) { return splitmix64(splitmix64(a) ^ b); }

}  // namespace vitopt::data
