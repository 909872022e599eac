// AdamW (decoupled weight decay, Loshchilov & Hutter) over named parameters, with its state
// exposed by name so checkpoints can store and restore it exactly. Weight decay is skipped for
// norms, biases, tokens and position embeddings (1-D tensors and *_token / pos_embed), as in timm.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace vitopt::train {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.05;
};

// True for parameters that get no weight decay (norm weights, biases, cls/dist tokens, pos_embed).
bool is_no_decay(const std::string& name, const torch::Tensor& param);

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options);
  void zero_grad();
  void step();  // uses options().lr as set by the schedule
  void set_lr(double lr) { options_.lr = lr; }
  const AdamWOptions& options() const { return options_; }
  int64_t step_count() const { return step_; }

  // State as named tensors: "m.<param>", "v.<param>" (same shapes as the params).
  std::map<std::string, torch::Tensor> state() const;
  // Restores state saved by state(); throws InputError naming `source` on missing/mismatched state.
  void load_state(const std::map<std::string, torch::Tensor>& state, int64_t step,
                  const std::string& source);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, m, v;
    bool decay;
  };
  std::vector<Slot> slots_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

// Linear warm-up from ~0 to base_lr over warmup_steps, then cosine to min_lr at total_steps.
double warmup_cosine_lr(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr,
                        double min_lr);

}  // namespace vitopt::train
