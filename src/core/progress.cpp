#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace vitopt::core {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--:--";
  const auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::string label, int64_t total, ProgressOptions options)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), options_(std::move(options)) {
  tty_ = options_.tty < 0 ? ::isatty(STDERR_FILENO) != 0 : options_.tty == 1;
}

Progress::~Progress() {
  if (!finished_ && tty_ && !options_.quiet && last_draw_ > -1e9) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, int64_t items, const std::string& extra) {
  done_ = done;
  items_ = items;
  extra_ = extra;
  draw(done >= total_);
}

void Progress::draw(bool force) {
  if (options_.quiet) return;
  const double now = clock_.seconds();
  const double interval = tty_ ? 0.1 : options_.plain_interval_s;
  if (!force && now - last_draw_ < interval) return;
  last_draw_ = now;
  const double frac = std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
  const double rate = now > 0 ? static_cast<double>(items_) / now : 0.0;
  const double eta = frac > 0 ? now * (1.0 - frac) / frac : -1;
  const std::string stats = fmt::format("{}/{} {:.0f} {}/s ETA {} {}", done_, total_, rate,
                                        options_.unit, format_duration(eta), extra_);
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s", label_.c_str(), bar.c_str(), frac * 100,
                 stats.c_str());
  } else {
    std::fprintf(stderr, "%s %3.0f%% %s\n", label_.c_str(), frac * 100, stats.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& summary) {
  if (finished_) return;
  finished_ = true;
  if (options_.quiet) return;
  if (tty_) std::fputc('\n', stderr);
  if (!summary.empty()) std::fprintf(stderr, "%s %s\n", label_.c_str(), summary.c_str());
  std::fflush(stderr);
}

}  // namespace vitopt::core
