// QAT (see qat.h): hooks in, train_model, hooks out, re-quantize with the final scales.
#include "compress/quant/qat.h"

#include "compress/quant/calibration.h"
#include "compress/quant/quantizer.h"
#include "core/error.h"
#include "io/tensor_layout.h"
#include "model/edit/copy.h"
#include "train/data_bridge.h"
#include "train/torch_env.h"
#include "train/trainer.h"

namespace vitopt::quant {
namespace {

std::string linear_of(const std::string& weight) { return weight.substr(0, weight.size() - 7); }

// Per-row (out, 1) or per-tensor (1, 1) view of a quantized weight's scale / zero point.
torch::Tensor rows_view(const torch::Tensor& t) { return t.reshape({-1, 1}); }

}  // namespace

QuantizedState run_qat(const QuantizedState& ptq, const QatOptions& o, nlohmann::json* history) {
  if (o.epochs < 1 || o.epochs > 100)
    core::throw_input("--qat-epochs: expected 1..100, got {}", o.epochs);
  const torch::Device device = train::parse_device(o.device);
  auto fp32 = ptq.fp32;
  for (const auto& bc : fp32->config().blocks)
    if (bc.qkv_rank || bc.proj_rank || bc.fc1_rank || bc.fc2_rank)
      core::throw_input("--qat-epochs: QAT trains dense weights; this model has low-rank layers. "
                        "Quantize it with PTQ (no --qat-epochs), or fine-tune before factorizing");
  auto m = edit::copy_model(fp32);
  const auto fopts = torch::TensorOptions().dtype(torch::kFloat).device(device);

  std::vector<std::pair<std::string, torch::Tensor>> extra;  // LSQ scales
  std::map<std::string, torch::Tensor> weight_scale;         // by weight name: (out,1) or (1,1)
  std::map<std::string, torch::Tensor> input_scale;          // by Linear name: scalar
  auto modules = m->named_modules("", false);
  for (const auto& [wname, qw] : ptq.weights) {
    const std::string lname = linear_of(wname);
    if (lname == "patch_embed.proj") {  // a conv: keep its PTQ integers, frozen
      torch::NoGradGuard no_grad;
      m->patch_embed_proj->weight.copy_(qw.dequantize().view(m->patch_embed_proj->weight.sizes()));
      m->patch_embed_proj->weight.set_requires_grad(false);
      continue;
    }
    auto* lin = modules[lname]->as<model::LinearImpl>();
    if (lin == nullptr) core::throw_internal("run_qat: '{}' is not a Linear", lname);
    const QRange range = io::quant_range(qw.spec.bits, qw.spec.symmetric);
    const auto z = rows_view(qw.zero_point).to(fopts);
    auto s = rows_view(qw.scale).to(fopts).clone();
    if (o.lsq) {
      s.set_requires_grad(true);
      extra.emplace_back(wname + ".scale", s);
      const int64_t per_scale = qw.spec.per_channel ? qw.codes.size(1) : qw.codes.numel();
      const double g = lsq_grad_scale(per_scale, range);
      lin->weight_transform = [s, z, range, g](const torch::Tensor& w) {
        return fake_quant_lsq(w, s, z, range, g);
      };
    } else {
      lin->weight_transform = [s, z, range](const torch::Tensor& w) {
        return fake_quant_ste(w, s, z, range);
      };
    }
    weight_scale[wname] = s;
  }
  // A Linear sharing another block's weights fake-quantizes them as their owner does (one set of
  // codes in the file); its delta stays fp32 (LinearImpl adds it after the transform).
  for (const io::LinearLayout& l : io::model_linears(m->config()))
    if (!l.shared_from.empty())
      modules[l.name]->as<model::LinearImpl>()->weight_transform =
          modules[l.shared_from]->as<model::LinearImpl>()->weight_transform;
  const int patch = m->config().patch_size;
  for (const auto& [lname, iq] : ptq.inputs) {
    if (lname == "patch_embed.proj") {  // the image needs no gradient
      m->patch_input_transform = [iq, patch](const torch::Tensor& x) {
        return model::fake_quant_patch_input(x, iq, patch);
      };
      continue;
    }
    auto* lin = modules[lname]->as<model::LinearImpl>();
    if (lin == nullptr) core::throw_internal("run_qat: '{}' is not a Linear", lname);
    if (iq.dynamic) {
      lin->input_transform = [iq](const torch::Tensor& x) {
        torch::Tensor fq;
        {
          torch::NoGradGuard no_grad;
          fq = model::fake_quant_input(x, iq);
        }
        return x + (fq - x.detach());  // plain STE: the per-token range always contains x
      };
      continue;
    }
    const QRange range = io::quant_range(iq.bits, iq.symmetric);
    const auto z = torch::full({}, static_cast<float>(iq.zero_point), fopts);
    auto s = torch::full({}, iq.scale, fopts);
    if (o.lsq) {
      s.set_requires_grad(true);
      extra.emplace_back(lname + ".input_scale", s);
      const double g = lsq_grad_scale(1 << 14, range);  // ~elements per batch (LSQ paper)
      lin->input_transform = [s, z, range, g](const torch::Tensor& x) {
        return fake_quant_lsq(x, s, z, range, g);
      };
    } else {
      lin->input_transform = [s, z, range](const torch::Tensor& x) {
        return fake_quant_ste(x, s, z, range);
      };
    }
    input_scale[lname] = s;
  }

  train::TrainOptions t;
  t.epochs = o.epochs;
  t.batch_size = o.batch_size;
  t.lr = o.lr;
  t.min_lr = o.lr / 100;
  t.weight_decay = 0;
  t.warmup_epochs = 0;
  t.label_smoothing = 0.1;
  t.crop_padding = 0;
  t.seed = o.seed;
  t.workers = o.workers;
  t.quiet = o.quiet;
  t.out_dir = o.work_dir;
  t.device = o.device;
  t.extra_parameters = extra;
  t.after_step = [extra](model::ViT&, int64_t) {  // LSQ steps must stay positive
    torch::NoGradGuard no_grad;
    for (const auto& item : extra) item.second.clamp_min_(1e-8);
  };
  // Attention matmuls keep their PTQ scales; the hooks pass gradients straight through.
  if (ptq.attention) model::apply_attention_quant(m, &*ptq.attention);
  auto train_set =
      train::open_dataset_for(o.data, m->config(), data::Split::Train, o.images, o.seed);
  const auto result = train::train_model(m, train_set, nullptr, t);
  if (history != nullptr) *history = result.history;

  // Export: the latent weights quantized with the final scales, exactly as the forward did.
  m->to(torch::kCPU);
  m->patch_input_transform = nullptr;
  model::apply_attention_quant(m, nullptr);
  m->patch_embed_proj->weight.set_requires_grad(true);
  QuantizedState out = ptq;
  out.fp32 = m;
  torch::NoGradGuard no_grad;
  for (auto& [wname, qw] : out.weights) {
    const std::string lname = linear_of(wname);
    if (lname == "patch_embed.proj") continue;
    auto* lin = modules[lname]->as<model::LinearImpl>();
    lin->weight_transform = nullptr;
    const auto s = weight_scale.at(wname).detach().to(torch::kCPU);
    const auto range = io::quant_range(qw.spec.bits, qw.spec.symmetric);
    qw.scale = s.reshape({-1}).clone();
    qw.codes = model::quantize_codes(lin->weight.detach(), s, rows_view(qw.zero_point), range);
  }
  for (const io::LinearLayout& l : io::model_linears(m->config()))
    if (!l.shared_from.empty())
      modules[l.name]->as<model::LinearImpl>()->weight_transform = nullptr;
  for (auto& [lname, iq] : out.inputs) {
    if (lname == "patch_embed.proj") continue;
    modules[lname]->as<model::LinearImpl>()->input_transform = nullptr;
    if (auto it = input_scale.find(lname); it != input_scale.end())
      iq.scale = it->second.item<float>();
  }
  return out;
}

}  // namespace vitopt::quant
