// Whether a factor pair runs faster than the dense Linear on the runtime, measured with the
// runtime's own packed fp32 kernels at the level this CPU runs (VITOPT_ISA respected): the
// factorize method keeps a layer low-rank only where this says so (DESIGN: speed claims come from
// the deployment engine). Timings alternate the two forms in rounds so machine noise hits both.
// Legend: m rows (tokens x batch), in/out widths, r rank.
#pragma once

#include <string>

namespace vitopt::lowrank {

struct LinearSpeed {
  double dense_us = 0;     // median over rounds of one dense (m x in) @ (in x out)
  double factored_us = 0;  // the same through (in x r) then (r x out)
  double ratio() const { return dense_us > 0 ? factored_us / dense_us : 0; }
  bool faster() const { return factored_us < dense_us; }
};

// threads: the runtime's pool size (0: every available core), rounds >= 1.
LinearSpeed time_linear(int m, int in, int out, int rank, int threads, int rounds = 11);

// The kernel level the timings ran at ("avx512", ...), for reports.
std::string timing_isa();

}  // namespace vitopt::lowrank
