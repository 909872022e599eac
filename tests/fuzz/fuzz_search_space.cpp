// libFuzzer target for the search-space file (SpaceSpec::from_yaml_text) and the genome JSON of a
// search's saved state (Genome::from_json): any byte string must give a space (then resolved
// against a 2-block model and its genomes drawn, mutated, crossed and checked) or a genome
// (checked against the default space), or be refused with an InputError; never crash, hang,
// throw anything else or touch memory it does not own. Built and run by fuzz.cmake
// (fuzz_search_space_bounded); seeds in corpus/fuzz_search_space.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "core/error.h"
#include "io/presets.h"
#include "search/space.h"

namespace {

using namespace vitopt;

const io::ViTConfig& base_model() {
  static const io::ViTConfig base = io::preset("vit-tiny-test");
  return base;
}

// What the search does with a space: its ends, random genomes and their offspring, each checked
// (check throws on a broken genome, which the operators' repair must never leave).
void exercise(const search::SpaceSpec& spec) {
  const search::Space space(spec, base_model());
  std::mt19937_64 rng(1);
  const auto small = space.smallest();
  space.check(space.largest(), "largest");
  space.check(small, "smallest");
  auto g = space.random(rng);
  for (int i = 0; i < 4; ++i) {
    g = space.crossover(space.mutate(g, 0.5, rng), small, rng);
    space.check(g, "offspring");
    (void)search::genome_config(space.base(g.student), g);
    (void)search::Genome::from_json(g.to_json(), "round trip");
  }
  (void)spec.to_json();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    exercise(search::SpaceSpec::from_yaml_text(text, "fuzz.yaml"));
  } catch (const core::InputError&) {
    // Rejected space file: the expected outcome for most mutations.
  }
  try {
    const auto genome = search::Genome::from_json(nlohmann::json::parse(text), "fuzz.json");
    static const search::Space space(search::SpaceSpec{}, base_model());
    space.check(genome, "fuzz.json");  // as a resumed search checks its saved genomes
    space.check(space.repair(genome), "repaired");
  } catch (const core::InputError&) {
  } catch (const nlohmann::json::exception&) {
    // Not JSON: the state file's reader reports that as an InputError of its own.
  }
  return 0;
}
