// Test harness for the ONNX export: finds node + the npm onnxruntime-node the CTest fixture
// installed (tests/export/onnx/install_onnxruntime.sh), runs an exported model in ONNX Runtime
// through tests/fixtures/ort_run.cjs, and runs the same model file on the vitopt runtime.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "test_util.h"
#include "vitopt/runtime.h"

namespace vitopt::exporter::testing {

namespace fs = std::filesystem;

struct Ort {
  std::string module;  // node_modules/onnxruntime-node folder
  std::string skip;    // non-empty: why the comparison cannot run here
};

inline bool on_path(const char* tool) {
  const std::string cmd = std::string("command -v ") + tool + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Skips only when node/npm are absent; with them, a missing module is a failed setup.
inline Ort find_ort() {
  Ort o;
  if (!on_path("node") || !on_path("npm")) {
    o.skip =
        "node/npm not found: install nodejs + npm (scripts/install-deps.sh) to compare with ONNX "
        "Runtime";
    return o;
  }
  o.module = (vitopt::testing::build_dir() / "peers/node_modules/onnxruntime-node").string();
  return o;
}

#define VITOPT_REQUIRE_ORT(ort)                                                                  \
  do {                                                                                           \
    if (!(ort).skip.empty()) GTEST_SKIP() << (ort).skip;                                         \
    ASSERT_TRUE(std::filesystem::exists(std::filesystem::path((ort).module) / "package.json"))   \
        << "onnxruntime-node missing at " << (ort).module                                        \
        << ": the CTest fixture onnxruntime_install (install_onnxruntime.sh) should install it"; \
  } while (0)

// Logits (n, K) from ONNX Runtime for images x (n, c, s, s), one result per graph optimization
// level in `opts` ("disabled", "all"), in that order (empty vectors after a failure).
inline std::vector<std::vector<float>> run_ort(const Ort& ort, const fs::path& onnx,
                                               const std::vector<float>& x, int n, int c, int s,
                                               const std::vector<std::string>& opts,
                                               const fs::path& work) {
  const fs::path in = work / "ort_in.f32", out = work / "ort_out";
  core::write_file_atomic(in, x.data(), x.size() * sizeof(float));
  std::string list;
  for (const auto& o : opts) list += (list.empty() ? "" : ",") + o;
  const fs::path script = vitopt::testing::source_dir() / "tests/fixtures/ort_run.cjs";
  const std::string cmd = "ORT_MODULE='" + ort.module + "' node '" + script.string() + "' '" +
                          onnx.string() + "' '" + in.string() + "' " + std::to_string(n) + "," +
                          std::to_string(c) + "," + std::to_string(s) + "," + std::to_string(s) +
                          " " + list + " '" + out.string() + "'";
  std::vector<std::vector<float>> results(opts.size());
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "ONNX Runtime failed: " << cmd;
    return results;
  }
  for (size_t i = 0; i < opts.size(); ++i) {
    const auto bytes = core::read_file_bytes(out.string() + "." + opts[i] + ".f32");
    results[i].resize(bytes.size() / sizeof(float));
    std::memcpy(results[i].data(), bytes.data(), results[i].size() * sizeof(float));
  }
  return results;
}

inline std::vector<float> run_runtime(const fs::path& model, const std::vector<float>& x, int n) {
  runtime::RuntimeOptions o;
  o.threads = 2;
  auto engine = runtime::Engine::load(model, o);
  std::vector<float> y(static_cast<size_t>(n) * static_cast<size_t>(engine->info().num_classes));
  engine->run(x.data(), n, y.data());
  return y;
}

inline std::vector<int> argmax_rows(const std::vector<float>& y, int k) {
  std::vector<int> out(y.size() / static_cast<size_t>(k));
  for (size_t r = 0; r < out.size(); ++r) {
    const float* row = y.data() + r * static_cast<size_t>(k);
    out[r] = static_cast<int>(std::max_element(row, row + k) - row);
  }
  return out;
}

}  // namespace vitopt::exporter::testing
