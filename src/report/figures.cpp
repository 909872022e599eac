// Training curves and activation-histogram figures (see figures.h).
#include "report/figures.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "report/gnuplot.h"

namespace vitopt::report {

namespace {

std::string q(const std::string& s) { return fmt::format("'{}'", gnuplot_quote(s)); }

// A JSON number as gnuplot data, '?' (missing) when absent.
std::string num(const nlohmann::json& rec, const char* key, double scale = 1) {
  if (!rec.contains(key) || !rec[key].is_number()) return "?";
  return fmt::format("{}", rec[key].get<double>() * scale);
}

}  // namespace

std::string training_curves_script(const std::vector<nlohmann::json>& epochs,
                                   const std::string& png) {
  std::string s = fmt::format(
      "set terminal {} size 900,900 noenhanced\nset output {}\nset datafile missing '?'\n"
      "set grid\nset key outside right top\n$d << EOD\n",
      png_terminal(), q(png));
  bool val = false;
  for (const auto& e : epochs) {
    val |= e.contains("val_top1");
    s += fmt::format("{} {} {} {} {} {}\n", num(e, "epoch"), num(e, "train_loss"),
                     num(e, "val_loss"), num(e, "train_top1", 100), num(e, "val_top1", 100),
                     num(e, "lr"));
  }
  s += "EOD\nset multiplot layout 3,1 title 'Training curves (metrics.jsonl)'\n"
       "set xlabel 'epoch'\nset ylabel 'loss'\n";
  s += "plot $d using 1:2 with linespoints pt 7 title 'train loss'";
  if (val) s += ", $d using 1:3 with linespoints pt 7 title 'validation loss'";
  s += "\nset ylabel 'top-1 (%)'\nplot $d using 1:4 with linespoints pt 7 title 'train top-1'";
  if (val) s += ", $d using 1:5 with linespoints pt 7 title 'validation top-1'";
  s += "\nset ylabel 'learning rate (end of epoch)'\nset format y '%.1e'\n"
       "plot $d using 1:6 with linespoints pt 7 title 'lr'\nunset multiplot\n";
  return s;
}

std::string activation_histograms_script(const nlohmann::json& histograms, const std::string& png) {
  const int n = static_cast<int>(histograms.size());
  const int cols = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))));
  const int rows = std::max(1, (n + cols - 1) / cols);
  std::string s = fmt::format(
      "set terminal {} size {},{} noenhanced\nset output {}\nset grid\nset key off\n"
      "set logscale y\nset style fill solid 0.7 noborder\nset tics font ',7'\n"
      "set title font ',8'\n",
      png_terminal(), 260 * cols + 40, 200 * rows + 60, q(png));
  int i = 0;
  std::string plots;
  for (const auto& [layer, h] : histograms.items()) {
    const double lo = h.at("min").get<double>(), hi = h.at("max").get<double>();
    const int bins = h.at("bins").get<int>();
    const auto& counts = h.at("counts");
    const double w = (hi > lo ? hi - lo : 1.0) / bins;
    s += fmt::format("$h{} << EOD\n", i);
    for (int b = 0; b < bins && b < static_cast<int>(counts.size()); ++b)
      s += fmt::format("{} {}\n", lo + (b + 0.5) * w, counts[b].get<int64_t>() + 1);  // +1: log y
    s += "EOD\n";
    // Dashed red lines: the 0.01% / 99.99% percentiles, the percentile observer's clip range.
    std::string marks;
    if (h.contains("p0.01") && h.contains("p99.99"))
      for (const char* key : {"p0.01", "p99.99"})
        marks += fmt::format("set arrow from {0}, graph 0 to {0}, graph 1 nohead dt 2 lc rgb "
                             "'#d62728'\n",
                             h[key].get<double>());
    plots += marks;
    plots += fmt::format("set title {}\nset xrange [{}:{}]\nplot $h{} using 1:2 with boxes lc rgb "
                         "'#1f77b4'\nunset arrow\n",
                         q(fmt::format("{} [{:.3g}, {:.3g}]", layer, lo, hi)), lo,
                         hi > lo ? hi : lo + 1, i);
    ++i;
  }
  s += fmt::format(
      "set multiplot layout {},{} title {}\n", rows, cols,
      q("Linear-layer input activations on the calibration images (count + 1, log scale)"));
  return s + plots + "unset multiplot\n";
}

std::filesystem::path render_training_curves(const std::filesystem::path& run_dir) {
  const auto log = run_dir / "metrics.jsonl";
  std::vector<nlohmann::json> epochs;
  std::istringstream in(core::read_file_text(log));
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    epochs.push_back(core::json_parse(line, fmt::format("{} line {}", log.string(), line_no)));
  }
  if (epochs.empty()) core::throw_input("{}: no epochs logged yet", log.string());
  const auto dir = run_dir / "plots";
  std::filesystem::create_directories(dir);
  const auto script = training_curves_script(epochs, "training.png");
  core::write_file_atomic(dir / "training.gp", script);
  run_gnuplot(script, dir);
  return dir / "training.png";
}

}  // namespace vitopt::report
