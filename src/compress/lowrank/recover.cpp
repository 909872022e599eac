// Distiller set-up around prune::finetune: the teacher runs frozen in eval mode, the student's
// blocks map one to one onto the teacher's (equal depth and width: no learned projections).
#include "compress/lowrank/recover.h"

#include "compress/distill/distiller.h"
#include "model/edit/copy.h"

namespace vitopt::lowrank {

nlohmann::json recover(model::ViT& student, std::optional<model::ViT> teacher,
                       const std::string& modes, const prune::FinetuneOptions& options,
                       double epochs) {
  const auto mode_set = distill::parse_modes(modes);
  if (!teacher || mode_set.empty()) return prune::finetune(student, options, epochs, 0);
  // The Distiller freezes its teacher's parameters: give it a copy, so the caller's model stays
  // trainable and untouched.
  auto frozen = edit::copy_model(*teacher);
  distill::DistillSettings settings;
  settings.label_smoothing = options.label_smoothing;
  distill::Distiller distiller(frozen, student->config(), mode_set, settings, 0, options.seed);
  prune::FinetuneOptions o = options;
  o.configure = [&distiller](train::TrainOptions& t) { distiller.install(t); };
  return prune::finetune(student, o, epochs, 0);
}

}  // namespace vitopt::lowrank
