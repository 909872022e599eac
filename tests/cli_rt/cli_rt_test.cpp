// `vitopt-rt` as a user runs it: info, infer, eval (image folder and IDX pair), bench, one-line
// errors with exit code 2, and the promise that it links no LibTorch (its `ldd`).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "data/image_decode.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "runtime/random_model.h"
#include "test_util.h"
#include "vitopt/runtime.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out;  // stdout + stderr
};

Result shell(const std::string& cmd) {
  std::string out;
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

fs::path rt_binary() { return vitopt::testing::build_dir() / "bin" / "vitopt-rt"; }
Result rt(const std::string& args) { return shell(rt_binary().string() + " " + args); }

// A 28x28x1 random model with class names, and grey images of known pixels.
std::string write_model(const vitopt::testing::TempDir& tmp) {
  vitopt::runtime::RandomModelOptions o;
  o.config = vitopt::io::preset("vit-tiny-test");
  o.weight_std = 0.5f;
  for (int c = 0; c < o.config.num_classes; ++c)
    o.class_names.push_back("class" + std::to_string(c));
  const auto path = (tmp / "m.safetensors").string();
  vitopt::runtime::write_random_model(o, path);
  return path;
}

vitopt::data::Image grey(int seed) {
  vitopt::data::Image img;
  img.height = img.width = 28;
  img.channels = 1;
  for (int p = 0; p < 28 * 28; ++p)
    img.pixels.push_back(static_cast<uint8_t>((p * 13 + seed * 71) % 256));
  return img;
}

TEST(VitoptRt, LinksNoLibTorch) {
  const Result r = shell("ldd " + rt_binary().string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("libvitopt_runtime"), std::string::npos) << r.out;  // ldd really listed
  for (const char* lib : {"libtorch", "libc10", "libgomp", "libopenblas"})
    EXPECT_EQ(r.out.find(lib), std::string::npos) << lib << " linked:\n" << r.out;
}

TEST(VitoptRt, InfoInferAndBench) {
  vitopt::testing::TempDir tmp;
  const auto model = write_model(tmp);
  Result r = rt("info --model " + model + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["image_size"], 28);
  EXPECT_EQ(info["precision"], "fp32");
  EXPECT_EQ(info["macs"].get<int64_t>(),
            vitopt::io::count_macs(vitopt::io::preset("vit-tiny-test")));
  EXPECT_EQ(info["class_names"][3], "class3");

  const auto png = (tmp / "a.png").string();
  vitopt::data::write_png(png, grey(1));
  r = rt("infer --model " + model + " --threads 1 --top 3 --json " + png);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto pred = nlohmann::json::parse(r.out);
  ASSERT_EQ(pred.size(), 1u);
  ASSERT_EQ(pred[0]["top"].size(), 3u);
  // The top class is the engine's argmax on the normalized image, computed here in process.
  auto engine = vitopt::runtime::Engine::load(model);
  const auto img = vitopt::data::load_image_file(png, 1);
  std::vector<float> x(img.pixels.size()), logits(10);
  for (size_t p = 0; p < x.size(); ++p)
    x[p] = (img.pixels[p] / 255.0f - engine->info().mean[0]) / engine->info().std[0];
  engine->run(x.data(), 1, logits.data());
  const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  EXPECT_EQ(pred[0]["top"][0]["class"].get<int64_t>(), best);
  EXPECT_EQ(pred[0]["top"][0]["name"], "class" + std::to_string(best));

  r = rt("bench --model " + model + " --batch 1,2 --runs 2 --warmup 1 --threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 2u);
}

TEST(VitoptRt, EvalOnFolderAndIdxPairAgree) {
  vitopt::testing::TempDir tmp;
  const auto model = write_model(tmp);
  // The same 6 images with labels (i % 2) as class sub-folders (test split) and as an IDX pair.
  std::vector<uint8_t> pixels, labels;
  for (int i = 0; i < 6; ++i) {
    const auto img = grey(i);
    const auto dir = tmp / "folder" / "test" / ("c" + std::to_string(i % 2));
    fs::create_directories(dir);
    vitopt::data::write_png(dir / (std::to_string(i) + ".png"), img);
    pixels.insert(pixels.end(), img.pixels.begin(), img.pixels.end());
    labels.push_back(static_cast<uint8_t>(i % 2));
  }
  auto idx = [](uint32_t magic, std::vector<uint32_t> dims, const std::vector<uint8_t>& data) {
    std::string out;
    for (uint32_t v : [&] {
           dims.insert(dims.begin(), magic);
           return dims;
         }())
      for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
    out.append(data.begin(), data.end());
    return out;
  };
  vitopt::core::write_file_atomic(tmp / "images.idx", idx(2051, {6, 28, 28}, pixels));
  vitopt::core::write_file_atomic(tmp / "labels.idx", idx(2049, {6}, labels));

  Result r = rt("eval --model " + model + " --threads 1 --json --images " +
                (tmp / "images.idx").string() + " --labels " + (tmp / "labels.idx").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto from_idx = nlohmann::json::parse(r.out);
  EXPECT_EQ(from_idx["images"], 6);
  // Reference: the engine's argmax per image.
  auto engine = vitopt::runtime::Engine::load(model);
  int correct = 0;
  for (int i = 0; i < 6; ++i) {
    const auto img = grey(i);
    std::vector<float> x(img.pixels.size()), logits(10);
    for (size_t p = 0; p < x.size(); ++p)
      x[p] = (img.pixels[p] / 255.0f - engine->info().mean[0]) / engine->info().std[0];
    engine->run(x.data(), 1, logits.data());
    correct += (std::max_element(logits.begin(), logits.end()) - logits.begin()) == i % 2;
  }
  EXPECT_EQ(from_idx["top1_correct"], correct);

  r = rt("eval --model " + model +
         " --threads 1 --json --data imagefolder:" + (tmp / "folder").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto from_folder = nlohmann::json::parse(r.out);
  EXPECT_EQ(from_folder["images"], 6);
  EXPECT_EQ(from_folder["top1_correct"], correct);
  EXPECT_EQ(from_folder["per_class_correct"], from_idx["per_class_correct"]);
}

TEST(VitoptRt, BadInputIsOneLineAndExitCode2) {
  vitopt::testing::TempDir tmp;
  vitopt::core::write_file_atomic(tmp / "bad.safetensors", std::string("not a model"));
  Result r = rt("info --model " + (tmp / "bad.safetensors").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("vitopt-rt: error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bad.safetensors"), std::string::npos) << r.out;
  const auto model = write_model(tmp);
  r = rt("eval --model " + model);  // neither --data nor --images
  EXPECT_EQ(r.code, 2) << r.out;
  r = rt("bench --model " + model + " --batch 1,x");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--batch"), std::string::npos) << r.out;
}

}  // namespace
