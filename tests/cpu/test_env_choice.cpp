// tests/cpu/test_env_choice.cpp: kernels/common/env.h, the reader of the launchers' A/B switches
// (MINFER_PREFILL_PV, MINFER_PREFILL_COPY, the MINFER_DECODE_* ones): unset or empty gives the default
// (index 0), a listed value its index, anything else the default with one warning naming the variable,
// the value and the allowed ones.
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

}  // namespace
}  // namespace minfer
