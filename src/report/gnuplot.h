// Running gnuplot: the one place that starts the external plotting program. A plot is a complete
// gnuplot script (data inline as datablocks) that writes its own output file; nothing here knows
// what is plotted (see plots.h for the report's figures).
#pragma once

#include <filesystem>
#include <string>

namespace vitopt::report {

// Runs gnuplot on `script` (which writes its own output, e.g. set output 'x.png') in `workdir`;
// throws core::InternalError with gnuplot's stderr if it fails. gnuplot is found on PATH.
void run_gnuplot(const std::string& script, const std::filesystem::path& workdir);

// Escapes a string for a gnuplot single-quoted literal ('it''s' for "it's"; newlines -> spaces),
// without the surrounding quotes.
std::string gnuplot_quote(const std::string& s);

// The best PNG terminal this gnuplot has: "pngcairo" when built with cairo, else "png" (libgd).
// Probed once per process; throws InternalError if gnuplot is missing.
const std::string& png_terminal();

}  // namespace vitopt::report
