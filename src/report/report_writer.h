// Writes a MetricsReport as files: metrics.json, metrics.csv, plots/ (gnuplot), report.md and a
// self-contained report.html (plots embedded as base64 PNG data URIs). Markdown and HTML come from
// one document model so they always say the same thing.
#pragma once

#include <filesystem>
#include <string>

#include "report/metrics_schema.h"

namespace vitopt::report {

// Writes everything into `dir` (created) and fills `r.plots` ("name" -> "plots/<name>.png").
// metrics.json is written before the plots (so a plotting failure still leaves the numbers) and
// again with the plot list afterwards. All files are written atomically.
void write_report_files(MetricsReport& r, const std::filesystem::path& dir, bool quiet = false);

// The two report renderings; `dir` is where plots/ lives (the HTML embeds those files).
std::string report_markdown(const MetricsReport& r);
std::string report_html(const MetricsReport& r, const std::filesystem::path& dir);

std::string base64_encode(const std::string& bytes);

}  // namespace vitopt::report
