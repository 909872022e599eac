// The circuits job (`vitopt circuits` and the recipe's `circuits:` stage): a trained model's
// circuit for its task found by ACDC (thresholds) or EAP / EAP-IG (keep ratios) on training
// images, each circuit slimmed into a smaller model (ablations folded into biases), optionally
// fine-tuned, and written with its circuit (JSON) and picture (graphviz).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/prune/finetune.h"

namespace vitopt::circuits {

struct CircuitsRequest {
  std::filesystem::path model;       // input model file (fp32, dense, own weights per block)
  std::filesystem::path report_dir;  // circuits.json and, per setting, <label>.{json,dot,svg}
  // The model file of the single setting (the pipeline); empty: <report_dir>/<label>.safetensors
  // per setting, e.g. acdc_threshold_0.01.safetensors, eap-ig_keep_0.9.safetensors.
  std::filesystem::path out;
  std::string method = "acdc";      // acdc | eap | eap-ig
  std::vector<double> thresholds;   // acdc: one model per threshold (>= 0)
  std::vector<double> keep_ratios;  // eap, eap-ig: one model per ratio in (0, 1]
  std::string level = "node";       // node, or edge (the residual-stream graph; nodes follow)
  std::string ablation = "mean";    // mean | zero | resample
  // Node-level ACDC's forwards: on the vitopt runtime (each trial's slimmed model; mean and zero
  // ablation only), on LibTorch (reusing the clean upstream blocks), or auto: the runtime where
  // it applies. EAP and edge level always run on LibTorch (they need gradients / per-edge inputs).
  std::string engine = "auto";      // auto | runtime | torch
  int analysis_batches = 4;         // batches of training images for the metric and the means
  int64_t analysis_batch_size = 64;
  bool use_task_loss = false;   // metric: cross-entropy instead of KL(full || circuit)
  int ig_steps = 5;             // eap-ig: points on the path
  std::string rank = "global";  // eap keep ratio over all components, or per-type
  int neuron_group = 16;        // MLP neurons tested/kept together
  double finetune_epochs = 0;   // per model (fractional allowed; 0: none)
  std::string data = "fashion-mnist";
  size_t eval_limit = 0;            // test images for accuracy (0: all)
  bool measure = true;              // test accuracy before/after fine-tuning
  prune::FinetuneOptions finetune;  // lr, batch size... (data/seed/quiet/work_dir filled in)
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";  // fine-tuning; the analysis runs on the CPU
  bool quiet = false;
};

// Checks a request without running it (also done by run_circuits): InputError naming the flag and
// the expected value (threshold < 0, keep ratio outside (0, 1], unknown level, method or
// ablation, EAP with the KL metric, ...).
void validate_request(const CircuitsRequest& request);

// The file label of one setting: "acdc_threshold_0.01", "eap_keep_0.9".
std::string setting_label(const std::string& method, double value);

// Runs the job; writes every model, circuit and picture and <report_dir>/circuits.json, and
// returns that JSON.
nlohmann::json run_circuits(const CircuitsRequest& request);

}  // namespace vitopt::circuits
