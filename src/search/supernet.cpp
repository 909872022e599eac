// Supernet fine-tuning with the sandwich rule (see supernet.h).
#include "search/supernet.h"

#include <random>

#include "compress/distill/kd_losses.h"
#include "model/edit/ablation.h"
#include "model/edit/plan.h"
#include "train/torch_env.h"
#include "train/trainer.h"

namespace vitopt::search {

nlohmann::json train_supernet(model::ViT& parent, model::ViT& teacher, const Space& space,
                              Inheritance& inh, const std::vector<train::CalibBatch>& calib,
                              const prune::FinetuneOptions& finetune, const SupernetOptions& o) {
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  const auto& config = parent->config();
  const Genome largest = space.largest(), smallest = space.smallest();
  auto options = finetune;
  options.configure = [&](train::TrainOptions& t) {
    teacher->to(train::parse_device(t.device));
    teacher->eval();
    t.loss = [&](model::ViT& m, const torch::Tensor& x, const torch::Tensor& y,
                 torch::Tensor& logits) {
      torch::Tensor target;
      {
        torch::NoGradGuard no_grad;
        target = teacher->forward(x);  // (B, K)
      }
      std::vector<const Genome*> sandwich{&largest, &smallest};
      std::vector<Genome> randoms;
      for (int i = 0; i < o.random_per_step; ++i)
        randoms.push_back(space.random(rng, 0));  // the model's own blocks only
      for (const auto& g : randoms) sandwich.push_back(&g);
      torch::Tensor total;
      for (size_t i = 0; i < sandwich.size(); ++i) {
        model::Trace trace;
        edit::plan_gates(structure_plan(config, inh, *sandwich[i]), config, trace);
        edit::set_ablation_means(trace, inh.means);
        for (auto* gates :
             {&trace.head_gates, &trace.neuron_gates, &trace.attn_gates, &trace.mlp_gates})
          for (auto& g : *gates)
            if (g.defined()) g = g.to(x.device());
        for (auto* means :
             {&trace.head_means, &trace.neuron_means, &trace.attn_means, &trace.mlp_means})
          for (auto& mu : *means)
            if (mu.defined()) mu = mu.to(x.device());
        const auto out = m->forward(x, &trace);
        auto loss = distill::kd_logit_loss(out, target, 1.0);
        if (i == 0) {
          logits = out;
          loss = loss + torch::nn::functional::cross_entropy(out, y);
        }
        total = total.defined() ? total + loss : loss;
      }
      return total / static_cast<double>(sandwich.size());
    };
  };
  auto history = prune::finetune(parent, options, o.epochs, 0);
  parent->to(torch::kCPU);
  teacher->to(torch::kCPU);
  parent->eval();
  inh.means = edit::measure_means(parent, train::batch_inputs(calib));
  return history;
}

}  // namespace vitopt::search
