// Figure scripts. Labels go into datablocks as double-quoted strings (double quotes in a label
// become single quotes) and titles through gnuplot_quote; "noenhanced" keeps underscores literal.
#include "report/plots.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "core/file_util.h"
#include "report/gnuplot.h"

namespace vitopt::report {

namespace {

namespace fs = std::filesystem;

std::string q(const std::string& s) {
  std::string out = "'";  // appended, not operator+: GCC 12 warns falsely (-Wrestrict) on that
  out += gnuplot_quote(s);
  out += '\'';
  return out;
}

std::string data_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) out += (ch == '"' ? '\'' : (ch == '\n' ? ' ' : ch));
  return out + "\"";
}

std::string header(const std::string& file, int w, int h, const std::string& title) {
  return fmt::format(
      "set terminal {} size {},{} noenhanced\nset output {}\nset title {}\n"
      "set datafile missing '?'\nset key outside right top\nset grid ytics lc rgb '#dddddd'\n",
      png_terminal(), w, h, q(file), q(title));
}

// xtics of model labels: rotated when there are many or they are long.
std::string label_tics(const MetricsReport& r) {
  size_t longest = 0;
  for (const auto& m : r.models) longest = std::max(longest, m.label.size());
  return longest > 10 || r.models.size() > 4 ? "set xtics rotate by -30 left\n" : "";
}

const char* kBars =
    "set style data histograms\nset style histogram clustered gap 1\n"
    "set style fill solid 0.85 border -1\nset boxwidth 0.9\n";

struct Plot {
  std::string name, script;
};

Plot accuracy_plot(const MetricsReport& r) {
  std::string s = header("accuracy.png", 900, 500, "Accuracy per model") + kBars + label_tics(r);
  s += "set ylabel 'percent'\nset yrange [0:105]\n$d << EOD\n";
  for (const auto& m : r.models)
    s += fmt::format("{} {} {} {}\n", data_string(m.label), 100 * m.classification.top1,
                     100 * m.classification.top5, 100 * m.classification.macro_f1);
  s += "EOD\nplot $d using 2:xtic(1) title 'top-1', $d using 3 title 'top-5', "
       "$d using 4 title 'macro F1'\n";
  return {"accuracy", s};
}

Plot latency_plot(const MetricsReport& r) {
  std::string s = header("latency.png", 900, 500, "Latency at batch 1") + kBars + label_tics(r);
  s += "set ylabel 'ms'\nset yrange [0:*]\n$d << EOD\n";
  for (const auto& m : r.models) {
    const auto& l = m.efficiency.latency;
    s += fmt::format("{} {} {} {}\n", data_string(m.label), l.p50_ms, l.p90_ms, l.p99_ms);
  }
  s += "EOD\nplot $d using 2:xtic(1) title 'p50', $d using 3 title 'p90', $d using 4 title 'p99'\n";
  return {"latency", s};
}

Plot throughput_plot(const MetricsReport& r) {
  const int64_t batch = r.models.empty() ? 0 : r.models.front().efficiency.throughput.batch;
  std::string s = header("throughput.png", 900, 500, fmt::format("Throughput at batch {}", batch)) +
                  kBars + label_tics(r);
  s += "set ylabel 'images / s'\nset yrange [0:*]\n$d << EOD\n";
  for (const auto& m : r.models)
    s += fmt::format("{} {}\n", data_string(m.label), m.efficiency.throughput.images_per_s);
  s += "EOD\nplot $d using 2:xtic(1) title 'images/s' lc rgb '#1f77b4'\n";
  return {"throughput", s};
}

Plot params_macs_plot(const MetricsReport& r) {
  std::string s =
      header("params_macs.png", 900, 700, "Parameters and MACs per image") + kBars + label_tics(r);
  s += "$d << EOD\n";
  for (const auto& m : r.models)
    s += fmt::format("{} {} {}\n", data_string(m.label), m.efficiency.params / 1e6,
                     m.efficiency.macs / 1e6);
  s += "EOD\nunset title\nset multiplot layout 2,1 title " + q("Parameters and MACs per image") +
       "\nset ylabel 'parameters (M)'\nset yrange [0:*]\n"
       "plot $d using 2:xtic(1) title 'params' lc rgb '#2ca02c'\n"
       "set ylabel 'MACs per image (M)'\n"
       "plot $d using 3:xtic(1) title 'MACs' lc rgb '#9467bd'\nunset multiplot\n";
  return {"params_macs", s};
}

// Top-1 against MACs with one line per method: models named <method>-<value> (circuits/acdc-0.05,
// prune/taylor-30) form a series, so methods compare at matched cost.
Plot accuracy_macs_plot(const MetricsReport& r) {
  std::string s = header("accuracy_macs.png", 900, 550, "Accuracy vs MACs per method");
  s += "set xlabel 'MACs per image (M)'\nset ylabel 'top-1 (%)'\nset offsets graph 0.05, graph "
       "0.05, graph 0.1, graph 0.1\n";
  std::map<std::string, std::vector<const ModelMetrics*>> series;
  std::vector<std::string> order;
  for (const auto& m : r.models) {
    const auto key = m.is_baseline ? std::string("baseline") : method_series(m.label);
    if (!series.count(key)) order.push_back(key);
    series[key].push_back(&m);
  }
  std::string plot = "plot ";
  for (size_t i = 0; i < order.size(); ++i) {
    auto& ms = series[order[i]];
    std::sort(ms.begin(), ms.end(), [](const ModelMetrics* a, const ModelMetrics* b) {
      return a->efficiency.macs < b->efficiency.macs;
    });
    s += fmt::format("$s{} << EOD\n", i);
    for (const auto* m : ms)
      s += fmt::format("{} {}\n", m->efficiency.macs / 1e6, 100 * m->classification.top1);
    s += "EOD\n";
    plot += fmt::format("{}$s{} using 1:2 with linespoints lw 2 pt 7 ps 1.4 title {}",
                        i ? ", " : "", i, q(order[i]));
  }
  return {"accuracy_macs", s + plot + "\n"};
}

Plot pareto_plot(const MetricsReport& r, bool latency) {
  const std::string name = latency ? "pareto_latency" : "pareto_size";
  const auto& front = latency ? r.pareto_latency : r.pareto_size;
  auto cost = [&](const ModelMetrics& m) {
    return latency ? m.efficiency.latency.p50_ms
                   : static_cast<double>(m.efficiency.file_bytes) / 1e6;
  };
  std::string s = header(name + ".png", 900, 550,
                         latency ? "Accuracy vs latency (Pareto front highlighted)"
                                 : "Accuracy vs model size (Pareto front highlighted)");
  s += fmt::format(
      "set xlabel '{}'\nset ylabel 'top-1 (%)'\nset offsets graph 0.08, graph 0.15, "
      "graph 0.1, graph 0.1\n",
      latency ? "latency p50 at batch 1 (ms)" : "file size (MB)");
  double lo = 1e300, hi = 0;
  s += "$all << EOD\n";
  for (const auto& m : r.models) {
    s += fmt::format("{} {} {}\n", cost(m), 100 * m.classification.top1, data_string(m.label));
    lo = std::min(lo, cost(m));
    hi = std::max(hi, cost(m));
  }
  s += "EOD\n$front << EOD\n";
  for (const auto& label : front)
    if (const auto* m = r.find(label))
      s += fmt::format("{} {}\n", cost(*m), 100 * m->classification.top1);
  s += "EOD\n";
  if (lo > 0 && hi / lo > 20) s += "set logscale x\n";
  // Nearly equal costs (e.g. same-size files): a readable +-2% window instead of 8-digit ticks.
  if (hi > 0 && hi - lo < 0.01 * hi)
    s += fmt::format("set offsets 0, 0, graph 0.1, graph 0.1\nset xrange [{}:{}]\n", lo * 0.98,
                     hi * 1.02);
  s += "plot $all using 1:2 with points pt 7 ps 1.4 lc rgb '#7f7f7f' title 'models', "
       "$front using 1:2 with linespoints lw 2 pt 7 ps 1.9 lc rgb '#d62728' title 'Pareto front', "
       "$all using 1:2:3 with labels offset 0,1.2 notitle\n";
  return {name, s};
}

Plot reliability_plot(const MetricsReport& r) {
  std::string s = header("reliability.png", 900, 600, "Reliability diagram (15 bins)");
  s += "set xlabel 'confidence (max probability)'\nset ylabel 'accuracy'\n"
       "set xrange [0:1]\nset yrange [0:1]\nset size ratio -1\n";
  std::string plot = "plot x with lines dt 2 lc rgb '#7f7f7f' title 'perfect calibration'";
  for (size_t i = 0; i < r.models.size(); ++i) {
    const auto& m = r.models[i];
    s += fmt::format("$r{} << EOD\n", i);
    for (const auto& b : m.confidence.reliability)
      if (b.count > 0) s += fmt::format("{} {}\n", *b.mean_confidence, *b.accuracy);
    s += "EOD\n";
    plot += fmt::format(", $r{} using 1:2 with linespoints lw 2 pt 7 title {}", i,
                        q(fmt::format("{} (ECE {:.3f})", m.label, m.confidence.ece)));
  }
  return {"reliability", s + plot + "\n"};
}

Plot confidence_plot(const MetricsReport& r, size_t index) {
  const auto& m = r.models[index];
  const auto& c = m.confidence;
  const std::string name = fmt::format("confidence_{}", index);
  std::string s =
      header(name + ".png", 900, 450,
             fmt::format("{}: max-probability of correct vs incorrect predictions", m.label));
  int64_t n_ok = 0, n_bad = 0;
  for (auto v : c.histogram_correct) n_ok += v;
  for (auto v : c.histogram_incorrect) n_bad += v;
  const double w = 1.0 / c.histogram_bins;
  s += fmt::format(
      "set xlabel 'max probability'\nset ylabel 'fraction of the group'\n"
      "set xrange [0:1]\nset yrange [0:*]\nset style fill solid 0.8 border -1\n"
      "set boxwidth {}\n$h << EOD\n",
      w / 2);
  for (int b = 0; b < c.histogram_bins; ++b) {
    const double center = (b + 0.5) * w;
    const double ok = n_ok ? static_cast<double>(c.histogram_correct[b]) / n_ok : 0;
    const double bad = n_bad ? static_cast<double>(c.histogram_incorrect[b]) / n_bad : 0;
    s += fmt::format("{} {} {}\n", center, ok, bad);
  }
  s += fmt::format(
      "EOD\nplot $h using ($1-{}):2 with boxes lc rgb '#2ca02c' title {}, "
      "$h using ($1+{}):3 with boxes lc rgb '#d62728' title {}\n",
      w / 4, q(fmt::format("correct ({})", n_ok)), w / 4, q(fmt::format("incorrect ({})", n_bad)));
  return {name, s};
}

Plot class_delta_plot(const MetricsReport& r) {
  std::string s = header("class_delta.png", 1000, 550,
                         fmt::format("Per-class accuracy change vs baseline {}", *r.baseline)) +
                  kBars;
  const int k = r.data.num_classes;
  // Bars grow from 0: keep 0 inside the autoscaled range.
  s += "set ylabel 'accuracy change (percentage points)'\nset xzeroaxis lt -1\n"
       "set yrange [*<0:0<*]\n";
  if (k > 10) s += "set xtics rotate by -45 left\n";
  s += "$d << EOD\n";
  for (int j = 0; j < k; ++j) {
    const std::string cls =
        j < static_cast<int>(r.data.class_names.size()) ? r.data.class_names[j] : std::to_string(j);
    s += data_string(cls);
    for (const auto& m : r.models) {
      if (!m.vs_baseline) continue;
      const auto& d = m.vs_baseline->per_class_accuracy_delta;
      s += j < static_cast<int>(d.size()) && d[j] ? fmt::format(" {}", 100 * *d[j]) : " ?";
    }
    s += "\n";
  }
  s += "EOD\nplot ";
  int col = 2;
  for (const auto& m : r.models) {
    if (!m.vs_baseline) continue;
    s += fmt::format("{}$d using {}{} title {}", col == 2 ? "" : ", ", col,
                     col == 2 ? ":xtic(1)" : "", q(m.label));
    ++col;
  }
  return {"class_delta", s + "\n"};
}

Plot confusion_plot(const MetricsReport& r, size_t index) {
  const ModelMetrics& m = r.models[index];
  const std::string name = fmt::format("confusion_{}", index);
  const int k = static_cast<int>(m.classification.confusion.size());
  const int side = std::clamp(200 + 45 * k, 500, 1400);
  std::string s = header(name + ".png", side + 150, side,
                         fmt::format("Confusion matrix: {} (row-normalized)", m.label));
  auto tics = [&](const char* axis) {
    std::string t = fmt::format("set {}tics (", axis);
    for (int j = 0; j < k; ++j) {
      const std::string cls = j < static_cast<int>(r.data.class_names.size())
                                  ? r.data.class_names[j]
                                  : std::to_string(j);
      t += fmt::format("{}{} {}", j ? ", " : "", q(cls), j);
    }
    return t + ")\n";
  };
  s += tics("x") + tics("y");
  s += fmt::format(
      "set xtics rotate by -45 left\nset xlabel 'predicted'\nset ylabel 'true'\n"
      "set xrange [-0.5:{0}-0.5]\nset yrange [{0}-0.5:-0.5]\nset cbrange [0:1]\n"
      "set palette defined (0 '#ffffff', 0.5 '#6baed6', 1 '#08306b')\nset size ratio -1\n"
      "unset grid\nset cblabel 'fraction of the true class'\n$m << EOD\n",
      k);
  for (int t = 0; t < k; ++t) {
    int64_t row = 0;
    for (auto v : m.classification.confusion[t]) row += v;
    for (int p = 0; p < k; ++p) {
      const auto v = m.classification.confusion[t][p];
      s += fmt::format("{} {} {} {}\n", p, t, row ? static_cast<double>(v) / row : 0.0, v);
    }
  }
  s += "EOD\nplot $m using 1:2:3 with image notitle";
  if (k <= 30)
    s += ", $m using 1:2:(sprintf('%d', $4)):($3 > 0.5 ? 0xffffff : 0x000000) with labels "
         "tc rgb variable notitle";
  return {name, s + "\n"};
}

}  // namespace

std::string method_series(const std::string& label) {
  const auto dash = label.find_last_of('-');
  if (dash == std::string::npos || dash + 1 == label.size()) return label;
  const auto tail = label.substr(dash + 1);
  const bool number = tail.find_first_not_of("0123456789.") == std::string::npos;
  return number ? label.substr(0, dash) : label;
}

std::map<std::string, std::string> render_plots(const MetricsReport& r,
                                                const std::filesystem::path& plots_dir) {
  std::map<std::string, std::string> out;
  if (r.models.empty()) return out;
  std::vector<Plot> plots = {accuracy_plot(r),      latency_plot(r),       throughput_plot(r),
                             params_macs_plot(r),   accuracy_macs_plot(r), pareto_plot(r, true),
                             pareto_plot(r, false), reliability_plot(r)};
  for (size_t i = 0; i < r.models.size(); ++i) plots.push_back(confidence_plot(r, i));
  for (size_t i = 0; i < r.models.size(); ++i) plots.push_back(confusion_plot(r, i));
  const bool compared = std::any_of(r.models.begin(), r.models.end(), [](const ModelMetrics& m) {
    return m.vs_baseline.has_value();
  });
  if (r.baseline && compared) plots.push_back(class_delta_plot(r));
  fs::create_directories(plots_dir);
  for (const auto& p : plots) {
    core::write_file_atomic(plots_dir / (p.name + ".gp"), p.script);
    run_gnuplot(p.script, plots_dir);
    out[p.name] = p.name + ".png";
  }
  return out;
}

}  // namespace vitopt::report
