// tests/cpu/test_env_choice.cpp: kernels/common/env.h, the reader of the launchers' A/B switches
// (MINFER_PREFILL_PV, MINFER_PREFILL_COPY, the MINFER_DECODE_* ones): unset or empty gives the default
// (index 0), a listed value its index, anything else the default with one warning naming the variable,
// the value and the allowed ones. Also env_switches, the switches set, for the drivers' repro columns.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "kernels/common/env.h"

namespace minfer {
namespace {

constexpr const char* kVar = "MINFER_TEST_ENV_CHOICE";

TEST(EnvChoice, UnsetAndEmptyGiveTheDefault) {
  unsetenv(kVar);
  EXPECT_EQ(env_choice(kVar, {"cp.async", "tma"}), 0);
  setenv(kVar, "", 1);
  EXPECT_EQ(env_choice(kVar, {"cp.async", "tma"}), 0);
  unsetenv(kVar);
}

TEST(EnvChoice, ListedValuesGiveTheirIndex) {
  setenv(kVar, "tma", 1);
  EXPECT_EQ(env_choice(kVar, {"cp.async", "tma"}), 1);
  setenv(kVar, "256", 1);
  EXPECT_EQ(env_choice(kVar, {"128", "0", "256"}), 2);
  setenv(kVar, "128", 1);
  EXPECT_EQ(env_choice(kVar, {"128", "0", "256"}), 0);
  unsetenv(kVar);
}

TEST(EnvChoice, UnknownValueWarnsAndKeepsTheDefault) {
  setenv(kVar, "fp16", 1);  // close to a listed value, but not one
  testing::internal::CaptureStderr();
  EXPECT_EQ(env_choice(kVar, {"bf16", "f16"}), 0);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(kVar), std::string::npos) << err;
  EXPECT_NE(err.find("fp16"), std::string::npos) << err;
  EXPECT_NE(err.find("bf16, f16"), std::string::npos) << err;
  EXPECT_NE(err.find("using bf16"), std::string::npos) << err;
  unsetenv(kVar);
}

// The repro columns' prefix: the MINFER_ switches set, sorted, as words; the ones that change nothing
// (MINFER_COMMIT, MINFER_MODEL_CACHE, MINFER_SOURCE_DIR, MINFER_TEST_*) and empty values left out.
TEST(EnvSwitches, NameTheSwitchesThatAreSet) {
  const char* kept[] = {"MINFER_DECODE_COPY", "MINFER_PREFILL", "MINFER_COMMIT", "MINFER_MODEL_CACHE", "MINFER_DECODE_STAGES"};
  std::string saved[5];
  bool had[5];
  for (int i = 0; i < 5; ++i) {
    const char* v = std::getenv(kept[i]);
    had[i] = v != nullptr, saved[i] = v ? v : "";
    unsetenv(kept[i]);
  }
  const std::string before = env_switches();  // whatever else the caller's environment sets
  setenv("MINFER_PREFILL", "v3s", 1);
  setenv("MINFER_DECODE_COPY", "auto", 1);
  setenv("MINFER_DECODE_STAGES", "", 1);
  setenv("MINFER_COMMIT", "abc1234", 1);
  setenv("MINFER_MODEL_CACHE", "/tmp/models", 1);
  setenv(kVar, "tma", 1);
  const std::string got = env_switches();
  EXPECT_NE(got.find("MINFER_DECODE_COPY=auto "), std::string::npos) << got;
  EXPECT_LT(got.find("MINFER_DECODE_COPY=auto "), got.find("MINFER_PREFILL=v3s ")) << "sorted: " << got;
  EXPECT_EQ(got.size(), before.size() + std::string("MINFER_DECODE_COPY=auto MINFER_PREFILL=v3s ").size()) << got;
  EXPECT_EQ(got.find("MINFER_COMMIT"), std::string::npos) << got;
  EXPECT_EQ(got.find("MINFER_TEST_"), std::string::npos) << got;
  EXPECT_EQ(got.find("MINFER_DECODE_STAGES"), std::string::npos) << got;
  setenv("MINFER_PREFILL", "it's v3", 1);  // quoted for a shell
  EXPECT_NE(env_switches().find("MINFER_PREFILL='it'\\''s v3' "), std::string::npos) << env_switches();
  unsetenv(kVar);
  for (int i = 0; i < 5; ++i) {
    if (had[i]) {
      setenv(kept[i], saved[i].c_str(), 1);
    } else {
      unsetenv(kept[i]);
    }
  }
}

}  // namespace
}  // namespace minfer
