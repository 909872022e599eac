// What a run folder remembers about each stage, so that a resumed pipeline redoes only the stages
// whose inputs changed: a fingerprint (the stage's recipe section after --set, the content of its
// input model, the code version) and a status, in <run>/stages/<id>.json, written atomically when
// the stage starts ("running") and when it ends ("done", with its result).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace vitopt::pipeline {

struct Fingerprint {
  std::string section;  // canonical recipe text the stage reads
  std::string input;    // file_digest of its input model(s); "" when it has none
  std::string code;     // code_version()
  bool operator==(const Fingerprint&) const = default;
  nlohmann::json to_json() const;
  static Fingerprint from_json(const nlohmann::json& j);
};

// "fnv1a64:<16 hex>:<bytes>" over the file's content; throws InputError if it cannot be read.
std::string file_digest(const std::filesystem::path& path);

// The build's source version (git commit at configure time, "-dirty" when it had local changes).
std::string code_version();

// Why `stored` no longer matches `now`, in words ("its recipe section changed", ...); "" if equal.
std::string stale_reason(const Fingerprint& stored, const Fingerprint& now);

struct StageState {
  std::string status;          // "running" or "done"
  Fingerprint fingerprint;
  std::filesystem::path model; // the model file the stage produced (done)
  std::string model_digest;    // its file_digest when it was written (done)
  nlohmann::json result;       // what the stage returned (done)
};

class StageStore {
 public:
  explicit StageStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::optional<StageState> load(const std::string& id) const;  // none when never started
  void save(const std::string& id, const StageState& state) const;
  // A done state for `id` whose fingerprint equals `now` and whose model is still the file it
  // wrote. Sets `why` to the reason when a state exists but cannot be reused.
  std::optional<StageState> reusable(const std::string& id, const Fingerprint& now,
                                     std::string& why) const;
  std::filesystem::path file(const std::string& id) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace vitopt::pipeline
