// Kernel level selection: CPUID (with OS support for the wider registers checked via XGETBV),
// $VITOPT_ISA to force a level, and the three tables built once on first use.
#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

struct CpuFlags {
  bool avx2 = false, fma = false, avx512 = false, vnni = false;
};

uint64_t xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFlags detect() {
  CpuFlags f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c & bit_OSXSAVE) != 0;
  const bool avx = (c & bit_AVX) != 0;
  f.fma = (c & bit_FMA) != 0;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_os = (xcr0 & 0x6) == 0x6;      // SSE + AVX state
  const bool zmm_os = (xcr0 & 0xe6) == 0xe6;    // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm_os && (b & bit_AVX2) != 0 && f.fma;
  const bool f512 = (b & bit_AVX512F) != 0, bw = (b & bit_AVX512BW) != 0,
             vl = (b & bit_AVX512VL) != 0, dq = (b & bit_AVX512DQ) != 0;
  f.vnni = (c & bit_AVX512VNNI) != 0;
  // Our avx512 level uses F/BW/VL/DQ and VNNI (vpdpbusd) in the int8 kernel.
  f.avx512 = f.avx2 && zmm_os && f512 && bw && vl && dq && f.vnni;
  return f;
}

const CpuFlags& flags() {
  static const CpuFlags f = detect();
  return f;
}

KernelTable build(Isa isa) {
  KernelTable t;
  fill_gemm_f32_ref(t);
  fill_gemm_q8_ref(t);
  fill_attention_f32_ref(t);
  fill_layernorm_f32_ref(t);
#ifndef VITOPT_RUNTIME_REF_ONLY
  if (isa == Isa::kAvx2) {
    fill_gemm_f32_avx2(t);
    fill_gemm_q8_avx2(t);
    fill_attention_f32_avx2(t);
    fill_layernorm_f32_avx2(t);
  } else if (isa == Isa::kAvx512) {
    fill_gemm_f32_avx512(t);
    fill_gemm_q8_avx512(t);
    fill_attention_f32_avx512(t);
    fill_layernorm_f32_avx512(t);
  }
#endif
  t.isa = isa;
  t.name = isa_name(isa);
  return t;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    default: return "ref";
  }
}

bool cpu_supports(Isa isa) {
#ifdef VITOPT_RUNTIME_REF_ONLY
  return isa == Isa::kRef;
#else
  switch (isa) {
    case Isa::kRef: return true;
    case Isa::kAvx2: return flags().avx2;
    case Isa::kAvx512: return flags().avx512;
  }
  return false;
#endif
}

Isa parse_isa(const char* name) {
  const std::string s = name;
  if (s == "ref") return Isa::kRef;
  if (s == "avx2") return Isa::kAvx2;
  if (s == "avx512") return Isa::kAvx512;
  core::throw_input("kernel level '{}': expected one of ref, avx2, avx512", s);
}

Isa default_isa() {
  if (const char* env = std::getenv("VITOPT_ISA"); env != nullptr && *env != '\0') {
    const Isa isa = parse_isa(env);
    if (!cpu_supports(isa))
      core::throw_input("VITOPT_ISA={}: this CPU does not support that kernel level", env);
    return isa;
  }
  if (cpu_supports(Isa::kAvx512)) return Isa::kAvx512;
  if (cpu_supports(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kRef;
}

const KernelTable& table(Isa isa) {
  if (!cpu_supports(isa))
    core::throw_internal("kernel level {} requested but this CPU does not support it",
                         isa_name(isa));
  static const KernelTable tables[3] = {build(Isa::kRef), build(Isa::kAvx2), build(Isa::kAvx512)};
  return tables[static_cast<int>(isa)];
}

}  // namespace vitopt::runtime::kernels
