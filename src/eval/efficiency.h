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

// Cumulative energy from RAPL powercap zones (Intel, and AMD through the same driver):
// package zones ("package-N": cores + uncore of the socket, whatever runs on it) summed, and the
// DRAM domain apart where the CPU exposes one; counter wrap-around handled. available() is false
// with the reason when nothing is readable: no powercap tree (not present, or a virtual machine
// that does not pass RAPL through), or energy_uj not readable (permission: root-only since 5.10).
class EnergyMeter {
 public:
  EnergyMeter();
  // For tests: a fake powercap tree and cpuinfo file.
  EnergyMeter(const std::filesystem::path& powercap_root, const std::filesystem::path& cpuinfo);
  bool available() const { return available_; }
  const std::string& source() const { return source_; }  // zones read, or why unavailable
  const std::string& includes() const { return includes_; }  // domains in joules(), dram apart
  bool has_dram() const { return has_dram_; }
  double joules();       // package energy: monotonic total since construction
  double dram_joules();  // DRAM energy: monotonic total since construction (0 without DRAM)

 private:
  struct Zone {
    std::filesystem::path energy_file;
    bool dram = false;
    double max_range_uj = 0;
    double last_uj = 0;
  };
  void sample();
  std::vector<Zone> zones_;
  double package_j_ = 0, dram_j_ = 0;
  bool available_ = false, has_dram_ = false;
  std::string source_, includes_;
};

}  // namespace vitopt::eval
