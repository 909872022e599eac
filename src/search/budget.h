// Budgets and objectives of the architecture search (no LibTorch). A candidate's metrics are a
// name -> value map with these names: "top1" (fraction, higher is better), "params", "macs"
// (per image), "size-mb" (model file, MB = 1e6 bytes), "latency-ms" (runtime, given batch and
// threads), "memory-mb" (runtime peak allocated bytes / 1e6).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "search/nsga2.h"

namespace vitopt::search {

using Metrics = std::map<std::string, double>;

// The cost metric names budgets accept, in display order.
const std::vector<std::string>& budget_metrics();

// One limit: the metric must be <= value (absolute, or a fraction of the baseline's when
// relative, written "25%").
struct Limit {
  std::string metric;
  double value = 0;
  bool relative = false;
};

// A budget: every limit must hold. Text: "params=1.5M,latency-ms=0.3,memory-mb=20,size-mb=1",
// values with optional k/M/G suffixes (1e3/1e6/1e9) or a trailing % (of the baseline). Aliases:
// "latency" = "latency-ms", "size" = "size-mb", "memory" = "memory-mb". Empty text: no limits.
// InputError naming `source` (e.g. "--budget") and the bad entry (unknown metric listing the known
// ones, value not a positive number, a metric twice).
struct Budget {
  std::string text;  // as given
  std::vector<Limit> limits;
  static Budget parse(const std::string& text, const std::string& source);
  // Limits with relative ones turned absolute against `baseline` (InputError if it lacks one).
  Budget resolved(const Metrics& baseline) const;
  // Sum over limits of max(0, value / limit - 1) (0: within budget). Absolute limits only;
  // InputError if a metric is missing from `m`.
  double violation(const Metrics& m) const;
  bool satisfied(const Metrics& m) const { return violation(m) == 0; }
  // Names of the metrics the budget limits.
  std::vector<std::string> metrics() const;
};

// Objectives: "top1,latency" -> {"top1", "latency-ms"} (aliases as above; "top1" and every
// budget metric allowed; at least one, no repeats). InputError naming `source` otherwise.
std::vector<std::string> parse_objectives(const std::string& text, const std::string& source);

// The minimized values NSGA-II ranks by: 1 - top1 for "top1", the metric itself otherwise.
std::vector<double> objective_values(const std::vector<std::string>& objectives, const Metrics& m);

// A Scored for these objectives and budgets: violation = the smallest violation over `budgets`
// (a candidate is feasible if it meets any one of them; no budgets: always feasible).
Scored score(const std::vector<std::string>& objectives, const std::vector<Budget>& budgets,
             const Metrics& m);

}  // namespace vitopt::search
