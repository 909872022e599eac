// run_quantize: one quantized model (PTQ, optional mixed precision and QAT) with its JSON record.
// The bit sweep lives in sweep.cpp. Accuracy is always measured on the file as written and loaded
// back (what `vitopt eval` sees), never on the in-memory state.
#include "compress/quant/quantize_job.h"

#include <fmt/format.h>

#include "compress/quant/calibration.h"
#include "compress/quant/mixed_precision.h"
#include "compress/quant/qat.h"
#include "compress/quant/sweep.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "eval/accuracy.h"
#include "io/metadata_keys.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "model/edit/copy.h"
#include "model/model_file.h"
#include "train/calibration.h"
#include "train/data_bridge.h"
#include "train/distributed/world.h"

namespace vitopt::quant {
namespace {

void validate_request(const QuantizeRequest& r) {
  if (r.model.empty()) core::throw_input("--model: required");
  if (r.out.empty()) core::throw_input("--out: required");
  validate(r.ptq);
  if (r.calib_images < 1)
    core::throw_input("--calib-images: expected >= 1, got {}", r.calib_images);
  if (r.qat_epochs < 0 || r.qat_epochs > 100)
    core::throw_input("--qat-epochs: expected 0..100, got {}", r.qat_epochs);
  if (r.lsq && r.qat_epochs == 0) core::throw_input("--lsq: needs --qat-epochs >= 1");
  if (!(r.qat_lr > 0)) core::throw_input("--qat-lr: expected > 0, got {}", r.qat_lr);
  if (r.size_budget_mb && !(*r.size_budget_mb > 0))
    core::throw_input("--size-budget-mb: expected > 0, got {}", *r.size_budget_mb);
  for (int b : r.mp_bits) io::quant_range(b, r.ptq.w_symmetric, "--mp-bits");
  for (int b : r.sweep) io::quant_range(b, r.ptq.w_symmetric, "--sweep");
  if (!r.sweep.empty() && (r.size_budget_mb || r.qat_epochs > 0))
    core::throw_input("--sweep: cannot be combined with --size-budget-mb or --qat-epochs");
}

// Bytes of a quantized file that do not depend on the weight bits: fp32 tensors, header, padding.
// Measured by writing the model once at 8 bits and subtracting the 8-bit weight bytes.
int64_t fixed_file_bytes(model::ViT& folded, const PtqOptions& o,
                         const std::filesystem::path& tmp) {
  QuantizedState s;
  s.fp32 = folded;
  int64_t weight_bytes = 0;
  for (const auto& name : model::quantizable_linears(folded)) {
    const io::WeightQuant spec{8, o.w_symmetric, o.w_per_channel};
    if (const std::string wname = model::unit_weight_name(folded, name); !wname.empty()) {
      auto w = linear_weight(folded, name);
      s.weights[wname] = model::quantize_weight(w, spec);
      weight_bytes += io::quantized_weight_bytes(w.size(0), w.size(1), spec);
    }
    if (o.abits)
      s.inputs[name] = io::InputQuant{*o.abits, o.a_symmetric, o.a_dynamic, 0.0123456f, 0};
  }
  save_quantized(s, tmp);
  const auto total = static_cast<int64_t>(std::filesystem::file_size(tmp));
  std::filesystem::remove(tmp);
  return total - weight_bytes;
}

}  // namespace

double test_accuracy(model::ViT& m, const std::string& data, size_t limit, int64_t batch_size,
                     int workers, bool quiet, std::vector<double>* per_class,
                     const std::string& label) {
  eval::AccuracyOptions o;
  o.batch_size = batch_size;
  o.workers = workers;
  o.quiet = quiet;
  o.label = label;
  const auto a = eval::split_accuracy(m, data, data::Split::Test, limit, o);
  if (per_class != nullptr) *per_class = a.per_class_top1;
  return a.top1;
}

nlohmann::json run_quantize(const QuantizeRequest& req) {
  validate_request(req);
  auto fp = model::load_model(req.model);
  {
    const auto file = io::SafeTensorsFile::load(req.model);
    if (file.metadata_value(io::kQuantKey) != nullptr)
      core::throw_input("--model: {} is already quantized; give the fp32 model",
                        req.model.string());
  }
  fp->eval();
  torch::Tensor labels;
  const auto calib = train::calibration_images(
      train::calibration_batches(req.data, fp->config(), req.calib_images, 256, req.seed),
      &labels);
  if (!req.sweep.empty()) return run_sweep(req, fp, calib);

  nlohmann::json j = {{"model", req.model.string()}, {"out", req.out.string()}};
  PtqOptions opts = req.ptq;
  if (req.size_budget_mb) {
    // Sensitivities on the model as PTQ will see it (folded), then the knapsack.
    auto folded = edit::copy_model(fp);
    if (opts.reparam) {
      auto obs = observe_linear_inputs(folded, calib, opts.batch_size, 16, opts.seed);
      fold_layernorm_scales(folded, obs, opts.reparam_options);
    }
    const auto table = layer_sensitivity(folded, calib, labels, req.mp_bits, opts, req.quiet);
    auto tmp = req.out;
    tmp += fmt::format(".sizeprobe{}.tmp", train::dist::process_world().rank);  // one per rank
    const int64_t fixed = fixed_file_bytes(folded, opts, tmp);
    const auto budget = static_cast<int64_t>(*req.size_budget_mb * 1e6);
    const auto alloc = allocate_bits(table, budget - fixed, fixed);
    opts.layer_wbits = alloc.bits;
    nlohmann::json sens = nlohmann::json::array();
    for (const auto& s : table) {
      sens.push_back({{"layer", s.layer},
                      {"bits", s.bits},
                      {"kl", s.kl},
                      {"top1_drop_calib_points", s.top1_drop},
                      {"bytes", s.bytes}});
    }
    j["mixed_precision"] = {{"budget_bytes", budget},
                            {"fixed_bytes", fixed},
                            {"predicted_weight_bytes", alloc.weight_bytes},
                            {"predicted_kl", alloc.predicted_kl},
                            {"bits", alloc.bits},
                            {"sensitivity", sens}};
  }
  auto state = run_ptq(fp, calib, opts);
  j["layers"] = state.report.value("layers", nlohmann::json::object());
  if (state.report.contains("reparam")) j["reparam"] = state.report["reparam"];
  if (state.report.contains("attention")) j["attention"] = state.report["attention"];
  if (req.qat_epochs > 0) {
    QatOptions q;
    q.epochs = req.qat_epochs;
    q.lsq = req.lsq;
    q.lr = req.qat_lr;
    q.batch_size = req.qat_batch_size;
    q.images = req.qat_images;
    q.data = req.data;
    q.workers = req.workers;
    q.device = req.device;
    q.seed = req.seed;
    q.quiet = req.quiet;
    q.work_dir = req.out;
    q.work_dir += ".qat";
    nlohmann::json history;
    state = run_qat(state, q, &history);
    if (!train::dist::is_root()) return j;    // data-parallel QAT is over; rank 0 writes the model
    std::filesystem::remove_all(q.work_dir);  // checkpoints of the fake-quant run: not needed
    j["qat"] = {
        {"epochs", req.qat_epochs}, {"lsq", req.lsq}, {"lr", req.qat_lr}, {"history", history}};
  }
  std::map<std::string, std::string> meta = {{"vitopt.quant_source", req.model.string()}};
  const auto names = io::read_model_header(req.model).class_names;
  if (!names.empty()) meta[io::kClassNamesKey] = nlohmann::json(names).dump();
  save_quantized(state, req.out, meta);

  const auto fp32_bytes = std::filesystem::file_size(req.model);
  const auto q_bytes = std::filesystem::file_size(req.out);
  j["options"] = {{"wbits", opts.wbits},
                  {"abits", opts.abits ? nlohmann::json(*opts.abits) : nlohmann::json("none")},
                  {"scheme", opts.w_symmetric ? "sym" : "asym"},
                  {"granularity", opts.w_per_channel ? "channel" : "tensor"},
                  {"act_scheme", opts.a_symmetric ? "sym" : "asym"},
                  {"act_granularity", opts.a_dynamic ? "token" : "tensor"},
                  {"observer", observer_name(opts.a_observer.kind)},
                  {"weight_observer", observer_name(opts.w_observer.kind)},
                  {"reparam", opts.reparam},
                  {"reparam_alpha", opts.reparam_options.alpha},
                  {"calib_images", req.calib_images},
                  {"attn_bits", opts.attn_bits ? nlohmann::json(*opts.attn_bits) : nlohmann::json("none")}};
  if (state.attention) {
    j["options"]["prob_bits"] = state.attention->prob_bits;
    j["options"]["prob_quantizer"] = state.attention->prob_quantizer;  // "auto" resolved
  }
  j["fp32_bytes"] = fp32_bytes;
  j["bytes"] = q_bytes;
  j["size_ratio"] = static_cast<double>(q_bytes) / static_cast<double>(fp32_bytes);
  if (req.evaluate) {
    const bool quiet = req.quiet;
    const double fp_top1 = test_accuracy(fp, req.data, req.eval_limit, req.eval_batch_size,
                                         req.workers, quiet, nullptr, "fp32");
    auto loaded = model::load_model(req.out);  // exactly what the file computes
    const double q_top1 = test_accuracy(loaded, req.data, req.eval_limit, req.eval_batch_size,
                                        req.workers, quiet, nullptr, "quantized");
    j["top1_fp32"] = fp_top1;
    j["top1"] = q_top1;
    j["top1_delta_points"] = 100.0 * (q_top1 - fp_top1);
    j["eval_images"] = req.eval_limit;
  }
  auto record = req.out;
  record.replace_extension(".quant.json");
  core::write_file_atomic(record, j.dump(2) + "\n");
  j["record"] = record.string();
  return j;
}

}  // namespace vitopt::quant
