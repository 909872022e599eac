#include "infer/model_summary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/safetensors.h"

namespace vitopt::infer {

nlohmann::json describe_model(const std::filesystem::path& model_file,
                              const runtime::RuntimeOptions& options) {
  const auto engine = runtime::Engine::load(model_file, options);
  const runtime::ModelInfo& info = engine->info();
  const auto file = io::SafeTensorsFile::load(model_file);
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& name : file.names()) {
    const auto& t = file.info(name);
    tensors.push_back({{"name", name}, {"dtype", io::dtype_name(t.dtype)}, {"shape", t.shape}});
  }
  return {{"model", model_file.string()},
          {"file_bytes", file.file_size()},
          {"name", info.name},
          {"image_size", info.image_size},
          {"in_channels", info.in_channels},
          {"num_classes", info.num_classes},
          {"mean", info.mean},
          {"std", info.std},
          {"crop_pct", info.crop_pct},
          {"class_names", info.class_names},
          {"precision", info.precision},
          {"isa", info.isa},
          {"params", info.params},
          {"macs", info.macs},
          {"tensors", tensors}};
}

std::string describe_model_text(const nlohmann::json& s, bool with_tensors) {
  std::string out;
  out += fmt::format("model      {}\n", s["model"].get<std::string>());
  out += fmt::format("name       {}\n", s["name"].get<std::string>());
  out += fmt::format("input      {0}x{0}x{1}\n", s["image_size"].get<int>(),
                     s["in_channels"].get<int>());
  out += fmt::format("classes    {}\n", s["num_classes"].get<int>());
  out +=
      fmt::format("preprocess mean [{:.4f}] std [{:.4f}] crop_pct {}\n",
                  fmt::join(s["mean"].get<std::vector<float>>(), ", "),
                  fmt::join(s["std"].get<std::vector<float>>(), ", "), s["crop_pct"].get<float>());
  const auto params = s["params"].get<int64_t>();
  const auto macs = s["macs"].get<int64_t>();
  out += fmt::format("params     {} ({:.2f} M)\n", params, static_cast<double>(params) / 1e6);
  out += fmt::format("MACs       {} ({:.2f} M per image)\n", macs, static_cast<double>(macs) / 1e6);
  out += fmt::format("precision  {} (kernels: {})\n", s["precision"].get<std::string>(),
                     s["isa"].get<std::string>());
  const auto bytes = s["file_bytes"].get<int64_t>();
  out += fmt::format("file       {} bytes ({:.2f} MB), {} tensors\n", bytes,
                     static_cast<double>(bytes) / 1e6, s["tensors"].size());
  if (with_tensors)
    for (const auto& t : s["tensors"])
      out += fmt::format("  {:40} {:5} {}\n", t["name"].get<std::string>(),
                         t["dtype"].get<std::string>(), t["shape"].dump());
  return out;
}

}  // namespace vitopt::infer
