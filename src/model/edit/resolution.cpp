// Input-resolution change (see resolution.h): a new model of the edited config with the weights
// copied by name and the position embeddings' patch grid resampled.
#include "model/edit/resolution.h"

#include <cmath>

#include "core/error.h"

namespace vitopt::edit {

torch::Tensor resample_pos_embed(const torch::Tensor& pos, int prefix, int new_grid) {
  const int64_t patches = pos.size(1) - prefix, C = pos.size(2);
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  if (grid * grid != patches || new_grid < 1)
    core::throw_internal("resample_pos_embed: {} patch positions are not a square grid, or grid {}",
                         patches, new_grid);
  if (new_grid == grid) return pos;
  namespace F = torch::nn::functional;
  const auto cells = pos.slice(1, prefix).reshape({1, grid, grid, C}).permute({0, 3, 1, 2});
  // Bicubic on the (g, g) grid of C channels; antialiasing only matters (and only applies) when
  // the grid shrinks, where plain bicubic would alias the embeddings' higher frequencies.
  const auto resized =
      F::interpolate(cells.to(torch::kFloat), F::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{new_grid, new_grid})
                                                  .mode(torch::kBicubic)
                                                  .align_corners(false)
                                                  .antialias(new_grid < grid));  // (1, C, g', g')
  const auto flat = resized.permute({0, 2, 3, 1}).reshape({1, int64_t{new_grid} * new_grid, C});
  return torch::cat({pos.slice(1, 0, prefix), flat.to(pos.dtype())}, 1);
}

model::ViT resize_input(model::ViT& src, int image_size) {
  io::ViTConfig c = src->config();
  if (image_size < 1 || image_size % c.patch_size != 0)
    core::throw_input("input resolution {}: expected a multiple of the patch size {}", image_size,
                      c.patch_size);
  c.image_size = image_size;
  c.normalize(c.name);
  model::ViT dst(c);
  torch::NoGradGuard no_grad;
  auto src_params = src->named_parameters();
  for (auto& item : dst->named_parameters()) {
    const auto& s = src_params[item.key()];
    item.value().copy_(
        item.key() == "pos_embed"
            ? resample_pos_embed(s, c.no_embed_class ? 0 : c.num_prefix_tokens(), c.grid())
            : s);
  }
  // Buffers: pruning masks exist only where set, so they are set again on the same Linears.
  auto dst_modules = dst->named_modules("", /*include_self=*/false);
  auto dst_buffers = dst->named_buffers();
  for (const auto& item : src->named_buffers()) {
    const std::string& key = item.key();
    const auto dot = key.rfind('.');
    if (auto* d = dst_buffers.find(key); d && d->sizes() == item.value().sizes()) {
      d->copy_(item.value());
    } else if (auto* m = dot == std::string::npos ? nullptr : dst_modules.find(key.substr(0, dot));
               m && key.substr(dot + 1) == "mask" && (*m)->as<model::LinearImpl>()) {
      (*m)->as<model::LinearImpl>()->set_mask(item.value());
    } else {
      core::throw_internal("resize_input: buffer '{}' has no place in the resized model", key);
    }
  }
  dst->train(src->is_training());
  return dst;
}

}  // namespace vitopt::edit
