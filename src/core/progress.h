// Progress reporting for long work: a redrawn one-line bar on a TTY, plain lines (at most one per
// `plain_interval_s`) otherwise, nothing with quiet. Shows done/total, rate, ETA and free text
// such as "loss 0.412 acc 86.1%".
#pragma once

#include <cstdint>
#include <string>

#include "core/timer.h"

namespace vitopt::core {

struct ProgressOptions {
  bool quiet = false;
  int tty = -1;                   // -1: detect from stderr, 0: plain lines, 1: bar
  double plain_interval_s = 15;   // plain mode: minimum seconds between lines
  std::string unit = "img";       // what the rate counts, e.g. "img" -> "812 img/s"
};

class Progress {
 public:
  Progress(std::string label, int64_t total, ProgressOptions options = {});
  ~Progress();
  // `done` steps of `total`; `items` processed so far (for the rate); free text after the bar.
  void update(int64_t done, int64_t items, const std::string& extra = "");
  // Ends the bar (newline on a TTY) and prints `summary` as a plain line unless quiet.
  void finish(const std::string& summary = "");

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_;
  ProgressOptions options_;
  bool tty_;
  Stopwatch clock_;
  double last_draw_ = -1e9;
  int64_t done_ = 0;
  int64_t items_ = 0;
  std::string extra_;
  bool finished_ = false;
};

std::string format_duration(double seconds);

}  // namespace vitopt::core
