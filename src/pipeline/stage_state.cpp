#include "pipeline/stage_state.h"

#include <fmt/format.h>

#include <fstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

#ifndef VITOPT_CODE_VERSION
#define VITOPT_CODE_VERSION "unknown"
#endif

namespace vitopt::pipeline {

nlohmann::json Fingerprint::to_json() const {
  return {{"section", section}, {"input", input}, {"code", code}};
}

Fingerprint Fingerprint::from_json(const nlohmann::json& j) {
  return {j.value("section", ""), j.value("input", ""), j.value("code", "")};
}

std::string file_digest(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) core::throw_input("{}: cannot read the model file", path.string());
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64: enough to notice a changed file
  uint64_t bytes = 0;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 0x100000001b3ull;
    }
    bytes += n;
  }
  return fmt::format("fnv1a64:{:016x}:{}", h, bytes);
}

std::string code_version() { return VITOPT_CODE_VERSION; }

std::string stale_reason(const Fingerprint& stored, const Fingerprint& now) {
  std::vector<std::string> why;
  if (stored.section != now.section) why.push_back("its recipe section changed");
  if (stored.input != now.input) why.push_back("its input model changed");
  if (stored.code != now.code)
    why.push_back(fmt::format("the code changed ({} -> {})", stored.code, now.code));
  return fmt::format("{}", fmt::join(why, ", "));
}

std::filesystem::path StageStore::file(const std::string& id) const {
  std::string name = id;
  for (auto& ch : name)
    if (ch == '/') ch = '-';
  return dir_ / (name + ".json");
}

std::optional<StageState> StageStore::load(const std::string& id) const {
  const auto path = file(id);
  if (!std::filesystem::exists(path)) return std::nullopt;
  const auto j = core::json_parse(core::read_file_text(path), path.string());
  StageState s;
  s.status = j.value("status", "");
  s.fingerprint = Fingerprint::from_json(j.value("fingerprint", nlohmann::json::object()));
  s.model = j.value("model", "");
  s.model_digest = j.value("model_digest", "");
  s.result = j.value("result", nlohmann::json());
  return s;
}

void StageStore::save(const std::string& id, const StageState& s) const {
  const nlohmann::json j = {{"stage", id},
                            {"status", s.status},
                            {"fingerprint", s.fingerprint.to_json()},
                            {"model", s.model.string()},
                            {"model_digest", s.model_digest},
                            {"result", s.result}};
  core::write_file_atomic(file(id), j.dump(2) + "\n");
}

std::optional<StageState> StageStore::reusable(const std::string& id, const Fingerprint& now,
                                               std::string& why) const {
  why.clear();
  auto s = load(id);
  if (!s) return std::nullopt;
  if (s->status != "done") {
    why = "it was interrupted";
    return std::nullopt;
  }
  why = stale_reason(s->fingerprint, now);
  if (!why.empty()) return std::nullopt;
  if (!s->model.empty()) {
    if (!std::filesystem::exists(s->model)) {
      why = "its model file " + s->model.string() + " is gone";
      return std::nullopt;
    }
    if (file_digest(s->model) != s->model_digest) {
      why = "its model file " + s->model.string() + " was changed since";
      return std::nullopt;
    }
  }
  return s;
}

}  // namespace vitopt::pipeline
