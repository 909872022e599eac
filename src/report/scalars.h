// The flat view of one model's metrics: every scalar under a stable name (used for the CSV
// columns, the baseline deltas and the summary tables). Names are documented in docs/metrics.md.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/metrics_schema.h"

namespace vitopt::report {

using Scalars = std::vector<std::pair<std::string, std::optional<double>>>;

// Always the same names in the same order; a value is nullopt when undefined for this model.
Scalars scalar_metrics(const ModelMetrics& m);

// metrics.csv: one header row, one row per model (RFC 4180 quoting, empty cell for null).
std::string metrics_csv(const MetricsReport& r);

}  // namespace vitopt::report
