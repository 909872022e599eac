#include "compress/circuits/edge_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/progress.h"

namespace vitopt::circuits {

EdgeAcdcResult acdc_edges(EdgeModel& model, double threshold, bool quiet) {
  if (!(threshold >= 0)) core::throw_input("--threshold: expected a value >= 0, got {}", threshold);
  const auto& g = model.graph();
  EdgeAcdcResult res;
  res.mask = full_edge_mask(g);
  res.metric = model.metric(res.mask);
  res.scores.assign(g.readers.size() * g.writers.size(), 0.0);
  core::ProgressOptions popts;
  popts.quiet = quiet;
  popts.unit = "edge";
  core::Progress progress(fmt::format("  acdc edges {}", threshold), g.edges(), popts);
  int64_t done = 0;
  auto writes = [&](int w) {
    for (size_t r = 0; r < g.readers.size(); ++r)
      if (w < g.readers[r].reads && res.mask[r][static_cast<size_t>(w)]) return true;
    return false;
  };
  for (size_t ri = g.readers.size(); ri-- > 0;) {
    const auto& reader = g.readers[ri];
    auto& row = res.mask[ri];
    if (reader.writer >= 0 && !writes(reader.writer)) {  // its output reaches nothing
      std::fill(row.begin(), row.end(), 0);
      done += reader.reads;
      continue;
    }
    for (int w = reader.reads - 1; w >= 0; --w, ++done) {
      row[static_cast<size_t>(w)] = 0;
      const double m = model.metric(res.mask, reader.block);
      ++res.forwards;
      res.scores[ri * g.writers.size() + static_cast<size_t>(w)] = m - res.metric;
      const bool remove = m - res.metric < threshold;
      res.steps.push_back(
          {g.writers[static_cast<size_t>(w)].name + " -> " + reader.name, m, remove});
      if (remove)
        res.metric = m;
      else
        row[static_cast<size_t>(w)] = 1;
      progress.update(done + 1, done + 1, fmt::format("metric {:.4g}", res.metric));
    }
  }
  int kept = 0;
  for (const auto& row : res.mask) kept += static_cast<int>(std::count(row.begin(), row.end(), 1));
  progress.finish(
      fmt::format("  acdc edges threshold {}: {} of {} edges kept, metric {:.4g}, {} "
                  "forwards",
                  threshold, kept, g.edges(), res.metric, res.forwards));
  return res;
}

EdgeMask keep_top_edges(const EdgeGraph& g, const std::vector<double>& scores, double keep_ratio,
                        Ranking ranking) {
  if (!(keep_ratio > 0 && keep_ratio <= 1))
    core::throw_input("--keep-ratio: expected a fraction in (0, 1], got {}", keep_ratio);
  const size_t W = g.writers.size();
  auto mask = full_edge_mask(g);
  std::map<int, std::vector<size_t>> groups;  // edge index r * W + w, by reader kind or all
  for (size_t r = 0; r < g.readers.size(); ++r)
    for (int w = 0; w < g.readers[r].reads; ++w)
      groups[ranking == Ranking::PerType ? static_cast<int>(g.readers[r].kind) : 0].push_back(
          r * W + static_cast<size_t>(w));
  for (auto& [kind, idx] : groups) {
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return std::abs(scores[a]) > std::abs(scores[b]); });
    const auto keep =
        static_cast<size_t>(std::lround(keep_ratio * static_cast<double>(idx.size())));
    for (size_t i = std::max<size_t>(keep, 1); i < idx.size(); ++i)
      mask[idx[i] / W][idx[i] % W] = 0;
  }
  return mask;
}

}  // namespace vitopt::circuits
