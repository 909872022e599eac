// Search front figure (see front_figure.h).
#include "report/front_figure.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/file_util.h"
#include "report/gnuplot.h"

namespace vitopt::report {

std::string front_figure_script(const std::vector<FrontSeries>& series, const std::string& xlabel,
                                const std::string& ylabel, const std::string& title,
                                const std::string& png) {
  std::string s = fmt::format("set terminal {} size 1000,700\nset output '{}'\n", png_terminal(),
                              gnuplot_quote(png));
  s += fmt::format("set title '{}'\nset xlabel '{}'\nset ylabel '{}'\n", gnuplot_quote(title),
                   gnuplot_quote(xlabel), gnuplot_quote(ylabel));
  s += "set grid\nset key bottom right\n";
  std::vector<std::string> plots;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& se = series[i];
    if (se.points.empty()) continue;
    auto pts = se.points;
    std::sort(pts.begin(), pts.end());  // lines run along the cost axis
    s += fmt::format("$s{} << EOD\n", i);
    for (const auto& [x, y] : pts) s += fmt::format("{:.9g} {:.9g}\n", x, y);
    s += "EOD\n";
    const char* style =
        se.style == FrontSeries::Style::Cloud      ? "points pt 7 ps 0.5 lc rgb '#bbbbbb'"
        : se.style == FrontSeries::Style::Baseline ? "points pt 3 ps 2.5 lc rgb 'black'"
                                                   : "linespoints pt 7 ps 1 lw 2";
    plots.push_back(
        fmt::format("$s{} using 1:2 with {} title '{}'", i, style, gnuplot_quote(se.title)));
  }
  if (plots.empty()) plots.push_back("NaN notitle");
  s += "plot ";
  for (size_t i = 0; i < plots.size(); ++i) s += (i ? ", \\\n     " : "") + plots[i];
  return s + "\n";
}

void render_front_figure(const std::vector<FrontSeries>& series, const std::string& xlabel,
                         const std::string& ylabel, const std::string& title,
                         const std::filesystem::path& png) {
  const auto script = front_figure_script(series, xlabel, ylabel, title, png.filename().string());
  core::write_file_atomic(png.string() + ".gp", script);
  run_gnuplot(script, png.parent_path().empty() ? "." : png.parent_path());
}

}  // namespace vitopt::report
