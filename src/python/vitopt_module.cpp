// The `vitopt` Python module (pybind11): the LibTorch-free runtime from Python, so it never clashes
// with a Python `torch`. Model(path, threads) loads and packs a model file; predict() takes a
// NumPy (N, C, H, W) batch or a list of image files and returns NumPy logits that own the C++
// buffer (no copy); config/classes describe the file; benchmark() times batches.
// Errors: vitopt.InputError (a ValueError: bad file, shape or value) and vitopt.InternalError,
// with the same messages as the `vitopt` command.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "data/eval_transform.h"
#include "data/image_decode.h"
#include "data/transforms.h"
#include "infer/latency.h"
#include "io/metadata_keys.h"
#include "io/safetensors.h"
#include "vitopt/runtime.h"

namespace py = pybind11;

namespace vitopt::python {
namespace {

// A loaded model: the engine plus the file's config JSON and eval preprocessing.
class Model {
 public:
  Model(const std::string& path, int threads, const std::string& isa, const std::string& merge_r) {
    runtime::RuntimeOptions o;
    o.threads = threads;
    o.isa = isa;
    o.merge_r = merge_r;
    const auto file = io::SafeTensorsFile::load(path);
    if (const std::string* cfg = file.metadata_value(io::kConfigKey))
      config_json_ = core::json_parse(*cfg, path + " metadata '" + io::kConfigKey + "'").dump();
    engine_ = runtime::Engine::load(path, o);
    // The eval preprocessing `vitopt infer` applies (the file's mean/std/crop_pct, no randomness).
    const runtime::ModelInfo& info = engine_->info();
    transform_ =
        data::eval_transform(info.image_size, info.in_channels, info.mean, info.std, info.crop_pct);
  }

  const runtime::ModelInfo& info() const { return engine_->info(); }
  const std::string& config_json() const { return config_json_; }

  // images (n, C, H, W) contiguous float32 -> logits (n, K) as a NumPy array owning its buffer.
  py::array_t<float> run(const float* images, int n) {
    const int k = info().num_classes;
    auto logits =
        std::make_unique<std::vector<float>>(static_cast<size_t>(n) * static_cast<size_t>(k));
    {
      py::gil_scoped_release release;
      engine_->run(images, n, logits->data());
    }
    float* data = logits->data();
    py::capsule owner(logits.release(),
                      [](void* p) { delete static_cast<std::vector<float>*>(p); });
    return py::array_t<float>({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)}, data,
                              owner);
  }

  py::array_t<float> predict_array(
      const py::array_t<float, py::array::c_style | py::array::forcecast>& batch) {
    const runtime::ModelInfo& i = info();
    const std::vector<py::ssize_t> want{i.in_channels, i.image_size, i.image_size};
    if (batch.ndim() != 4 || batch.shape(1) != want[0] || batch.shape(2) != want[1] ||
        batch.shape(3) != want[2] || batch.shape(0) < 1) {
      std::string got = "(";
      for (py::ssize_t d = 0; d < batch.ndim(); ++d)
        got += (d ? ", " : "") + std::to_string(batch.shape(d));
      core::throw_input("predict: images: expected shape (N, {}, {}, {}) with N >= 1, got {})",
                        want[0], want[1], want[2], got);
    }
    return run(batch.data(), static_cast<int>(batch.shape(0)));
  }

  py::array_t<float> predict_files(const std::vector<std::string>& paths) {
    if (paths.empty()) core::throw_input("predict: expected at least one image file, got none");
    const runtime::ModelInfo& i = info();
    const size_t per = static_cast<size_t>(i.in_channels) * static_cast<size_t>(i.image_size) *
                       static_cast<size_t>(i.image_size);
    std::vector<float> buffer(per * paths.size());
    std::mt19937_64 rng(0);  // eval transforms draw nothing; required by the signature
    for (size_t k = 0; k < paths.size(); ++k) {
      const auto image = data::load_image_file(paths[k], i.in_channels);
      data::apply_transform(image, transform_, rng, buffer.data() + k * per);
    }
    return run(buffer.data(), static_cast<int>(paths.size()));
  }

  py::dict benchmark(int batch, int runs, int warmup) {
    if (batch < 1 || runs < 1 || warmup < 0)
      core::throw_input("benchmark: expected batch >= 1, runs >= 1, warmup >= 0, got {}, {}, {}",
                        batch, runs, warmup);
    const runtime::ModelInfo& i = info();
    const size_t n = static_cast<size_t>(batch) * static_cast<size_t>(i.in_channels) *
                     static_cast<size_t>(i.image_size) * static_cast<size_t>(i.image_size);
    std::vector<float> x(n), y(static_cast<size_t>(batch) * static_cast<size_t>(i.num_classes));
    std::mt19937_64 rng(1);
    std::normal_distribution<float> d;
    for (auto& v : x) v = d(rng);
    std::vector<double> ms;
    {
      py::gil_scoped_release release;
      for (int r = 0; r < warmup; ++r) engine_->run(x.data(), batch, y.data());
      for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        engine_->run(x.data(), batch, y.data());
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
      }
    }
    const double min_ms = *std::min_element(ms.begin(), ms.end());
    const infer::Timing t = infer::summarize(std::move(ms));
    py::dict out;
    out["batch"] = batch;
    out["runs"] = runs;
    out["threads"] = i.threads;
    out["isa"] = i.isa;
    out["p50_ms"] = t.p50;
    out["p90_ms"] = t.p90;
    out["min_ms"] = min_ms;
    out["images_per_s"] = 1000.0 * batch / t.p50;
    return out;
  }

 private:
  std::unique_ptr<runtime::Engine> engine_;
  std::string config_json_;
  data::TransformOptions transform_;
};

}  // namespace
}  // namespace vitopt::python

PYBIND11_MODULE(vitopt, m) {
  using vitopt::python::Model;
  m.doc() = "vitopt: the dependency-free ViT runtime (fp32 and quantized model files) from Python";
  static py::exception<vitopt::core::InputError> input_error(m, "InputError", PyExc_ValueError);
  static py::exception<vitopt::core::InternalError> internal_error(m, "InternalError",
                                                                   PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const vitopt::core::InputError& e) {
      input_error(e.what());
    } catch (const vitopt::core::InternalError& e) {
      internal_error(e.what());
    }
  });
  py::class_<Model>(m, "Model", "A vitopt model file loaded on the runtime")
      .def(py::init<const std::string&, int, const std::string&, const std::string&>(),
           py::arg("path"), py::arg("threads") = 0, py::arg("isa") = "", py::arg("merge_r") = "",
           "Loads and packs a model file. threads=0: all cores; isa: '' (best), 'ref', 'avx2', "
           "'avx512'; merge_r: token merging replacing the file's ('8', '8,8,4,...', "
           "'decreasing:8', 'off'; '' keeps it)")
      .def("predict", &Model::predict_array, py::arg("images"),
           "Logits (N, K) for a float32 array (N, C, H, W) normalized like config['preprocess']")
      .def("predict", &Model::predict_files, py::arg("files"),
           "Logits (N, K) for image files (PNG, JPEG, BMP), preprocessed as the model file says")
      .def("benchmark", &Model::benchmark, py::arg("batch") = 1, py::arg("runs") = 20,
           py::arg("warmup") = 3, "Latency of batches of random images: p50/p90/min ms, images/s")
      .def_property_readonly(
          "config",
          [](const Model& self) -> py::object {
            if (self.config_json().empty()) return py::dict();
            return py::module_::import("json").attr("loads")(self.config_json());
          },
          "The model's ViTConfig (dict), incl. 'preprocess'")
      .def_property_readonly(
          "classes", [](const Model& self) { return self.info().class_names; },
          "Class names stored in the file (may be empty)")
      .def_property_readonly("num_classes",
                             [](const Model& self) { return self.info().num_classes; })
      .def_property_readonly("precision", [](const Model& self) { return self.info().precision; })
      .def_property_readonly(
          "input_shape",
          [](const Model& self) {
            const auto& i = self.info();
            return py::make_tuple(i.in_channels, i.image_size, i.image_size);
          },
          "(C, H, W) of one image");
}
