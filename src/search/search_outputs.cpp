// Search CSVs and figure (see search_outputs.h).
#include "search/search_outputs.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "report/front_figure.h"

namespace vitopt::search {
namespace {

const std::vector<std::string> kColumns = {"top1", "latency-ms", "latency-iqr-ms", "params",
                                           "macs", "size-mb",    "memory-mb"};

std::string metric_cells(const nlohmann::json& m) {
  std::string s;
  for (const auto& c : kColumns) {
    s += ",";
    if (m.contains(c) && m[c].is_number()) s += fmt::format("{:.6g}", m[c].get<double>());
  }
  return s;
}

std::string header(const std::string& lead) {
  std::string s = lead;
  for (const auto& c : kColumns) s += "," + c;
  return s;
}

// Non-dominated (higher accuracy, lower cost) subset of points, by cost.
std::vector<std::pair<double, double>> front_of(std::vector<std::pair<double, double>> pts) {
  std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  });
  std::vector<std::pair<double, double>> out;
  for (const auto& p : pts)
    if (out.empty() || p.second > out.back().second) out.push_back(p);
  return out;
}

}  // namespace

std::string objectives_tag(const std::vector<std::string>& objectives) {
  std::string s;
  for (const auto& o : objectives) s += (s.empty() ? "" : "_") + o;
  return s;
}

void write_search_outputs(const std::filesystem::path& dir,
                          const std::vector<std::string>& objectives, const EvolutionState& state,
                          const std::vector<std::string>& front,
                          const std::vector<SingleResult>& singles, const Metrics& baseline,
                          bool quiet) {
  const std::set<std::string> on_front(front.begin(), front.end());
  std::string all = header("key,generation,feasible,violation,on_front") + "\n";
  for (const auto& [key, e] : state.archive) {
    all += fmt::format("{},{},{},{:.6g},{}", key, e.generation,
                       e.evaluation.score.violation == 0 ? 1 : 0, e.evaluation.score.violation,
                       on_front.count(key) ? 1 : 0);
    all += metric_cells(e.evaluation.metrics) + "\n";
  }
  core::write_file_atomic(dir / "candidates.csv", all);
  const std::string tag = objectives_tag(objectives);
  std::string fr = header("key,generation") + "\n";
  for (const auto& key : front) {
    const auto& e = state.archive.at(key);
    fr += fmt::format("{},{}", key, e.generation) + metric_cells(e.evaluation.metrics) + "\n";
  }
  core::write_file_atomic(dir / fmt::format("arch_pareto_{}.csv", tag), fr);
  std::string si = header("technique,setting,key,feasible") + "\n";
  for (const auto& s : singles) {
    si += fmt::format("{},{},{},{}", s.technique, s.setting, s.key,
                      s.evaluation.score.violation == 0 ? 1 : 0) +
          metric_cells(s.evaluation.metrics) + "\n";
  }
  core::write_file_atomic(dir / "single_techniques.csv", si);

  // Figure: accuracy against the first cost objective.
  std::string cost = "latency-ms";
  for (const auto& o : objectives)
    if (o != "top1") {
      cost = o;
      break;
    }
  auto point = [&](const nlohmann::json& m) -> std::optional<std::pair<double, double>> {
    if (!m.contains("top1") || !m.contains(cost)) return std::nullopt;
    return std::make_pair(m[cost].get<double>(), 100 * m["top1"].get<double>());
  };
  std::vector<report::FrontSeries> series;
  report::FrontSeries cloud{"evaluated candidates", {}, report::FrontSeries::Style::Cloud};
  report::FrontSeries searched{"search front", {}, report::FrontSeries::Style::Front};
  for (const auto& [key, e] : state.archive) {
    const auto p = point(e.evaluation.metrics);
    if (!p) continue;
    cloud.points.push_back(*p);
    if (on_front.count(key)) searched.points.push_back(*p);
  }
  searched.points = front_of(searched.points);
  series.push_back(cloud);
  series.push_back(searched);
  std::map<std::string, std::vector<std::pair<double, double>>> by_technique;
  for (const auto& s : singles)
    if (const auto p = point(s.evaluation.metrics)) by_technique[s.technique].push_back(*p);
  for (auto& [tech, pts] : by_technique)
    series.push_back({tech + " alone", front_of(pts), report::FrontSeries::Style::Front});
  if (baseline.count("top1") && baseline.count(cost))
    series.push_back({"baseline",
                      {{baseline.at(cost), 100 * baseline.at("top1")}},
                      report::FrontSeries::Style::Baseline});
  try {
    report::render_front_figure(series, cost, "held-out top-1 (%)",
                                "architecture search: front vs single techniques",
                                dir / fmt::format("arch_pareto_{}.png", tag));
  } catch (const core::InternalError& e) {
    if (!quiet) fmt::print(stderr, "search: figure not drawn: {}\n", e.what());
  }
}

}  // namespace vitopt::search
