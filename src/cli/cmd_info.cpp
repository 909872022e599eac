// `vitopt info`: what a model file holds (config, preprocessing, parameter count per part, MACs,
// tensors and file size) and what the runtime's kernels run on this CPU: the level in use
// ($VITOPT_ISA or --isa, else the best the CPU has) and the implementation per kernel family.
// Without --model only the CPU and kernel part.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/model_counts.h"
#include "io/safetensors.h"
#include "model/model_file.h"
#include "vitopt/runtime.h"

namespace vitopt::cli {
namespace {

nlohmann::json kernels_json(const runtime::KernelReport& k) {
  return {{"cpu", k.cpu},           {"cpu_flags", k.cpu_flags}, {"levels", k.levels},
          {"level", k.level},       {"fp32", k.fp32},           {"int8", k.int8},
          {"int4", k.int4},         {"l3_bytes", k.l3_bytes}};
}

void print_kernels(const runtime::KernelReport& k) {
  fmt::print("cpu        {}\n", k.cpu.empty() ? "(no brand string)" : k.cpu);
  fmt::print("features   {}\n", fmt::join(k.cpu_flags, " "));
  fmt::print("L3         {}\n", k.l3_bytes > 0 ? fmt::format("{:.1f} MB", static_cast<double>(k.l3_bytes) / (1 << 20))
                                                  : std::string("unknown (int4 rule assumes 32 MB)"));
  fmt::print("levels     {} (VITOPT_ISA or --isa picks one)\n", fmt::join(k.levels, ", "));
  fmt::print("kernels    level {}: fp32 {}, int8 {}, int4 {}\n", k.level, k.fp32, k.int8, k.int4);
}

}  // namespace

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Show a model file's config, parameters and MACs, and the runtime kernels for this CPU");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::string model, isa;
    bool tensors = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "Model file (without it: only the CPU and kernels)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--isa", f->isa, "Kernel level to report (default: $VITOPT_ISA, else the best this CPU has)")
      ->check(CLI::IsMember({"ref", "avx2", "avx2vnni", "avx512", "avx512vnni"}));
  cmd->add_flag("--tensors", f->tensors, "Also list every tensor with dtype and shape");
  add_import_flags(cmd, f->import);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    const runtime::KernelReport kernels = runtime::kernel_report(f->isa);
    if (f->model.empty()) {
      if (f->common.json) {
        print_json({{"kernels", kernels_json(kernels)}});
      } else {
        print_kernels(kernels);
      }
      return;
    }
    const auto file = io::SafeTensorsFile::load(f->model);
    const io::ModelHeader header = io::read_model_header(file, import_hints(f->import));
    const io::ViTConfig& config = header.config;
    const auto params = io::count_params(config);
    const auto macs = io::count_macs(config);
    nlohmann::json blocks = nlohmann::json::array();
    const auto tokens = config.token_counts();
    for (int b = 0; b < config.depth; ++b) {
      const auto& bc = config.blocks[static_cast<size_t>(b)];
      const size_t ub = static_cast<size_t>(b);
      blocks.push_back({{"index", b},
                        {"tokens", tokens[ub]},
                        {"merged", tokens[ub] - tokens[ub + 1]},
                        {"heads", config.block_heads(b)},
                        {"mlp_dim", config.block_mlp(b)},
                        {"skip_attn", bc.skip_attn},
                        {"skip_mlp", bc.skip_mlp},
                        {"attn_shared_with", bc.attn_shared_with},
                        {"mlp_shared_with", bc.mlp_shared_with},
                        {"delta_rank", bc.delta_rank},
                        {"ranks",
                         {{"qkv", bc.qkv_rank},
                          {"proj", bc.proj_rank},
                          {"fc1", bc.fc1_rank},
                          {"fc2", bc.fc2_rank}}}});
    }
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& name : file.names()) {
      const auto& t = file.info(name);
      tensors.push_back({{"name", name}, {"dtype", io::dtype_name(t.dtype)}, {"shape", t.shape}});
    }
    const bool imported = header.imported;
    if (f->common.json) {
      print_json({{"model", f->model},
                  {"file_bytes", file.file_size()},
                  {"imported", imported},
                  {"precision", header.precision},
                  {"config", config.to_json()},
                  {"params", params},
                  {"macs", macs},
                  {"tokens", tokens},
                  {"blocks", blocks},
                  {"tensors", tensors},
                  {"kernels", kernels_json(kernels)}});
      return;
    }
    fmt::print("model      {}{}\n", f->model,
               imported ? " (timm/HF checkpoint, converted as `vitopt import` would)" : "");
    fmt::print("name       {}\n", config.name);
    fmt::print("precision  {}\n", header.precision);
    fmt::print("input      {}x{}x{}, patch {}, {} tokens\n", config.image_size, config.image_size,
               config.in_channels, config.patch_size, config.num_tokens());
    fmt::print("width      dim {}, depth {}, heads {} x {}, mlp {}\n", config.embed_dim,
               config.depth, config.num_heads, config.head_dim, config.mlp_dim);
    fmt::print("classes    {}{}\n", config.num_classes, config.distill_token ? " (+ distillation head)" : "");
    fmt::print("layout     {}{} prefix token(s){}{}, pool {}, final norm {}\n",
               config.class_token ? "class token, " : "no class token, ",
               config.num_prefix_tokens(),
               config.reg_tokens > 0 ? fmt::format(" ({} registers)", config.reg_tokens) : "",
               config.no_embed_class ? ", positions on patches only" : "", config.pool,
               config.fc_norm ? "after pooling (fc_norm)" : "on every token");
    fmt::print("preprocess mean [{:.4f}] std [{:.4f}] crop_pct {}\n",
               fmt::join(config.preprocess.mean, ", "), fmt::join(config.preprocess.std, ", "),
               config.preprocess.crop_pct);
    fmt::print("params     {} ({:.2f} M)\n", params, static_cast<double>(params) / 1e6);
    fmt::print("MACs       {} ({:.2f} M per image)\n", macs, static_cast<double>(macs) / 1e6);
    fmt::print("file       {} bytes ({:.2f} MB), {} tensors\n", file.file_size(),
               static_cast<double>(file.file_size()) / 1e6, file.names().size());
    for (const auto& b : blocks) {
      std::string extra;
      for (const char* l : {"qkv", "proj", "fc1", "fc2"})
        if (const int r = b["ranks"][l].get<int>(); r > 0)
          extra += fmt::format(" {}-rank {}", l, r);
      for (const char* branch : {"attn", "mlp"})
        if (const int o = b[fmt::format("{}_shared_with", branch)].get<int>(); o >= 0)
          extra += fmt::format(" {} shares block {}", branch, o);
      if (const int d = b["delta_rank"].get<int>(); d > 0)
        extra += fmt::format(" delta-rank {}", d);
      if (const int m = b["merged"].get<int>(); m > 0)
        extra += fmt::format(" tokens {} -> {} (merging)", b["tokens"].get<int>(),
                             b["tokens"].get<int>() - m);
      fmt::print("  block {:2}: heads {} mlp {}{}{}{}\n", b["index"].get<int>(),
                 b["heads"].get<int>(), b["mlp_dim"].get<int>(),
                 b["skip_attn"].get<bool>() ? " skip-attn" : "",
                 b["skip_mlp"].get<bool>() ? " skip-mlp" : "", extra);
    }
    print_kernels(kernels);
    if (f->tensors)
      for (const auto& t : tensors)
        fmt::print("  {:40} {:5} {}\n", t["name"].get<std::string>(), t["dtype"].get<std::string>(),
                   t["shape"].dump());
  });
}

}  // namespace vitopt::cli
