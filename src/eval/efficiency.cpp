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

namespace {

std::string read_word(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::string w;
  f >> w;
  return w;
}

bool in_virtual_machine(const std::filesystem::path& cpuinfo) {
  std::ifstream f(cpuinfo);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) return line.find(" hypervisor") != std::string::npos;
  return false;
}

// A RAPL zone folder: "intel-rapl:0" (package or psys), "intel-rapl:0:2" (sub-zone), also
// "amd-rapl:..." on kernels that name AMD's zones so.
bool is_rapl_zone(const std::string& name) {
  return name.rfind("intel-rapl:", 0) == 0 || name.rfind("amd-rapl:", 0) == 0;
}

}  // namespace

EnergyMeter::EnergyMeter() : EnergyMeter("/sys/class/powercap", "/proc/cpuinfo") {}

EnergyMeter::EnergyMeter(const std::filesystem::path& root, const std::filesystem::path& cpuinfo) {
  std::error_code ec;
  const bool vm = in_virtual_machine(cpuinfo);
  const std::string vm_note =
      vm ? " (this is a virtual machine: the hypervisor flag is set, and hypervisors rarely pass "
           "RAPL through)"
         : "";
  if (!std::filesystem::exists(root, ec)) {
    source_ = fmt::format("unavailable: {} does not exist, so no RAPL energy counters{}", root.string(),
                          vm ? vm_note : " (no powercap driver, or a CPU without RAPL)");
    return;
  }
  // sysfs lists every zone, sub-zones too ("intel-rapl:0:1"), as a link directly under root.
  std::vector<std::filesystem::path> dirs;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec))
    if (is_rapl_zone(entry.path().filename().string())) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<std::string> packages, drams, denied;
  for (const auto& dir : dirs) {
    const std::string name = read_word(dir / "name");
    const bool package = name.rfind("package", 0) == 0;
    const bool dram = name == "dram";
    if (!package && !dram) continue;  // core/uncore are inside the package; psys covers more
    Zone z;
    z.dram = dram;
    z.energy_file = dir / "energy_uj";
    std::ifstream probe(z.energy_file);
    const auto now = read_number(z.energy_file);
    if (!probe || !now) {
      denied.push_back(z.energy_file.string());
      continue;
    }
    z.last_uj = *now;
    z.max_range_uj = read_number(dir / "max_energy_range_uj").value_or(0);
    zones_.push_back(z);
    (dram ? drams : packages).push_back(fmt::format("{} ({})", dir.filename().string(), name));
  }
  if (packages.empty()) {
    zones_.clear();
    if (!denied.empty())
      source_ = fmt::format(
          "unavailable: permission denied reading {} (energy_uj is root-only since Linux 5.10; "
          "run as root or make it readable){}",
          fmt::join(denied, ", "), vm_note);
    else
      source_ = fmt::format("unavailable: no RAPL package zone under {}{}", root.string(),
                            vm ? vm_note : "");
    return;
  }
  available_ = true;
  has_dram_ = !drams.empty();
  includes_ = fmt::format(
      "{}: the whole socket's cores and uncore (caches, memory controller), including anything "
      "else running on it{}",
      fmt::join(packages, " + "),
      has_dram_ ? fmt::format("; DRAM reported apart from {}", fmt::join(drams, " + "))
                : "; no DRAM domain on this CPU, so memory energy is not included");
  source_ = fmt::format("RAPL: {}{}", fmt::join(packages, ", "),
                        has_dram_ ? ", " + fmt::format("{}", fmt::join(drams, ", ")) : "");
}

void EnergyMeter::sample() {
  for (auto& z : zones_) {
    const auto now = read_number(z.energy_file);
    if (!now) continue;
    double delta = *now - z.last_uj;
    if (delta < 0 && z.max_range_uj > 0) delta += z.max_range_uj;  // counter wrapped
    if (delta > 0) (z.dram ? dram_j_ : package_j_) += delta * 1e-6;
    z.last_uj = *now;
  }
}

double EnergyMeter::joules() {
  sample();
  return package_j_;
}

double EnergyMeter::dram_joules() {
  sample();
  return dram_j_;
}

}  // namespace vitopt::eval
