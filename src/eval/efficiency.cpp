// Latency statistics, RSS high-water mark and RAPL energy (parameter counts: io/model_counts).
#include "eval/efficiency.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

namespace vitopt::eval {

namespace {

// A "VmXXX:   1234 kB" line of /proc/self/status, in bytes.
std::optional<int64_t> status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      try {
        return static_cast<int64_t>(std::stoll(line.substr(key.size() + 1))) * 1024;
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

std::optional<double> read_number(const std::filesystem::path& p) {
  std::ifstream f(p);
  double v = 0;
  if (f >> v) return v;
  return std::nullopt;
}

}  // namespace

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(samples.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, samples.size() - 1);
  return samples[lo] + (pos - static_cast<double>(lo)) * (samples[hi] - samples[lo]);
}

report::Latency latency_stats(const std::vector<double>& ms, int warmup, int64_t batch) {
  report::Latency l;
  l.batch = batch;
  l.warmup = warmup;
  l.runs = static_cast<int>(ms.size());
  if (ms.empty()) return l;
  l.p50_ms = percentile(ms, 50);
  l.p90_ms = percentile(ms, 90);
  l.p99_ms = percentile(ms, 99);
  l.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  l.min_ms = *std::min_element(ms.begin(), ms.end());
  l.max_ms = *std::max_element(ms.begin(), ms.end());
  return l;
}

bool RssProbe::reset(std::string* note) {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
  if (f) f.flush();
  if (!f) {
    if (note != nullptr)
      *note = "cannot write /proc/self/clear_refs: the peak covers the whole process so far";
    return false;
  }
  if (note != nullptr) *note = "VmHWM of the process, reset before this model";
  return true;
}

std::optional<int64_t> RssProbe::peak_bytes() { return status_kb("VmHWM"); }
std::optional<int64_t> RssProbe::current_bytes() { return status_kb("VmRSS"); }

EnergyMeter::EnergyMeter() {
  const std::filesystem::path root = "/sys/class/powercap";
  std::error_code ec;
  if (!std::filesystem::exists(root, ec)) {
    source_ =
        "unavailable: /sys/class/powercap does not exist (no RAPL powercap driver, e.g. a "
        "virtual machine or a non-Intel/AMD CPU)";
    return;
  }
  std::vector<std::string> names, unreadable;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    // Package zones only ("intel-rapl:0"), not sub-zones ("intel-rapl:0:0") they already include.
    if (name.rfind("intel-rapl:", 0) != 0 || std::count(name.begin(), name.end(), ':') != 1)
      continue;
    Zone z;
    z.energy_file = entry.path() / "energy_uj";
    const auto now = read_number(z.energy_file);
    if (!now) {
      unreadable.push_back(z.energy_file.string());
      continue;
    }
    z.last_uj = *now;
    z.max_range_uj = read_number(entry.path() / "max_energy_range_uj").value_or(0);
    zones_.push_back(z);
    names.push_back(entry.path().string());
  }
  if (zones_.empty()) {
    source_ = unreadable.empty()
                  ? "unavailable: no intel-rapl package zone under /sys/class/powercap"
                  : fmt::format(
                        "unavailable: {} not readable (energy_uj is root-only since "
                        "Linux 5.10; run as root or relax its permissions)",
                        fmt::join(unreadable, ", "));
    return;
  }
  available_ = true;
  source_ = fmt::format("RAPL package energy: {}", fmt::join(names, ", "));
}

double EnergyMeter::joules() {
  for (auto& z : zones_) {
    const auto now = read_number(z.energy_file);
    if (!now) continue;
    double delta = *now - z.last_uj;
    if (delta < 0 && z.max_range_uj > 0) delta += z.max_range_uj;  // counter wrapped
    if (delta > 0) total_j_ += delta * 1e-6;
    z.last_uj = *now;
  }
  return total_j_;
}

}  // namespace vitopt::eval
