// The bit sweep (see sweep.h). Everything is measured on the files as written and loaded back.
#include "compress/quant/sweep.h"

#include <fmt/format.h>

#include <fstream>

#include "compress/quant/calibration.h"
#include "core/error.h"
#include "model/model_file.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "eval/evaluator.h"
#include "report/figures.h"
#include "report/gnuplot.h"

namespace vitopt::quant {
namespace {

// 64-bin histogram of every Linear's input on the calibration images (fp32 model).
nlohmann::json activation_histograms(model::ViT& fp, const torch::Tensor& calib, uint64_t seed) {
  nlohmann::json h = nlohmann::json::object();
  auto obs = observe_linear_inputs(fp, calib, 64, 4096, seed);
  for (const auto& [name, ob] : obs) {
    if (ob.empty()) continue;
    const auto sample = ob.sample();
    const float lo = ob.min(), hi = ob.max();
    const auto counts = torch::histc(sample, 64, lo, hi > lo ? hi : lo + 1.0f).to(torch::kLong);
    const auto flat = sample.flatten();
    h[name] = {{"min", lo},
               {"max", hi},
               {"bins", 64},
               {"counts",
                std::vector<int64_t>(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + 64)},
               {"p0.01", torch::quantile(flat, 0.0001).item<double>()},
               {"p99.99", torch::quantile(flat, 0.9999).item<double>()},
               {"std", flat.std().item<double>()}};
  }
  return h;
}

std::string plot_script(const std::string& png, const std::string& dat, const std::string& title,
                        const std::string& ylabel, int column) {
  return fmt::format(
      "set terminal png size 800,500\nset output '{}'\nset title '{}'\nset xlabel 'bits (W = A)'\n"
      "set ylabel '{}'\nset grid\nset key off\nplot '{}' using 1:{} with linespoints lw 2 pt 7\n",
      png, title, ylabel, dat, column);
}

}  // namespace

nlohmann::json run_sweep(const QuantizeRequest& req, model::ViT& fp, const torch::Tensor& calib) {
  const auto dir = req.out;
  std::filesystem::create_directories(dir);
  const auto fp32_bytes = std::filesystem::file_size(req.model);
  std::vector<double> fp_class;
  const double fp_top1 = test_accuracy(fp, req.data, req.eval_limit, req.eval_batch_size,
                                       req.workers, req.quiet, &fp_class, "fp32");
  nlohmann::json j = {{"model", req.model.string()},
                      {"out", dir.string()},
                      {"top1_fp32", fp_top1},
                      {"fp32_bytes", fp32_bytes},
                      {"eval_images", req.eval_limit},
                      {"abits", req.ptq.abits ? "same as wbits" : "none"},
                      {"widths", nlohmann::json::array()}};
  std::string dat = "# bits top1 size_ratio bytes\n";
  std::string md = fmt::format(
      "# Quantization sweep: {}\n\nfp32 top-1 {:.2f}%, {} bytes.\n\n"
      "| W/A bits | top-1 | delta (points) | size (bytes) | size ratio | min weight SQNR (dB) |\n"
      "|---|---|---|---|---|---|\n",
      req.model.string(), 100 * fp_top1, fp32_bytes);
  std::vector<std::filesystem::path> files;
  std::map<std::string, std::string> labels;
  for (int b : req.sweep) {
    PtqOptions o = req.ptq;
    o.wbits = b;
    if (o.abits) o.abits = b;
    auto state = run_ptq(fp, calib, o);
    const auto name = o.abits ? fmt::format("w{}a{}", b, b) : fmt::format("w{}", b);
    const auto file = dir / (name + ".safetensors");
    save_quantized(state, file, {{"vitopt.quant_source", req.model.string()}});
    auto loaded = model::load_model(file);
    std::vector<double> per_class;
    const double top1 = test_accuracy(loaded, req.data, req.eval_limit, req.eval_batch_size,
                                      req.workers, req.quiet, &per_class, name);
    const auto bytes = std::filesystem::file_size(file);
    const double ratio = static_cast<double>(bytes) / static_cast<double>(fp32_bytes);
    nlohmann::json class_delta = nlohmann::json::array();
    for (size_t c = 0; c < per_class.size(); ++c)
      class_delta.push_back(100.0 * (per_class[c] - fp_class[c]));
    double min_sqnr = 1e9;
    for (const auto& [layer, rec] : state.report["layers"].items()) {
      if (rec.contains("weight_sqnr_db"))
        min_sqnr = std::min(min_sqnr, rec["weight_sqnr_db"].get<double>());
    }
    j["widths"].push_back({{"bits", b},
                           {"file", file.string()},
                           {"top1", top1},
                           {"top1_delta_points", 100.0 * (top1 - fp_top1)},
                           {"bytes", bytes},
                           {"size_ratio", ratio},
                           {"per_class_top1", per_class},
                           {"per_class_delta_points", class_delta},
                           {"layers", state.report["layers"]}});
    dat += fmt::format("{} {:.6f} {:.6f} {}\n", b, 100 * top1, ratio, bytes);
    md += fmt::format("| {} | {:.2f}% | {:+.2f} | {} | {:.4f} | {:.1f} |\n", name, 100 * top1,
                      100.0 * (top1 - fp_top1), bytes, ratio, min_sqnr);
    files.push_back(file);
    labels[file.string()] = name;
  }
  j["histograms_file"] = (dir / "histograms.json").string();
  const auto histograms = activation_histograms(fp, calib, req.seed);
  core::write_file_atomic(dir / "histograms.json", histograms.dump() + "\n");
  core::write_file_atomic(dir / "sweep.dat", dat);
  const auto acc_gp =
      plot_script("accuracy_vs_bits.png", "sweep.dat", "top-1 vs bits", "top-1 (%)", 2);
  const auto size_gp =
      plot_script("size_vs_bits.png", "sweep.dat", "size vs bits", "size / fp32", 3);
  core::write_file_atomic(dir / "accuracy_vs_bits.gp", acc_gp);
  core::write_file_atomic(dir / "size_vs_bits.gp", size_gp);
  try {
    report::run_gnuplot(acc_gp, dir);
    report::run_gnuplot(size_gp, dir);
    const auto hist_gp = report::activation_histograms_script(histograms, "activations.png");
    core::write_file_atomic(dir / "activations.gp", hist_gp);
    report::run_gnuplot(hist_gp, dir);
    j["plots"] = {(dir / "accuracy_vs_bits.png").string(), (dir / "size_vs_bits.png").string(),
                  (dir / "activations.png").string()};
  } catch (const core::Error& e) {
    j["plots_error"] = e.what();  // the numbers are still there; plots are a convenience
  }
  eval::EvalRequest er;
  er.models = files;
  er.baseline = req.model;
  er.data = req.data;
  er.limit = req.eval_limit;
  er.batch_size = req.eval_batch_size;
  er.out_dir = dir / "eval";
  er.title = "vitopt quantization sweep";
  er.labels = labels;
  er.quiet = req.quiet;
  er.workers = req.workers;
  j["evaluation"] = eval::evaluate_models(er);
  j["evaluation_dir"] = er.out_dir.string();
  md +=
      "\nPer-layer SQNR and per-class deltas: sweep.json; activation histograms: "
      "histograms.json (figure: activations.png).\n";
  core::write_file_atomic(dir / "sweep.md", md);
  core::write_file_atomic(dir / "sweep.json", j.dump(2) + "\n");
  return j;
}

}  // namespace vitopt::quant
