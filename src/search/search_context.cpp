// The search context's per-genome lookups and the fine-tuning options every training inside the
// search shares (see search_context.h).
#include "search/search_context.h"

#include "compress/distill/distiller.h"
#include "core/error.h"
#include "train/distributed/communicator.h"

namespace vitopt::search {

model::ViT& SearchContext::base_of(const Genome& g) {
  if (g.student == 0) return parent;
  if (g.student < 0 || g.student > static_cast<int>(students.size()))
    core::throw_internal("search: genome of student {} with {} students", g.student,
                         students.size());
  return students[static_cast<size_t>(g.student - 1)];
}

const Inheritance& SearchContext::inheritance_of(const Genome& g) const {
  if (g.student == 0) return inheritance;
  if (g.student < 0 || g.student > static_cast<int>(student_inheritance.size()))
    core::throw_internal("search: genome of student {} with {} students", g.student,
                         student_inheritance.size());
  return student_inheritance[static_cast<size_t>(g.student - 1)];
}

int SearchContext::side_of(const Genome& g) const {
  return g.resolution != 0 ? g.resolution : space.base(g.student).image_size;
}

const torch::Tensor& SearchContext::calib_for(const Genome& g) {
  const int side = side_of(g);
  if (side == original->config().image_size) return calib_images;
  auto it = calib_at_.find(side);
  if (it == calib_at_.end()) {
    io::ViTConfig c = original->config();
    c.image_size = side;  // the eval transform resizes to the config's side
    const auto batches =
        train::calibration_batches(request.data, c, request.calib_images, 64, request.seed);
    it = calib_at_.emplace(side, train::calibration_images(batches)).first;
  }
  return it->second;
}

const HeldOut& SearchContext::held_out_for(const Genome& g) {
  const int side = side_of(g);
  if (side == original->config().image_size) return held_out;
  auto it = held_out_at_.find(side);
  if (it == held_out_at_.end()) {
    io::ViTConfig c = original->config();
    c.image_size = side;
    it = held_out_at_
             .emplace(side, held_out_split(request.data, c, request.holdout_images,
                                           request.calib_images, 100, request.seed))
             .first;
  }
  return it->second;
}

prune::FinetuneOptions finetune_options(const SearchContext& ctx,
                                        const std::filesystem::path& work_dir) {
  const auto& r = ctx.request;
  auto o = prune::job_finetune_options(r.finetune, r.data, r.seed, r.device, r.quiet, work_dir);
  o.limit = 0;
  const size_t train = prune::finetune_train_size(o, ctx.original->config());
  const size_t usable = train - ctx.held_out.count;
  o.limit = r.finetune.limit == 0 ? usable : std::min(r.finetune.limit, usable);
  return o;
}

std::string teacher_modes(const std::string& modes, bool same_grid) {
  if (modes == "none") return "";
  auto set = distill::parse_modes(modes);
  if (!same_grid) {
    set.erase(distill::Mode::Feature);
    set.erase(distill::Mode::Attention);
  }
  std::string out;  // comma-separated, as parse_modes reads it
  for (const auto m : set) {
    if (!out.empty()) out += ',';
    out += distill::mode_name(m);
  }
  return out;
}

void agree_on_orders(Inheritance& inheritance) {
  const auto text = train::dist::result_of_root(
      [&] {
        return nlohmann::json{{"heads", inheritance.head_order},
                              {"neurons", inheritance.neuron_order}}
            .dump();
      },
      "the importance orders");
  const auto j = nlohmann::json::parse(text);
  inheritance.head_order = j.at("heads").get<std::vector<std::vector<int>>>();
  inheritance.neuron_order = j.at("neurons").get<std::vector<std::vector<int>>>();
}

}  // namespace vitopt::search
