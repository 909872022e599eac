// Efficiency measurements that do not depend on the engine: latency statistics, the process's peak
// memory (RSS high-water mark) and energy from RAPL. Every probe says why when it cannot measure;
// nothing is estimated. Parameter/MAC counts from a config live in io/model_counts.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "report/metrics_schema.h"

namespace vitopt::eval {

// p in [0, 100] of unsorted samples, linear interpolation between closest ranks (numpy default).
double percentile(std::vector<double> samples, double p);
// p50/p90/p99/mean/min/max of per-run milliseconds.
report::Latency latency_stats(const std::vector<double>& ms, int warmup, int64_t batch);

// Process RSS high-water mark: reset() asks the kernel to restart it (writes "5" to
// /proc/self/clear_refs); peak_bytes() reads VmHWM from /proc/self/status.
struct RssProbe {
  // True if the mark was reset; otherwise `note` says why (the mark then covers earlier work).
  static bool reset(std::string* note);
  static std::optional<int64_t> peak_bytes();
  static std::optional<int64_t> current_bytes();  // VmRSS
};

// Cumulative package energy from RAPL (/sys/class/powercap/intel-rapl:*/energy_uj, summed over
// packages, wrap-around handled). available() is false with a reason when nothing is readable.
class EnergyMeter {
 public:
  EnergyMeter();
  bool available() const { return available_; }
  const std::string& source() const { return source_; }  // zones read, or why unavailable
  double joules();                                       // monotonic total since construction

 private:
  struct Zone {
    std::filesystem::path energy_file;
    double max_range_uj = 0;
    double last_uj = 0;
  };
  std::vector<Zone> zones_;
  double total_j_ = 0;
  bool available_ = false;
  std::string source_;
};

}  // namespace vitopt::eval
