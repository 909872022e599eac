// Kernel level selection, the one dispatch point of every family: CPU detection (CPUID feature
// bits combined with the OS support for the register state they need, via XGETBV; never one
// feature inferred from another: a Skylake-SP has AVX-512 without VNNI, a Zen 3 AVX2 without
// either, an Alder Lake AVX-VNNI without AVX-512), levels as feature sets, the per-family choice
// for a feature set, $VITOPT_ISA (capped to what the CPU has, with a warning), and the tables,
// built once on first use. Also the brand string and L3 size for reports and the int4 rule.
#include <cpuid.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include "core/error.h"
#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {

namespace {

// CPUID bits (Intel SDM vol. 2A, table 3-8; AMD APM vol. 3, appendix E), spelled out rather
// than taken from <cpuid.h>, whose older versions lack some of them.
constexpr unsigned kLeaf1EcxFma = 1u << 12, kLeaf1EcxOsxsave = 1u << 27, kLeaf1EcxAvx = 1u << 28,
                   kLeaf1EcxF16c = 1u << 29;
constexpr unsigned kLeaf7EbxAvx2 = 1u << 5, kLeaf7EbxAvx512f = 1u << 16, kLeaf7EbxAvx512dq = 1u << 17,
                   kLeaf7EbxAvx512bw = 1u << 30, kLeaf7EbxAvx512vl = 1u << 31;
constexpr unsigned kLeaf7EcxAvx512Vnni = 1u << 11;
constexpr unsigned kLeaf71EaxAvxVnni = 1u << 4;
// XCR0 state components: SSE (1), AVX upper halves (2); opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7).
constexpr uint64_t kXcr0Ymm = 0x6, kXcr0Zmm = 0xe0;

struct Raw {
  bool fma = false, f16c = false, avx = false, os_ymm = false, os_zmm = false;
  bool avx2 = false, avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_vnni = false, avx_vnni = false;
};

uint64_t xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Raw read_raw() {
  Raw r;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return r;
  r.fma = (c & kLeaf1EcxFma) != 0;
  r.f16c = (c & kLeaf1EcxF16c) != 0;
  r.avx = (c & kLeaf1EcxAvx) != 0;
  if ((c & kLeaf1EcxOsxsave) != 0) {
    const uint64_t xcr0 = xgetbv0();
    r.os_ymm = (xcr0 & kXcr0Ymm) == kXcr0Ymm;
    r.os_zmm = r.os_ymm && (xcr0 & kXcr0Zmm) == kXcr0Zmm;
  }
  if (__get_cpuid_max(0, nullptr) < 7) return r;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned max_sub = a;
  r.avx2 = (b & kLeaf7EbxAvx2) != 0;
  r.avx512f = (b & kLeaf7EbxAvx512f) != 0;
  r.avx512dq = (b & kLeaf7EbxAvx512dq) != 0;
  r.avx512bw = (b & kLeaf7EbxAvx512bw) != 0;
  r.avx512vl = (b & kLeaf7EbxAvx512vl) != 0;
  r.avx512_vnni = (c & kLeaf7EcxAvx512Vnni) != 0;
  if (max_sub >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    r.avx_vnni = (a & kLeaf71EaxAvxVnni) != 0;
  }
  return r;
}

const Raw& raw() {
  static const Raw r = read_raw();
  return r;
}

CpuFeatures combine(const Raw& r) {
  CpuFeatures f;
  f.avx2 = r.avx && r.os_ymm && r.avx2 && r.fma && r.f16c;
  f.avx_vnni = f.avx2 && r.avx_vnni;
  f.avx512 = f.avx2 && r.os_zmm && r.avx512f && r.avx512bw && r.avx512dq && r.avx512vl;
  f.avx512_vnni = f.avx512 && r.avx512_vnni;
  return f;
}

size_t parse_size(std::string s) {  // sysfs "32768K" / "32M"
  if (s.empty()) return 0;
  size_t mult = 1;
  const char unit = s.back();
  if (unit == 'K' || unit == 'k') mult = size_t{1} << 10;
  if (unit == 'M' || unit == 'm') mult = size_t{1} << 20;
  if (mult != 1) s.pop_back();
  try {
    return static_cast<size_t>(std::stoull(s)) * mult;
  } catch (const std::exception&) {
    return 0;
  }
}

size_t l3_from_sysfs() {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level(dir + "level");
    int lv = 0;
    if (!(level >> lv)) continue;
    if (lv != 3) continue;
    std::ifstream size(dir + "size");
    std::string s;
    if (size >> s) return parse_size(s);
  }
  return 0;
}

// Deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD), same register layout.
size_t l3_from_cpuid() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  for (unsigned leaf : {4u, 0x8000001Du}) {
    if (static_cast<unsigned>(__get_cpuid_max(leaf & 0x80000000u, nullptr)) < leaf) continue;
    for (unsigned sub = 0; sub < 8; ++sub) {
      __cpuid_count(leaf, sub, a, b, c, d);
      const unsigned type = a & 31, level = (a >> 5) & 7;
      if (type == 0) break;
      if (level != 3) continue;
      const size_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1,
                   line = (b & 0xfff) + 1, sets = static_cast<size_t>(c) + 1;
      return ways * parts * line * sets;
    }
  }
  return 0;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = combine(raw());
  return f;
}

std::vector<std::string> cpu_flag_names() {
  const Raw& r = raw();
  std::vector<std::string> out;
  const std::pair<bool, const char*> flags[] = {
      {r.avx, "avx"},           {r.avx2, "avx2"},         {r.fma, "fma"},
      {r.f16c, "f16c"},         {r.avx_vnni, "avx_vnni"}, {r.avx512f, "avx512f"},
      {r.avx512bw, "avx512bw"}, {r.avx512dq, "avx512dq"}, {r.avx512vl, "avx512vl"},
      {r.avx512_vnni, "avx512_vnni"}, {r.os_ymm, "os_ymm_state"}, {r.os_zmm, "os_zmm_state"}};
  for (const auto& [on, name] : flags)
    if (on) out.emplace_back(name);
  return out;
}

std::string cpu_model_name() {
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000u, nullptr)) < 0x80000004u) return "";
  char brand[49] = {};
  for (unsigned i = 0; i < 3; ++i) {
    unsigned regs[4] = {};
    __get_cpuid(0x80000002u + i, &regs[0], &regs[1], &regs[2], &regs[3]);
    std::memcpy(brand + 16 * i, regs, 16);
  }
  std::string s(brand);
  const size_t first = s.find_first_not_of(' '), last = s.find_last_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

size_t l3_cache_bytes() {
  static const size_t bytes = [] {
    const size_t s = l3_from_sysfs();
    return s > 0 ? s : l3_from_cpuid();
  }();
  return bytes;
}

namespace {

bool subset(const CpuFeatures& a, const CpuFeatures& b) {  // every feature of a is in b
  return (!a.avx2 || b.avx2) && (!a.avx_vnni || b.avx_vnni) && (!a.avx512 || b.avx512) &&
         (!a.avx512_vnni || b.avx512_vnni);
}

KernelTable build(Isa level) {
  KernelTable t;
  fill_gemm_f32_ref(t);
  fill_attention_f32_ref(t);
  fill_layernorm_f32_ref(t);
  fill_merge_f32_ref(t);
  fill_transpose_f32_ref(t);
  fill_gemm_q8_ref(t.q8);
  fill_gemm_q4_ref(t.q4);
#ifndef VITOPT_RUNTIME_REF_ONLY
  const KernelChoice c = choose_kernels(level_features(level));
  if (c.fp32 == Isa::kAvx512) {
    fill_gemm_f32_avx512(t);
    fill_attention_f32_avx512(t);
    fill_layernorm_f32_avx512(t);
    fill_merge_f32_avx512(t);
    fill_transpose_f32_avx2(t);
  } else if (c.fp32 == Isa::kAvx2) {
    fill_gemm_f32_avx2(t);
    fill_attention_f32_avx2(t);
    fill_layernorm_f32_avx2(t);
    fill_merge_f32_avx2(t);
    fill_transpose_f32_avx2(t);
  }
  t.fp32_isa = c.fp32;
  switch (c.int8) {
    case Isa::kAvx512Vnni: fill_gemm_q8_avx512vnni(t.q8); break;
    case Isa::kAvx2Vnni: fill_gemm_q8_avx2vnni(t.q8); break;
    case Isa::kAvx512: fill_gemm_q8_avx512(t.q8); break;
    case Isa::kAvx2: fill_gemm_q8_avx2(t.q8); break;
    case Isa::kRef: break;
  }
  switch (c.int4) {
    case Isa::kAvx512Vnni: fill_gemm_q4_avx512vnni(t.q4); break;
    case Isa::kAvx2Vnni: fill_gemm_q4_avx2vnni(t.q4); break;
    case Isa::kAvx512: fill_gemm_q4_avx512(t.q4); break;
    case Isa::kAvx2: fill_gemm_q4_avx2(t.q4); break;
    case Isa::kRef: break;
  }
#endif
  t.isa = level;
  t.name = isa_name(level);
  return t;
}

}  // namespace

CpuFeatures level_features(Isa isa) {
  CpuFeatures f;
  switch (isa) {
    case Isa::kRef: break;
    case Isa::kAvx2: f.avx2 = true; break;
    case Isa::kAvx2Vnni: f.avx2 = f.avx_vnni = true; break;
    case Isa::kAvx512: f.avx2 = f.avx512 = true; break;
    // Not AVX-VNNI: Ice Lake-SP and Zen 4 have AVX-512 VNNI without it. (A CPU with AVX-512 and
    // AVX-VNNI but no AVX-512 VNNI, which none ships, would run level avx512.)
    case Isa::kAvx512Vnni: f.avx2 = f.avx512 = f.avx512_vnni = true; break;
  }
  return f;
}

KernelChoice choose_kernels(const CpuFeatures& f) {
  KernelChoice c;
  c.fp32 = f.avx512 ? Isa::kAvx512 : f.avx2 ? Isa::kAvx2 : Isa::kRef;
  // vpdpbusd (64 or 32 MACs per instruction, accumulate included) beats every exact emulation;
  // AVX-VNNI on ymm still does as many MACs per instruction as vpmaddwd on zmm, without the add.
  c.int8 = f.avx512_vnni ? Isa::kAvx512Vnni
           : f.avx_vnni  ? Isa::kAvx2Vnni
           : f.avx512    ? Isa::kAvx512
           : f.avx2      ? Isa::kAvx2
                         : Isa::kRef;
  c.int4 = c.int8;
  return c;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx2Vnni: return "avx2vnni";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Vnni: return "avx512vnni";
    default: return "ref";
  }
}

const char* isa_names() { return "ref, avx2, avx2vnni, avx512, avx512vnni"; }

bool cpu_supports(Isa isa) {
#ifdef VITOPT_RUNTIME_REF_ONLY
  return isa == Isa::kRef;
#else
  return subset(level_features(isa), cpu_features());
#endif
}

Isa cap_level(Isa requested, const CpuFeatures& cpu) {
  Isa best = Isa::kRef;
  for (Isa l : kAllIsas) {
    const CpuFeatures f = level_features(l);
    if (subset(f, level_features(requested)) && subset(f, cpu)) best = l;
  }
  return best;
}

Isa parse_isa(const char* name) {
  const std::string s = name;
  for (Isa l : kAllIsas)
    if (s == isa_name(l)) return l;
  core::throw_input("kernel level '{}': expected one of {}", s, isa_names());
}

Isa default_isa() {
  if (const char* env = std::getenv("VITOPT_ISA"); env != nullptr && *env != '\0') {
    const Isa want = parse_isa(env);
    if (cpu_supports(want)) return want;
#ifdef VITOPT_RUNTIME_REF_ONLY
    const Isa got = Isa::kRef;
#else
    const Isa got = cap_level(want, cpu_features());
#endif
    static std::once_flag warned;
    std::call_once(warned, [&] {
      std::fprintf(stderr, "vitopt: warning: VITOPT_ISA=%s: this CPU lacks features of that level; using %s\n",
                   env, isa_name(got));
    });
    return got;
  }
  Isa best = Isa::kRef;
  for (Isa l : kAllIsas)
    if (cpu_supports(l)) best = l;
  return best;
}

const KernelTable& table(Isa isa) {
  if (!cpu_supports(isa))
    core::throw_internal("kernel level {} requested but this CPU does not support it",
                         isa_name(isa));
  static const KernelTable tables[kIsaCount] = {build(Isa::kRef), build(Isa::kAvx2),
                                                build(Isa::kAvx2Vnni), build(Isa::kAvx512),
                                                build(Isa::kAvx512Vnni)};
  return tables[static_cast<int>(isa)];
}

}  // namespace vitopt::runtime::kernels
