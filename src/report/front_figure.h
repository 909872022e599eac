// The accuracy / cost scatter of a search: every evaluated candidate as faint points, fronts
// (the search's, each single technique's) as lines with markers, the baseline as one star. One
// gnuplot script with the data inline, rendered next to its PNG. No computation here.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace vitopt::report {

struct FrontSeries {
  std::string title;
  std::vector<std::pair<double, double>> points;  // (cost, accuracy %)
  enum class Style { Cloud, Front, Baseline } style = Style::Front;
};

std::string front_figure_script(const std::vector<FrontSeries>& series, const std::string& xlabel,
                                const std::string& ylabel, const std::string& title,
                                const std::string& png);

// Writes <png>.gp and renders <png> (InternalError if gnuplot fails).
void render_front_figure(const std::vector<FrontSeries>& series, const std::string& xlabel,
                         const std::string& ylabel, const std::string& title,
                         const std::filesystem::path& png);

}  // namespace vitopt::report
