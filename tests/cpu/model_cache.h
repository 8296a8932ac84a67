// tests/cpu/model_cache.h: where the tests find the real model, SmolLM2-135M-Instruct (Q4_1 GGUF), that
// scripts/fetch_smollm2.sh puts in the model cache ($MINFER_MODEL_CACHE or <repo>/models). A test that
// needs it calls MINFER_REQUIRE_SMOLLM2(path): without the file it fails saying how to fetch it, or
// skips when MINFER_ALLOW_MISSING_MODEL=1 (machines without network, such as the GPU machine).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace minfer::testing_support {

inline std::filesystem::path smollm2_path() {
  const char* cache = std::getenv("MINFER_MODEL_CACHE");
  const std::filesystem::path base =
      cache && *cache ? std::filesystem::path(cache) : std::filesystem::path(MINFER_SOURCE_DIR) / "models";
  return base / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline bool missing_model_allowed() {
  const char* allow = std::getenv("MINFER_ALLOW_MISSING_MODEL");
  return allow != nullptr && std::string(allow) == "1";
}

}  // namespace minfer::testing_support

#define MINFER_REQUIRE_SMOLLM2(var)                                                                \
  const std::filesystem::path var = ::minfer::testing_support::smollm2_path();                      \
  if (!std::filesystem::exists(var)) {                                                             \
    const std::string msg_ = var.string() + " is missing: run scripts/fetch_smollm2.sh, or set "    \
                                            "MINFER_ALLOW_MISSING_MODEL=1 to skip";                 \
    if (::minfer::testing_support::missing_model_allowed()) GTEST_SKIP() << msg_;                   \
    FAIL() << msg_;                                                                                \
  }
