// Kernel dispatch: the per-family choice on the CPU classes this project meets (each feature
// judged on its own), level names, the VITOPT_ISA capping rule, the tables a level builds, and
// the engine's report of what runs (including the int4 rule and its option).
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"
#include "io/presets.h"
#include "runtime/kernels/kernels.h"
#include "runtime/random_model.h"
#include "runtime_test_util.h"
#include "vitopt/runtime.h"

namespace vitopt::runtime {
namespace {

using kernels::CpuFeatures;
using kernels::Isa;

CpuFeatures zen3() { return {true, false, false, false}; }         // AVX2+FMA only
CpuFeatures alder_lake() { return {true, true, false, false}; }    // + AVX-VNNI, no AVX-512
CpuFeatures skylake_sp() { return {true, false, true, false}; }    // AVX-512 F/BW/DQ/VL, no VNNI
CpuFeatures ice_lake_sp() { return {true, false, true, true}; }    // + AVX-512 VNNI (Zen 4 too)
CpuFeatures sapphire_rapids() { return {true, true, true, true}; } // + AVX-VNNI

TEST(Dispatch, EachFamilyChoosesByItsOwnFeature) {
  struct Case {
    CpuFeatures cpu;
    Isa fp32, int8;
  };
  const Case cases[] = {{CpuFeatures{}, Isa::kRef, Isa::kRef},
                        {zen3(), Isa::kAvx2, Isa::kAvx2},
                        {alder_lake(), Isa::kAvx2, Isa::kAvx2Vnni},
                        {skylake_sp(), Isa::kAvx512, Isa::kAvx512},  // fp32 on AVX-512 without VNNI
                        {ice_lake_sp(), Isa::kAvx512, Isa::kAvx512Vnni},
                        {sapphire_rapids(), Isa::kAvx512, Isa::kAvx512Vnni}};
  for (const auto& c : cases) {
    const kernels::KernelChoice k = kernels::choose_kernels(c.cpu);
    EXPECT_EQ(k.fp32, c.fp32);
    EXPECT_EQ(k.int8, c.int8);
    EXPECT_EQ(k.int4, c.int8);
  }
}

TEST(Dispatch, LevelsAreFeatureSetsAndCapToTheCpu) {
  for (Isa l : kernels::kAllIsas) EXPECT_EQ(kernels::parse_isa(kernels::isa_name(l)), l);
  EXPECT_THROW(kernels::parse_isa("avx512f"), core::InputError);
  EXPECT_THROW(kernels::parse_isa(""), core::InputError);
  // A level asks for exactly its features: avx512vnni does not need AVX-VNNI (Zen 4 lacks it).
  EXPECT_EQ(kernels::cap_level(Isa::kAvx512Vnni, ice_lake_sp()), Isa::kAvx512Vnni);
  EXPECT_EQ(kernels::cap_level(Isa::kAvx512Vnni, skylake_sp()), Isa::kAvx512);
  EXPECT_EQ(kernels::cap_level(Isa::kAvx512Vnni, zen3()), Isa::kAvx2);
  EXPECT_EQ(kernels::cap_level(Isa::kAvx512Vnni, alder_lake()), Isa::kAvx2);
  EXPECT_EQ(kernels::cap_level(Isa::kAvx2Vnni, zen3()), Isa::kAvx2);
  EXPECT_EQ(kernels::cap_level(Isa::kAvx2Vnni, sapphire_rapids()), Isa::kAvx2Vnni);
  // Forcing avx512 on a VNNI machine runs what a Skylake-SP runs, and never AVX-VNNI.
  EXPECT_EQ(kernels::cap_level(Isa::kAvx512, sapphire_rapids()), Isa::kAvx512);
  const kernels::KernelChoice sk = kernels::choose_kernels(kernels::level_features(Isa::kAvx512));
  EXPECT_EQ(sk.int8, Isa::kAvx512);
  EXPECT_EQ(kernels::cap_level(Isa::kAvx2, CpuFeatures{}), Isa::kRef);
}

TEST(Dispatch, TablesRunWhatTheirLevelChooses) {
  for (Isa l : kernels::kAllIsas) {
    if (!kernels::cpu_supports(l)) {
      EXPECT_THROW(kernels::table(l), core::InternalError);
      continue;
    }
    const kernels::KernelTable& t = kernels::table(l);
    const kernels::KernelChoice c = kernels::choose_kernels(kernels::level_features(l));
    EXPECT_EQ(t.isa, l);
    EXPECT_EQ(t.fp32_isa, c.fp32);
    EXPECT_EQ(t.q8.isa, c.int8);
    EXPECT_EQ(t.q4.isa, c.int4);
    // Only the VNNI and s16 formats differ in activation width: vpmaddwd kernels take s16.
    const bool s16 = c.int8 == Isa::kAvx2 || c.int8 == Isa::kAvx512;
    EXPECT_EQ(t.q8.act_bytes, s16 ? 2 : 1) << kernels::isa_name(l);
    EXPECT_EQ(t.q4.act_bytes, 1);
  }
  // The detected features are consistent with each other (never one implied by another, but
  // the kernels' combinations need their base).
  const CpuFeatures& f = kernels::cpu_features();
  EXPECT_TRUE(!f.avx512_vnni || f.avx512);
  EXPECT_TRUE(!(f.avx512 || f.avx_vnni) || f.avx2);
  EXPECT_EQ(supported_isas().front(), "ref");
}

TEST(Dispatch, EnvironmentForcesALevelCappedWithAWarning) {
  const char* old = std::getenv("VITOPT_ISA");
  const std::string saved = old != nullptr ? old : "";
  for (Isa l : kernels::kAllIsas) {
    setenv("VITOPT_ISA", kernels::isa_name(l), 1);
    const Isa got = kernels::default_isa();
    if (kernels::cpu_supports(l)) {
      EXPECT_EQ(got, l);
    } else {
      EXPECT_EQ(got, kernels::cap_level(l, kernels::cpu_features()));
      EXPECT_TRUE(kernels::cpu_supports(got));
    }
    EXPECT_EQ(kernel_report().level, kernels::isa_name(got));
  }
  setenv("VITOPT_ISA", "avx9000", 1);
  EXPECT_THROW(kernels::default_isa(), core::InputError);
  unsetenv("VITOPT_ISA");
  EXPECT_EQ(kernel_report().level, supported_isas().back());
  if (!saved.empty()) setenv("VITOPT_ISA", saved.c_str(), 1);
}

TEST(Dispatch, ReportAndEngineInfoNameTheKernelsPerFamily) {
  const KernelReport r = kernel_report("ref");
  EXPECT_EQ(r.level, "ref");
  EXPECT_EQ(r.fp32, "ref");
  EXPECT_EQ(r.int8, "ref");
  EXPECT_FALSE(r.levels.empty());
  RandomModelOptions o;
  o.config = io::preset("vit-tiny-test");
  o.weight_bits = 4;
  o.input_bits = 8;
  o.input_dynamic = true;
  const auto bytes = random_model_bytes(o);
  for (const std::string& level : supported_isas()) {
    for (const std::string mode : {"packed", "int8"}) {
      RuntimeOptions ro;
      ro.isa = level;
      ro.int4 = mode;
      ro.threads = 1;
      auto e = Engine::load_bytes(bytes, "q4", ro);
      const KernelReport k = kernel_report(level);
      EXPECT_EQ(e->info().isa, level);
      EXPECT_EQ(e->info().isa_fp32, k.fp32);
      EXPECT_EQ(e->info().isa_int8, k.int8);
      EXPECT_EQ(e->info().isa_int4, k.int4);
      EXPECT_EQ(e->info().int4_kernel, mode);
    }
  }
  RuntimeOptions auto_rule;  // a tiny model fits any L3: int8 unless VITOPT_INT4 says otherwise
  if (std::getenv("VITOPT_INT4") == nullptr) {
    EXPECT_EQ(Engine::load_bytes(bytes, "q4", auto_rule)->info().int4_kernel, "int8");
  }
  RuntimeOptions bad;
  bad.int4 = "nibbles";
  EXPECT_THROW(Engine::load_bytes(bytes, "q4", bad), core::InputError);
  bad.int4 = "";
  bad.isa = "avx1024";
  EXPECT_THROW(Engine::load_bytes(bytes, "q4", bad), core::InputError);
  o.weight_bits = 8;
  EXPECT_EQ(Engine::load_bytes(random_model_bytes(o), "q8", {})->info().int4_kernel, "");
}

}  // namespace
}  // namespace vitopt::runtime
