// The report document (sections, tables, figures) and its Markdown and HTML renderings.
#include "report/report_writer.h"

#include <fmt/format.h>

#include <variant>

#include "core/file_util.h"
#include "report/plots.h"
#include "report/scalars.h"

namespace vitopt::report {

namespace {

namespace fs = std::filesystem;

struct Heading {
  int level;
  std::string text;
};
struct Para {
  std::string text;
};
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
struct Figure {
  std::string file;  // relative to the report folder
  std::string caption;
};
using Block = std::variant<Heading, Para, Table, Figure>;

std::string pct(double v) { return fmt::format("{:.2f}%", 100 * v); }
std::string opt_pct(const std::optional<double>& v) { return v ? pct(*v) : "n/a"; }
std::string fixed(double v, int digits) { return fmt::format("{:.{}f}", v, digits); }
std::string mb(int64_t bytes) { return fmt::format("{:.2f}", static_cast<double>(bytes) / 1e6); }
std::string signed_fixed(double v, int digits) { return fmt::format("{:+.{}f}", v, digits); }

std::string round_list(const std::vector<double>& v) {
  std::vector<std::string> parts;
  for (double x : v) parts.push_back(fmt::format("{:.3f}", x));
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

std::string energy_text(const Energy& e) {
  if (!e.joules_per_image) return "unavailable";
  std::string s = fmt::format("{:.5f} J/image", *e.joules_per_image);
  if (e.dram_joules_per_image) s += fmt::format(" + DRAM {:.5f} J/image", *e.dram_joules_per_image);
  if (!e.includes.empty()) s += "; covers " + e.includes;
  return s;
}

std::string model_flags(const MetricsReport& r, const ModelMetrics& m) {
  std::vector<std::string> f;
  if (m.is_baseline) f.push_back("baseline");
  if (m.pareto_latency) f.push_back("front: latency");
  if (m.pareto_size) f.push_back("front: size");
  if (m.label == r.recommendation.most_accurate) f.push_back("most accurate");
  return fmt::format("{}", fmt::join(f, ", "));
}

std::vector<Block> document(const MetricsReport& r) {
  std::vector<Block> d;
  d.push_back(Heading{1, r.title});
  d.push_back(Para{fmt::format(
      "Created {} · data: {} ({} classes; {} images of the {} split) · engine {} on {} with {} "
      "thread(s) · eval batch {} · latency: batch 1, {} timed runs per model after warm-up, "
      "interleaved across models in {} rounds · throughput at batch {}.",
      r.created, r.data.description, r.data.num_classes, r.data.images, r.data.split,
      r.settings.engine, r.settings.device, r.settings.threads, r.settings.batch_size,
      r.settings.latency_runs, r.settings.latency_rounds, r.settings.throughput_batch)});
  std::vector<std::string> env;
  for (const auto& [k, v] : r.environment) env.push_back(k + ": " + (v.empty() ? "-" : v));
  d.push_back(Para{fmt::format("Environment — {}.", fmt::join(env, " · "))});
  d.push_back(
      Para{"Definitions (tie rule, undefined precision, ECE bins, percentiles, efficiency "
           "score) are in docs/metrics.md; every number below is also in metrics.json and "
           "metrics.csv."});

  d.push_back(Heading{2, "Models"});
  Table t{{"model", "precision", "top-1", "top-5", "macro F1", "ECE", "params", "MMACs",
           "size (MB)", "p50 ms", "± spread", "p99 ms", "img/s", "peak RSS (MB)", "J/img", "acc/ms",
           "notes"},
          {}};
  for (const auto& m : r.models) {
    const auto& e = m.efficiency;
    t.rows.push_back({m.label, m.precision, pct(m.classification.top1), pct(m.classification.top5),
                      fixed(m.classification.macro_f1, 4), fixed(m.confidence.ece, 4),
                      std::to_string(e.params), fixed(static_cast<double>(e.macs) / 1e6, 2),
                      mb(e.file_bytes), fixed(e.latency.p50_ms, 3),
                      fixed(e.latency.p50_spread_ms, 3), fixed(e.latency.p99_ms, 3),
                      fixed(e.throughput.images_per_s, 0),
                      e.memory.peak_rss_bytes ? mb(*e.memory.peak_rss_bytes) : "n/a",
                      e.energy.joules_per_image ? fixed(*e.energy.joules_per_image, 5) : "n/a",
                      fixed(e.efficiency_score, 2), model_flags(r, m)});
  }
  d.push_back(t);

  d.push_back(Heading{2, "Recommendation"});
  const auto& rec = r.recommendation;
  std::string text = fmt::format(
      "Most accurate: **{}**. Fastest (p50): **{}**. Smallest file: "
      "**{}**. Best accuracy per ms: **{}**.",
      rec.most_accurate, rec.fastest, rec.smallest, rec.best_efficiency);
  if (rec.latency_budget_ms)
    text += fmt::format(" Under the latency budget of {} ms: **{}**.", *rec.latency_budget_ms,
                        rec.under_latency_budget.value_or("no model fits"));
  else
    text += " No latency budget given (--latency-budget-ms).";
  if (rec.size_budget_mb)
    text += fmt::format(" Under the size budget of {} MB: **{}**.", *rec.size_budget_mb,
                        rec.under_size_budget.value_or("no model fits"));
  else
    text += " No size budget given (--size-budget-mb).";
  if (rec.tied_fastest.size() > 1)
    text += fmt::format(
        " Tied for fastest within the latency spread (p50 differences smaller than the two "
        "models' spreads together count as ties): {}.",
        fmt::join(rec.tied_fastest, ", "));
  d.push_back(Para{text});
  d.push_back(
      Para{fmt::format("Pareto front, accuracy vs latency (latency ties inside the spread): {}. "
                       "Accuracy vs size: {}.",
                       fmt::join(r.pareto_latency, " → "), fmt::join(r.pareto_size, " → "))});

  if (r.baseline) {
    d.push_back(Heading{2, "Against the baseline"});
    d.push_back(Para{fmt::format(
        "Baseline: **{}** ({}).", *r.baseline,
        r.baseline_source == "flag" ? "--baseline" : "the first model; none was given")});
    Table b{{"model", "Δ top-1 (pp)", "Δ macro F1", "Δ ECE", "Δ p50 ms", "Δ size (MB)", "Δ params",
             "agreement", "both ok", "only baseline ok", "only model ok", "both wrong"},
            {}};
    for (const auto& m : r.models) {
      if (!m.vs_baseline) continue;
      const auto& v = *m.vs_baseline;
      auto dl = [&v](const char* k) {
        auto it = v.deltas.find(k);
        return it == v.deltas.end() ? 0.0 : it->second;
      };
      b.rows.push_back({m.label, signed_fixed(100 * dl("top1"), 2), signed_fixed(dl("macro_f1"), 4),
                        signed_fixed(dl("ece"), 4), signed_fixed(dl("latency_p50_ms"), 3),
                        signed_fixed(dl("file_bytes") / 1e6, 2),
                        fmt::format("{:+.0f}", dl("params")), pct(v.agreement),
                        std::to_string(v.both_correct), std::to_string(v.only_baseline_correct),
                        std::to_string(v.only_model_correct), std::to_string(v.both_wrong)});
    }
    d.push_back(b);
  }

  d.push_back(Heading{2, "Plots"});
  static const std::vector<std::pair<std::string, std::string>> kCaptions = {
      {"accuracy", "Top-1, top-5 and macro F1 per model."},
      {"latency", "Latency at batch 1: p50, p90, p99."},
      {"throughput", "Throughput at the throughput batch."},
      {"params_macs", "Parameters and multiply-accumulates per image."},
      {"accuracy_macs",
       "Top-1 against MACs, one line per method (models named <method>-<value> form a series)."},
      {"pareto_latency", "Accuracy vs latency; the Pareto front in red."},
      {"pareto_size", "Accuracy vs file size; the Pareto front in red."},
      {"reliability", "Reliability diagram: accuracy per confidence bin (diagonal = calibrated)."},
      {"class_delta", "Per-class accuracy change vs the baseline (percentage points)."}};
  for (const auto& [name, caption] : kCaptions) {
    auto it = r.plots.find(name);
    if (it != r.plots.end()) d.push_back(Figure{it->second, caption});
  }
  for (size_t i = 0; i < r.models.size(); ++i) {
    auto it = r.plots.find(fmt::format("confidence_{}", i));
    if (it != r.plots.end())
      d.push_back(Figure{
          it->second,
          fmt::format("{}: confidence of correct vs incorrect predictions.", r.models[i].label)});
  }
  for (size_t i = 0; i < r.models.size(); ++i) {
    auto it = r.plots.find(fmt::format("confusion_{}", i));
    if (it != r.plots.end())
      d.push_back(Figure{it->second,
                         fmt::format("{}: confusion matrix (colour: fraction of the true class, "
                                     "text: count).",
                                     r.models[i].label)});
  }

  for (const auto& m : r.models) {
    d.push_back(Heading{2, "Model " + m.label});
    const auto& c = m.classification;
    const auto& k = m.confidence;
    const auto& e = m.efficiency;
    d.push_back(Para{fmt::format(
        "File `{}` ({} bytes, {}); config {}: {} blocks, dim {}. Top-1 {}, top-3 {}, top-5 {}, "
        "loss {:.4f}; macro precision {:.4f}, recall {:.4f}, F1 {:.4f} over {} classes{}.",
        m.path, e.file_bytes, m.precision, m.config.value("name", std::string("?")),
        m.config.value("depth", 0), m.config.value("embed_dim", 0), pct(c.top1), pct(c.top3),
        pct(c.top5), c.loss, c.macro_precision, c.macro_recall, c.macro_f1, c.macro_classes,
        c.never_predicted.empty()
            ? ""
            : fmt::format("; never predicted: {}", fmt::join(c.never_predicted, ", ")))});
    d.push_back(Para{fmt::format(
        "Confidence: mean max-probability {:.4f} (correct {}, incorrect {}, gap {}); mean "
        "entropy {:.4f} nats; ECE ({} bins) {:.4f}.",
        k.mean_max_prob, k.mean_max_prob_correct ? fixed(*k.mean_max_prob_correct, 4) : "n/a",
        k.mean_max_prob_incorrect ? fixed(*k.mean_max_prob_incorrect, 4) : "n/a",
        k.gap ? fixed(*k.gap, 4) : "n/a", k.mean_entropy, k.ece_bins, k.ece)});
    d.push_back(Para{fmt::format(
        "Efficiency: {} parameters ({} non-zero; per block: {}; embeddings/norm/heads {}); {} MACs "
        "= {} FLOPs per image. Latency (batch 1, {} runs after {} warm-up, in {} interleaved "
        "rounds): p50 {:.3f} ms (spread {:.3f}: IQR of the round p50s {}), p90 "
        "{:.3f}, p99 {:.3f}, mean {:.3f}, min {:.3f}, max {:.3f}. Throughput at batch {}: {:.0f} "
        "img/s ({} runs, median {:.2f} ms per batch). Peak RSS: {} ({}). Allocator peak: {} ({}). "
        "Energy: {} ({}). Efficiency score {:.3f} (top-1 % per ms).",
        e.params, e.nonzero_params ? std::to_string(*e.nonzero_params) : "n/a",
        fmt::join(e.params_per_block, ", "), e.params_other, e.macs, e.flops, e.latency.runs,
        e.latency.warmup, e.latency.rounds, e.latency.p50_ms, e.latency.p50_spread_ms,
        round_list(e.latency.round_p50_ms), e.latency.p90_ms, e.latency.p99_ms, e.latency.mean_ms,
        e.latency.min_ms, e.latency.max_ms, e.throughput.batch, e.throughput.images_per_s,
        e.throughput.runs, e.throughput.ms_per_batch,
        e.memory.peak_rss_bytes ? mb(*e.memory.peak_rss_bytes) + " MB" : "n/a", e.memory.rss_note,
        e.memory.allocator_peak_bytes ? mb(*e.memory.allocator_peak_bytes) + " MB" : "n/a",
        e.memory.allocator_note,
        energy_text(e.energy), e.energy.source, e.efficiency_score)});
    Table pc{{"class", "images", "predicted", "accuracy", "precision", "recall", "F1"}, {}};
    if (m.vs_baseline) pc.header.push_back("Δ accuracy vs baseline (pp)");
    for (const auto& s : c.per_class) {
      std::vector<std::string> row = {s.name,
                                      std::to_string(s.support),
                                      std::to_string(s.predicted),
                                      opt_pct(s.accuracy),
                                      fixed(s.precision, 4),
                                      fixed(s.recall, 4),
                                      fixed(s.f1, 4)};
      if (m.vs_baseline) {
        const auto& dv = m.vs_baseline->per_class_accuracy_delta;
        row.push_back(s.index < static_cast<int>(dv.size()) && dv[s.index]
                          ? signed_fixed(100 * *dv[s.index], 2)
                          : "n/a");
      }
      pc.rows.push_back(row);
    }
    d.push_back(pc);
  }
  return d;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// **bold** and `code` spans of the paragraph text, after escaping.
std::string html_inline(const std::string& s) {
  std::string e = html_escape(s), out;
  bool bold = false, code = false;
  for (size_t i = 0; i < e.size(); ++i) {
    if (!code && e.compare(i, 2, "**") == 0) {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else if (e[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else {
      out += e[i];
    }
  }
  return out;
}

}  // namespace

std::string base64_encode(const std::string& bytes) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kChars[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kChars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string report_markdown(const MetricsReport& r) {
  std::string md;
  for (const auto& block : document(r)) {
    if (const auto* h = std::get_if<Heading>(&block)) {
      md += std::string(h->level, '#') + " " + h->text + "\n\n";
    } else if (const auto* p = std::get_if<Para>(&block)) {
      md += p->text + "\n\n";
    } else if (const auto* t = std::get_if<Table>(&block)) {
      auto line = [&md](const std::vector<std::string>& cells) {
        md += "|";
        for (const auto& c : cells) {
          md += ' ';
          md += md_cell(c);
          md += " |";
        }
        md += "\n";
      };
      line(t->header);
      md += "|";
      for (size_t i = 0; i < t->header.size(); ++i) md += "---|";
      md += "\n";
      for (const auto& row : t->rows) line(row);
      md += "\n";
    } else if (const auto* f = std::get_if<Figure>(&block)) {
      md += fmt::format("![{}]({})\n\n*{}*\n\n", f->caption, f->file, f->caption);
    }
  }
  return md;
}

std::string report_html(const MetricsReport& r, const std::filesystem::path& dir) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
                  html_escape(r.title) +
                  "</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em auto;"
                  "max-width:1200px;padding:0 1em;color:#222}\ntable{border-collapse:collapse;"
                  "margin:1em 0;font-size:0.9em}\nth,td{border:1px solid #ccc;padding:3px 7px;"
                  "text-align:right}\nth{background:#f3f3f3}\ntd:first-child,th:first-child{"
                  "text-align:left}\nfigure{margin:1.5em 0}\nfigure img{max-width:100%;"
                  "border:1px solid #eee}\nfigcaption{color:#555;font-style:italic}\ncode{"
                  "background:#f6f6f6;padding:0 3px}\n</style></head><body>\n";
  for (const auto& block : document(r)) {
    if (const auto* hd = std::get_if<Heading>(&block)) {
      h += fmt::format("<h{0}>{1}</h{0}>\n", hd->level, html_escape(hd->text));
    } else if (const auto* p = std::get_if<Para>(&block)) {
      h += "<p>" + html_inline(p->text) + "</p>\n";
    } else if (const auto* t = std::get_if<Table>(&block)) {
      h += "<table>\n<tr>";
      for (const auto& c : t->header) h += "<th>" + html_escape(c) + "</th>";
      h += "</tr>\n";
      for (const auto& row : t->rows) {
        h += "<tr>";
        for (const auto& c : row) h += "<td>" + html_escape(c) + "</td>";
        h += "</tr>\n";
      }
      h += "</table>\n";
    } else if (const auto* f = std::get_if<Figure>(&block)) {
      const auto png = core::read_file_text(dir / f->file);
      h += fmt::format(
          "<figure id=\"{}\"><img alt=\"{}\" src=\"data:image/png;base64,{}\">"
          "<figcaption>{}</figcaption></figure>\n",
          html_escape(fs::path(f->file).stem().string()), html_escape(f->caption),
          base64_encode(png), html_escape(f->caption));
    }
  }
  return h + "</body></html>\n";
}

void write_report_files(MetricsReport& r, const std::filesystem::path& dir, bool quiet) {
  fs::create_directories(dir);
  core::write_file_atomic(dir / "metrics.json", to_json(r).dump(2) + "\n");
  core::write_file_atomic(dir / "metrics.csv", metrics_csv(r));
  r.plots.clear();
  for (const auto& [name, file] : render_plots(r, dir / "plots")) r.plots[name] = "plots/" + file;
  core::write_file_atomic(dir / "metrics.json", to_json(r).dump(2) + "\n");
  core::write_file_atomic(dir / "report.md", report_markdown(r));
  core::write_file_atomic(dir / "report.html", report_html(r, dir));
  if (!quiet)
    fmt::print(stderr, "[eval] report: {} ({} plots), metrics.json, metrics.csv, report.md\n",
               (dir / "report.html").string(), r.plots.size());
}

}  // namespace vitopt::report
