// tests/cpu/test_compare.cpp: the error metrics of validate/compare.h on hand-made arrays.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "validate/compare.h"

using minfer::val::compare;

TEST(Compare, ExactMatchHasZeroError) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f};
  const auto s = compare(a.data(), a.data(), 4);
  EXPECT_EQ(s.rel_err, 0.0);
  EXPECT_EQ(s.max_abs, 0.0);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.nonfinite, 0);
  EXPECT_TRUE(s.pass(1e-3));
}

TEST(Compare, NormwiseRelativeErrorAndWorstIndex) {
  const std::vector<float> ref = {3.0f, 4.0f, 0.0f, 0.0f};  // ||ref|| = 5
  const std::vector<float> out = {3.0f, 4.0f, 0.3f, -0.4f};  // ||diff|| = 0.5
  const auto s = compare(out.data(), ref.data(), 4);
  EXPECT_NEAR(s.rel_err, 0.1, 1e-7);
  EXPECT_NEAR(s.max_abs, 0.4, 1e-7);
  EXPECT_EQ(s.worst_index, 3);
  EXPECT_FALSE(s.pass(1e-3));
  EXPECT_TRUE(s.pass(0.2));
}

TEST(Compare, MaxRelIsPerElement) {
  const std::vector<float> ref = {100.0f, 1.0f};
  const std::vector<float> out = {101.0f, 1.5f};
  const auto s = compare(out.data(), ref.data(), 2);
  EXPECT_NEAR(s.max_rel, 0.5, 1e-7);  // element 1: 0.5 / 1
  EXPECT_NEAR(s.max_abs, 1.0, 1e-7);  // element 0
  EXPECT_EQ(s.worst_index, 0);
}

TEST(Compare, NanFailsWhateverTheNorms) {
  std::vector<float> ref(1000, 1.0f), out(1000, 1.0f);
  out[617] = std::numeric_limits<float>::quiet_NaN();
  const auto s = compare(out.data(), ref.data(), 1000);
  EXPECT_EQ(s.nonfinite, 1);
  EXPECT_EQ(s.worst_index, 617);
  EXPECT_FALSE(s.pass(1e30));
  EXPECT_TRUE(std::isinf(s.rel_err));
}

TEST(Compare, InfFailsAndFirstNonfiniteIsWorst) {
  std::vector<float> ref = {1, 2, 3, 4, 5}, out = ref;
  out[4] = std::numeric_limits<float>::infinity();
  out[2] = -std::numeric_limits<float>::infinity();
  const auto s = compare(out.data(), ref.data(), 5);
  EXPECT_EQ(s.nonfinite, 2);
  EXPECT_EQ(s.worst_index, 2);
  EXPECT_FALSE(s.pass(1.0));
}

TEST(Compare, ZeroReference) {
  const std::vector<float> zero(8, 0.0f);
  auto s = compare(zero.data(), zero.data(), 8);
  EXPECT_EQ(s.rel_err, 0.0);
  EXPECT_TRUE(s.pass(1e-3));
  std::vector<float> out(8, 0.0f);
  out[5] = 1e-20f;
  s = compare(out.data(), zero.data(), 8);
  EXPECT_TRUE(std::isinf(s.rel_err));
  EXPECT_EQ(s.worst_index, 5);
  EXPECT_FALSE(s.pass(1e-3));
}

TEST(Compare, NanInReferenceFails) {
  std::vector<float> ref = {1, std::numeric_limits<float>::quiet_NaN()}, out = {1, 1};
  const auto s = compare(out.data(), ref.data(), 2);
  EXPECT_TRUE(std::isnan(s.rel_err));
  EXPECT_FALSE(s.pass(1.0));
}

TEST(Compare, EmptyNeverPasses) {
  const auto s = compare(nullptr, nullptr, 0);
  EXPECT_EQ(s.count, 0);
  EXPECT_FALSE(s.pass(1.0));
}

TEST(Compare, BoundaryOfTolerance) {
  // ref = (1, 0), out = (1, t): rel_err = t exactly (up to float rounding of t).
  const std::vector<float> ref = {1.0f, 0.0f};
  const std::vector<float> just_under = {1.0f, 0.0009f}, just_over = {1.0f, 0.0011f};
  EXPECT_TRUE(compare(just_under.data(), ref.data(), 2).pass(1e-3));
  EXPECT_FALSE(compare(just_over.data(), ref.data(), 2).pass(1e-3));
}

TEST(Compare, SummaryNamesTheNumbers) {
  const std::vector<float> ref = {1.0f, 2.0f}, out = {1.0f, 2.5f};
  const std::string s = compare(out.data(), ref.data(), 2).summary();
  EXPECT_NE(s.find("rel_err="), std::string::npos);
  EXPECT_NE(s.find("worst=[1]"), std::string::npos);
  EXPECT_NE(s.find("nonfinite=0"), std::string::npos);
}
