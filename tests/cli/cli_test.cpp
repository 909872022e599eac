// The `vitopt` binary as a user runs it: init -> info -> eval -> infer on toy models, exit codes,
// and clear one-line errors for unknown flags, bad values and corrupt files.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "data/image_decode.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace {

struct Run {
  int code;
  std::string out;  // stdout + stderr
};

Run vitopt_run(const std::string& args) {
  const auto bin = vitopt::testing::build_dir() / "bin" / "vitopt";
  const std::string cmd = bin.string() + " " + args + " 2>&1";
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

nlohmann::json json_of(const Run& r) { return nlohmann::json::parse(r.out); }

TEST(Cli, InitInfoEvalInferRoundTrip) {
  vitopt::testing::TempDir tmp;
  const auto model = (tmp / "m.safetensors").string();
  auto r = vitopt_run("init --preset vit-tiny-test --seed 1 --out " + model + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;

  r = vitopt_run("info --model " + model + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto info = json_of(r);
  EXPECT_EQ(info["config"]["embed_dim"], 32);
  EXPECT_GT(info["params"].get<int64_t>(), 1000);
  EXPECT_EQ(info["macs"].get<int64_t>(), 340928);  // hand-computed in model tests
  EXPECT_EQ(info["blocks"].size(), 2u);

  r = vitopt_run("eval --model " + model + " --data synthetic --limit 40 --threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto ev = json_of(r)["models"][0]["classification"];  // metrics.json (docs/metrics.md)
  EXPECT_EQ(ev["images"], 40);
  EXPECT_GE(ev["top1"].get<double>(), 0.0);
  EXPECT_LE(ev["top1"].get<double>(), ev["top5"].get<double>());

  vitopt::data::Image img;
  img.height = img.width = 28;
  img.channels = 1;
  img.pixels.assign(28 * 28, 200);
  vitopt::data::write_png(tmp / "a.png", img);
  r = vitopt_run("infer --model " + model + " --json " + (tmp / "a.png").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto inf = json_of(r);
  ASSERT_EQ(inf.size(), 1u);
  ASSERT_EQ(inf[0]["top"].size(), 5u);
  double prev = 1.0;
  for (const auto& p : inf[0]["top"]) {  // sorted, valid probabilities
    EXPECT_LE(p["probability"].get<double>(), prev);
    prev = p["probability"].get<double>();
  }
}

// A timm checkpoint (a vitopt file without its metadata, no config.json) given to commands other
// than `import`: each refuses to guess the heads and names the flag; with --import-heads it reads
// the file exactly as `vitopt import` would convert it.
TEST(Cli, EveryCommandReadsCheckpointsThroughTheOneImport) {
  vitopt::testing::TempDir tmp;
  const auto vitopt_file = (tmp / "m.safetensors").string();
  auto r = vitopt_run("init --preset vit-tiny-test --seed 1 --out " + vitopt_file + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto full = vitopt::io::SafeTensorsFile::load(vitopt_file);
  vitopt::io::SafeTensorsWriter w;
  for (const auto& name : full.names()) {
    const auto& info = full.info(name);
    w.add(name, info.dtype, info.shape, full.data(name), info.nbytes);
  }
  const auto timm = (tmp / "timm.safetensors").string();
  w.write(timm);
  const std::string quantize = "quantize --model " + timm +
                               " --data synthetic --calib-images 32 --no-eval --threads 1 --quiet "
                               "--out " +
                               (tmp / "q.safetensors").string();
  for (const std::string& args :
       {quantize,
        "prune --model " + timm + " --data synthetic --ratio 0.5 --quiet --out " +
            (tmp / "p.safetensors").string(),
        "export --model " + timm + " --out " + (tmp / "m.onnx").string()}) {
    SCOPED_TRACE(args);
    r = vitopt_run(args);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("attention heads is not recorded"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--import-heads"), std::string::npos) << r.out;
  }
  r = vitopt_run(quantize + " --import-heads 2");
  ASSERT_EQ(r.code, 0) << r.out;
  r = vitopt_run("info --model " + (tmp / "q.safetensors").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json_of(r)["config"]["num_heads"], 2);
  EXPECT_EQ(json_of(r)["precision"], "int8");
  // `vitopt import` writes the complete vitopt file once; it reads back as a vitopt file.
  r = vitopt_run("import --model " + timm + " --import-heads 2 --quiet --out " +
                 (tmp / "imported.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.out;
  r = vitopt_run("info --model " + (tmp / "imported.safetensors").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(json_of(r)["imported"].get<bool>());
}

// `vitopt infer --engine runtime` and `vitopt-rt infer` share src/infer: same bytes out, text and
// JSON, and the torch engine agrees on the classes (its logits round differently).
TEST(Cli, RuntimeInferEqualsVitoptRt) {
  vitopt::testing::TempDir tmp;
  const auto model = (tmp / "m.safetensors").string();
  auto r = vitopt_run("init --preset vit-tiny-test --seed 3 --out " + model + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string images;
  for (int i = 0; i < 2; ++i) {
    vitopt::data::Image img;
    img.height = img.width = 28;
    img.channels = 1;
    for (int p = 0; p < 28 * 28; ++p)
      img.pixels.push_back(static_cast<uint8_t>((p * 7 + i * 50) % 256));
    const auto file = tmp / fmt::format("i{}.png", i);
    vitopt::data::write_png(file, img);
    images += fmt::format(" {}", file.string());
  }
  const auto rt = (vitopt::testing::build_dir() / "bin" / "vitopt-rt").string();
  for (const std::string flags : {"", " --json"}) {
    const auto full =
        vitopt_run("infer --engine runtime --threads 1 --model " + model + flags + images);
    ASSERT_EQ(full.code, 0) << full.out;
    const std::string cmd = rt + " infer --threads 1 --model " + model + flags + images + " 2>&1";
    std::string out;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::array<char, 4096> buf{};
    while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
    ASSERT_EQ(::pclose(pipe), 0) << out;
    EXPECT_EQ(full.out, out);
  }
  const auto rt_json =
      json_of(vitopt_run("infer --engine runtime --json --model " + model + images));
  const auto torch_json =
      json_of(vitopt_run("infer --engine torch --json --model " + model + images));
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(rt_json[i]["top"][0]["class"], torch_json[i]["top"][0]["class"]);
}

TEST(Cli, UnknownFlagIsRejected) {
  vitopt::testing::TempDir tmp;
  const auto r = vitopt_run("train --out " + (tmp / "o").string() + " --no-such-flag");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("no-such-flag"), std::string::npos) << r.out;
}

TEST(Cli, BadValuesAreRejected) {
  vitopt::testing::TempDir tmp;
  auto r = vitopt_run("init --preset nope --out " + (tmp / "x").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nope"), std::string::npos) << r.out;
  r = vitopt_run("train --threads -2 --out " + (tmp / "y").string());
  EXPECT_NE(r.code, 0);
  r = vitopt_run("train --label-smoothing 3 --out " + (tmp / "y").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("label-smoothing"), std::string::npos) << r.out;
}

TEST(Cli, CorruptModelFileGivesOneLineErrorNamingTheFile) {
  vitopt::testing::TempDir tmp;
  const auto bad = tmp / "broken.safetensors";
  vitopt::core::write_file_atomic(bad, std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 14));
  const auto r = vitopt_run("info --model " + bad.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("broken.safetensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vitopt: error:"), std::string::npos) << r.out;
}

TEST(Cli, ResumeWithoutCheckpointIsAClearError) {
  vitopt::testing::TempDir tmp;
  const auto r = vitopt_run("train --resume --data synthetic --out " + (tmp / "none").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("no checkpoint"), std::string::npos) << r.out;
}

}  // namespace
