// tests/cpu/test_reference_ops.cpp: the scalar reference ops (reference/ops.h) against values
// computed by hand or in closed form, and their rounding to bf16/fp16 at the documented points.
#include <cmath>
#include <numbers>
#include <vector>

#include <gtest/gtest.h>

#include "reference/ops.h"

namespace minfer::ref {
namespace {

// --- embedding ---------------------------------------------------------------------------------

TEST(RefEmbedding, CopiesRowsAndZeroesOutOfRangeIds) {
  const std::vector<float> table = {1, 2, 3, 4, 5, 6};  // (V=3, H=2)
  const std::vector<int32_t> ids = {2, -1, 0, 3};       // (T=4)
  std::vector<float> out(8, 99.0f);                     // (T, H)
  embedding(DType::F32, ids.data(), table.data(), out.data(), 4, 3, 2);
  EXPECT_EQ(out, (std::vector<float>{5, 6, 0, 0, 1, 2, 0, 0}));
}

TEST(RefEmbedding, RoundsToDtype) {
  const std::vector<float> table = {1.0f + 1.0f / 512};  // (1,1): not a bf16 value
  const int32_t id = 0;
  float out = 0;
  embedding(DType::BF16, &id, table.data(), &out, 1, 1, 1);
  EXPECT_EQ(out, 1.0f);
  embedding(DType::F16, &id, table.data(), &out, 1, 1, 1);
  EXPECT_EQ(out, 1.0f + 1.0f / 512);  // fp16 keeps 10 mantissa bits
}

// --- rmsnorm -----------------------------------------------------------------------------------

TEST(RefRmsNorm, ThreeFour) {
  // mean(x^2) = 12.5, rms = sqrt(12.5) = 3.5355339...
  const std::vector<float> x = {3, 4}, w = {1, 2};
  std::vector<float> out(2);
  rmsnorm(DType::F32, x.data(), nullptr, nullptr, w.data(), out.data(), 1, 2, 0.0);
  EXPECT_EQ(out[0], static_cast<float>(3.0 / std::sqrt(12.5)));  // exact, rounded once to fp32
  EXPECT_EQ(out[1], static_cast<float>(2 * 4.0 / std::sqrt(12.5)));
  // eps enters under the root: eps = 3.5 gives rms = 4.
  rmsnorm(DType::F32, x.data(), nullptr, nullptr, w.data(), out.data(), 1, 2, 3.5);
  EXPECT_FLOAT_EQ(out[0], 0.75f);
  EXPECT_FLOAT_EQ(out[1], 2.0f);
}

TEST(RefRmsNorm, RowsAreIndependent) {
  const std::vector<float> x = {3, 4, 0, 5}, w = {1, 1};  // (R=2, H=2)
  std::vector<float> out(4);
  rmsnorm(DType::F32, x.data(), nullptr, nullptr, w.data(), out.data(), 2, 2, 0.0);
  EXPECT_FLOAT_EQ(out[2], 0.0f);
  EXPECT_FLOAT_EQ(out[3], static_cast<float>(std::sqrt(2.0)));  // 5 / sqrt(12.5)
}

TEST(RefRmsNorm, FusedResidualNormsTheRoundedSum) {
  // bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 and rounds to even (1).
  const std::vector<float> x = {1.0f, 2.0f}, res = {1.0f / 256, 0.0f}, w = {1, 1};
  std::vector<float> res_out(2), out(2);
  rmsnorm(DType::BF16, x.data(), res.data(), res_out.data(), w.data(), out.data(), 1, 2, 0.0);
  EXPECT_EQ(res_out[0], 1.0f);
  EXPECT_EQ(res_out[1], 2.0f);
  const double rms = std::sqrt((1.0 + 4.0) / 2);  // of the rounded sum [1, 2]
  EXPECT_EQ(out[0], round_to(DType::BF16, static_cast<float>(1.0 / rms)));
  EXPECT_EQ(out[1], round_to(DType::BF16, static_cast<float>(2.0 / rms)));
  // fp32 keeps the small term.
  rmsnorm(DType::F32, x.data(), res.data(), res_out.data(), w.data(), out.data(), 1, 2, 0.0);
  EXPECT_EQ(res_out[0], 1.0f + 1.0f / 256);
}

TEST(RefRmsNorm, AliasedBuffers) {
  std::vector<float> x = {3, 0}, res = {0, 4};
  const std::vector<float> w = {1, 1};
  rmsnorm(DType::F32, x.data(), res.data(), res.data(), w.data(), x.data(), 1, 2, 0.0);
  EXPECT_EQ(res, (std::vector<float>{3, 4}));
  EXPECT_NEAR(x[0], 3.0 / std::sqrt(12.5), 1e-7);
  EXPECT_NEAR(x[1], 4.0 / std::sqrt(12.5), 1e-7);
}

TEST(RefRmsNorm, OutputRoundedOnceToFp16) {
  const std::vector<float> x = {1, 2, 3}, w = {1.5f, 0.25f, 3.0f};
  std::vector<float> out(3);
  rmsnorm(DType::F16, x.data(), nullptr, nullptr, w.data(), out.data(), 1, 3, 1e-6);
  const double inv = 1.0 / std::sqrt(14.0 / 3 + 1e-6);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], round_to(DType::F16, static_cast<float>(x[i] * inv * w[i])));
}

// --- rope --------------------------------------------------------------------------------------

ModelConfig rope_cfg(int hd, double theta) {
  ModelConfig c;
  c.head_dim = hd;
  c.rope_theta = theta;
  return c;
}

TEST(RefRope, InvFreqPlain) {
  const std::vector<double> f = rope_inv_freq(rope_cfg(8, 10000.0));
  ASSERT_EQ(f.size(), 4u);
  EXPECT_NEAR(f[0], 1.0, 1e-15);
  EXPECT_NEAR(f[1], 0.1, 1e-15);
  EXPECT_NEAR(f[2], 0.01, 1e-15);
  EXPECT_NEAR(f[3], 0.001, 1e-15);
}

TEST(RefRope, CosSinTableLayout) {
  const std::vector<double> t = rope_cos_sin(rope_cfg(4, 100.0), 3);  // inv_freq [1, 0.1]
  ASSERT_EQ(t.size(), 3u * 2 * 2);
  EXPECT_DOUBLE_EQ(t[(2 * 2 + 0) * 2 + 0], std::cos(2.0));
  EXPECT_DOUBLE_EQ(t[(2 * 2 + 0) * 2 + 1], std::sin(2.0));
  EXPECT_NEAR(t[(2 * 2 + 1) * 2 + 0], std::cos(0.2), 1e-15);
  EXPECT_NEAR(t[(2 * 2 + 1) * 2 + 1], std::sin(0.2), 1e-15);
  EXPECT_EQ(t[0], 1.0);
  EXPECT_EQ(t[1], 0.0);
}

ModelConfig llama3_cfg(int orig, double low, double high, double factor) {
  ModelConfig c = rope_cfg(4, 10000.0);  // inv_freq [1, 0.01], wavelengths [2pi, 200pi]
  c.rope_scaling.llama3 = true;
  c.rope_scaling.original_max_position = orig;
  c.rope_scaling.low_freq_factor = low;
  c.rope_scaling.high_freq_factor = high;
  c.rope_scaling.factor = factor;
  return c;
}

TEST(RefRope, Llama3Regions) {
  // orig 8192, low 1, high 4: both wavelengths < 2048 -> unchanged.
  std::vector<double> f = rope_inv_freq(llama3_cfg(8192, 1, 4, 8));
  EXPECT_NEAR(f[0], 1.0, 1e-15);
  EXPECT_NEAR(f[1], 0.01, 1e-15);
  // orig 500: low wavelength 500 < 200pi -> the slow one is divided by factor; 2pi < 125 kept.
  f = rope_inv_freq(llama3_cfg(500, 1, 4, 8));
  EXPECT_NEAR(f[0], 1.0, 1e-15);
  EXPECT_NEAR(f[1], 0.01 / 8, 1e-15);
  // orig 1000: 250 <= 200pi <= 1000 -> smooth = (1000 / (200pi) - 1) / 3.
  f = rope_inv_freq(llama3_cfg(1000, 1, 4, 8));
  const double s = (10.0 / std::numbers::pi / 2 - 1) / 3;
  EXPECT_NEAR(f[1], (1 - s) * 0.01 / 8 + s * 0.01, 1e-15);
  EXPECT_NEAR(f[0], 1.0, 1e-15);
}

TEST(RefRope, Llama3BoundariesAreContinuous) {
  const double edge = 1000 * 0.01 / (2 * std::numbers::pi);  // low/high factor putting 200pi on a boundary
  for (double d : {1 - 1e-12, 1 + 1e-12}) {
    // low boundary: just outside -> inv/factor, just inside -> smooth ~ 0 -> inv/factor
    EXPECT_NEAR(rope_inv_freq(llama3_cfg(1000, edge * d, 4, 8))[1], 0.01 / 8, 1e-12);
    // high boundary: just outside -> unchanged, just inside -> smooth ~ 1 -> inv
    EXPECT_NEAR(rope_inv_freq(llama3_cfg(1000, 1, edge * d, 8))[1], 0.01, 1e-12);
  }
}

TEST(RefRope, RotatesUnitVectorsByKnownAngles) {
  const ModelConfig c = rope_cfg(4, 10000.0);  // inv_freq [1, 0.01]
  const std::vector<double> cs = rope_cos_sin(c, 8);
  std::vector<float> q = {1, 0, 0, 0, 0, 1, 0, 0};  // (T=1, nh=2, hd=4): e0 in head 0, e1 in head 1
  std::vector<float> k = {0, 0, 1, 0};              // (T=1, nkv=1, hd=4): e2, the partner of e0
  const int32_t pos = 5;
  rope(DType::F32, q.data(), k.data(), 8, 4, &pos, cs.data(), nullptr, nullptr, 1e-6, 1, 8, 2, 1, 4);
  EXPECT_NEAR(q[0], std::cos(5.0), 1e-7);
  EXPECT_NEAR(q[2], std::sin(5.0), 1e-7);
  EXPECT_EQ(q[1], 0.0f);
  EXPECT_EQ(q[3], 0.0f);
  EXPECT_NEAR(q[5], std::cos(0.05), 1e-7);
  EXPECT_NEAR(q[7], std::sin(0.05), 1e-7);
  EXPECT_NEAR(k[0], -std::sin(5.0), 1e-7);  // (a, b) = (0, 1) -> (-s, c)
  EXPECT_NEAR(k[2], std::cos(5.0), 1e-7);
}

TEST(RefRope, PositionZeroIsIdentityAndStridesAreHonoured) {
  const ModelConfig c = rope_cfg(2, 10000.0);
  const std::vector<double> cs = rope_cos_sin(c, 4);
  std::vector<float> q = {0.3f, -0.7f, 42.0f, 0.5f, 0.25f, 42.0f};  // (T=2, nh=1, hd=2), stride 3
  const std::vector<int32_t> pos = {0, 1};
  rope(DType::F32, q.data(), nullptr, 3, 0, pos.data(), cs.data(), nullptr, nullptr, 1e-6, 2, 4, 1, 1, 2);
  EXPECT_EQ(q[0], 0.3f);
  EXPECT_EQ(q[1], -0.7f);
  EXPECT_EQ(q[2], 42.0f);
  EXPECT_EQ(q[5], 42.0f);
  EXPECT_NEAR(q[3], 0.5 * std::cos(1.0) - 0.25 * std::sin(1.0), 1e-7);
  EXPECT_NEAR(q[4], 0.25 * std::cos(1.0) + 0.5 * std::sin(1.0), 1e-7);
}

TEST(RefRope, PerHeadNormBeforeRotationThenOneRounding) {
  const ModelConfig c = rope_cfg(2, 10000.0);
  const std::vector<double> cs = rope_cos_sin(c, 2);
  // head 0 = (3, 4), head 1 = (0, 2): normed to (3, 4)/sqrt(12.5) * w and (0, sqrt 2) * w.
  std::vector<float> q = {3, 4, 0, 2};
  const std::vector<float> w = {2.0f, 0.5f};
  const int32_t pos = 1;
  rope(DType::BF16, q.data(), nullptr, 4, 0, &pos, cs.data(), w.data(), nullptr, 0.0, 1, 2, 2, 1, 2);
  const double a = 3 / std::sqrt(12.5) * 2, b = 4 / std::sqrt(12.5) * 0.5;
  const double co = std::cos(1.0), si = std::sin(1.0);
  EXPECT_EQ(q[0], round_to(DType::BF16, static_cast<float>(a * co - b * si)));
  EXPECT_EQ(q[1], round_to(DType::BF16, static_cast<float>(b * co + a * si)));
  const double b1 = std::sqrt(2.0) * 0.5;
  EXPECT_EQ(q[2], round_to(DType::BF16, static_cast<float>(-b1 * si)));
  EXPECT_EQ(q[3], round_to(DType::BF16, static_cast<float>(b1 * co)));
}

TEST(RefRope, PositionOutsideTableThrows) {
  const std::vector<double> cs = rope_cos_sin(rope_cfg(2, 10000.0), 2);
  std::vector<float> q = {1, 0};
  const int32_t pos = 2;
  EXPECT_THROW(rope(DType::F32, q.data(), nullptr, 2, 0, &pos, cs.data(), nullptr, nullptr, 0, 1, 2, 1, 1, 2),
               std::out_of_range);
}

// --- swiglu ------------------------------------------------------------------------------------

TEST(RefSwiglu, KnownValuesAndStrides) {
  // (R=2, 2I=4) with in_stride 5; out (R=2, I=2) with out_stride 3.
  const std::vector<float> gu = {0, 1, 5, 2, 9, -1, 2, 1, -3, 9};
  std::vector<float> out(6, 7.0f);
  swiglu(DType::F32, gu.data(), out.data(), 2, 2, 5, 3);
  EXPECT_EQ(out[0], 0.0f);                                      // silu(0) * 5
  EXPECT_NEAR(out[1], 2.0 / (1 + std::exp(-1.0)), 1e-7);        // silu(1) * 2
  EXPECT_EQ(out[2], 7.0f);                                      // padding untouched
  EXPECT_NEAR(out[3], -1.0 / (1 + std::exp(1.0)) * 1, 1e-7);    // silu(-1) * 1
  EXPECT_NEAR(out[4], 2.0 / (1 + std::exp(-2.0)) * -3, 1e-6);   // silu(2) * -3
  EXPECT_EQ(out[5], 7.0f);
}

TEST(RefSwiglu, RoundsToBf16) {
  const std::vector<float> gu = {1, 1};
  float out = 0;
  swiglu(DType::BF16, gu.data(), &out, 1, 1, 2, 1);
  EXPECT_EQ(out, round_to(DType::BF16, static_cast<float>(1 / (1 + std::exp(-1.0)))));
  EXPECT_NE(out, static_cast<float>(1 / (1 + std::exp(-1.0))));
}

// --- linear ------------------------------------------------------------------------------------

TEST(RefLinear, HandComputedWithBias) {
  const std::vector<float> x = {1, 2, -1, 0.5f};           // (R=2, K=2)
  const std::vector<float> w = {1, 0, 3, 4, -2, 1};        // (N=3, K=2)
  const std::vector<float> b = {0.5f, -1, 0};              // (N)
  std::vector<float> y(6);
  linear(DType::F32, x.data(), w.data(), b.data(), y.data(), 2, 2, 3);
  EXPECT_EQ(y, (std::vector<float>{1.5f, 10, 0, -0.5f, -2, 2.5f}));
  linear(DType::F32, x.data(), w.data(), nullptr, y.data(), 2, 2, 3);
  EXPECT_EQ(y[0], 1.0f);
}

TEST(RefLinear, AccumulatesInDoubleAndRoundsOnce) {
  // 1 + 2^-30 - 1 in float accumulation loses the small term; double keeps it.
  const std::vector<float> x = {1, 1, 1};
  const std::vector<float> w = {1, std::ldexp(1.0f, -30), -1};
  float y = 0;
  linear(DType::F32, x.data(), w.data(), nullptr, &y, 1, 3, 1);
  EXPECT_EQ(y, std::ldexp(1.0f, -30));
  // bf16 output: 1 + 2^-9 rounds to 1; fp16: 1 + 2^-12 rounds to 1 but 1 + 2^-9 survives.
  const std::vector<float> w2 = {1, std::ldexp(1.0f, -9), 0};
  linear(DType::BF16, x.data(), w2.data(), nullptr, &y, 1, 3, 1);
  EXPECT_EQ(y, 1.0f);
  linear(DType::F16, x.data(), w2.data(), nullptr, &y, 1, 3, 1);
  EXPECT_EQ(y, 1.0f + std::ldexp(1.0f, -9));
}

// --- attention ---------------------------------------------------------------------------------

TEST(RefAttention, OneKeyGivesItsValue) {
  const std::vector<float> q = {3, -2}, k = {0.5f, 7}, v = {1.25f, -4};  // hd = 2
  std::vector<float> out(2);
  attention(DType::F32, q.data(), k.data(), v.data(), out.data(), 1, 1, 1, 1, 2, true, 1 / std::sqrt(2.0));
  EXPECT_EQ(out, v);
}

TEST(RefAttention, UniformScoresGiveTheMean) {
  const std::vector<float> q = {0, 0};                        // zero query: all scores 0
  const std::vector<float> k = {1, 2, -3, 4, 5, -6};          // (Tk=3, 1, 2)
  const std::vector<float> v = {1, 10, 2, 20, 6, 60};
  std::vector<float> out(2);
  attention(DType::F32, q.data(), k.data(), v.data(), out.data(), 1, 3, 1, 1, 2, true, 1.0);
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_FLOAT_EQ(out[1], 30.0f);
}

TEST(RefAttention, HandComputedSoftmax) {
  // hd = 1, scale 1: scores 0 and ln 3 -> weights 1/4, 3/4.
  const std::vector<float> q = {1}, k = {0, static_cast<float>(std::log(3.0))}, v = {4, 8};
  float out = 0;
  attention(DType::F32, q.data(), k.data(), v.data(), &out, 1, 2, 1, 1, 1, true, 1.0);
  EXPECT_NEAR(out, 4 * 0.25 + 8 * 0.75, 1e-6);
  // scale multiplies the scores: scale 0 -> uniform.
  attention(DType::F32, q.data(), k.data(), v.data(), &out, 1, 2, 1, 1, 1, true, 0.0);
  EXPECT_FLOAT_EQ(out, 6.0f);
}

TEST(RefAttention, CausalMaskHidesTheFuture) {
  const std::vector<float> q = {1, 1, 1};  // (Tq=3, 1, hd=1)
  std::vector<float> k = {0.1f, 0.2f, 0.3f}, v = {5, 7, 9};
  std::vector<float> out(3), out2(3);
  attention(DType::F32, q.data(), k.data(), v.data(), out.data(), 3, 3, 1, 1, 1, true, 1.0);
  EXPECT_EQ(out[0], 5.0f);  // the first query sees only the first key
  k[2] = 50;
  v[2] = -1000;
  attention(DType::F32, q.data(), k.data(), v.data(), out2.data(), 3, 3, 1, 1, 1, true, 1.0);
  EXPECT_EQ(out2[0], out[0]);
  EXPECT_EQ(out2[1], out[1]);
  EXPECT_NE(out2[2], out[2]);
  // non-causal: the first query sees everything
  attention(DType::F32, q.data(), k.data(), v.data(), out2.data(), 3, 3, 1, 1, 1, false, 1.0);
  EXPECT_NE(out2[0], 5.0f);
}

TEST(RefAttention, NewTokensAreTheLastOfTheCache) {
  // Tq = 1 against Tk = 3: the query is at position 2 and sees all keys (uniform scores -> mean).
  const std::vector<float> q = {0}, k = {1, 2, 3}, v = {3, 6, 12};
  float out = 0;
  attention(DType::F32, q.data(), k.data(), v.data(), &out, 1, 3, 1, 1, 1, true, 1.0);
  EXPECT_FLOAT_EQ(out, 7.0f);
  // Tq = 2 against Tk = 3: query 0 (position 1) sees keys 0..1.
  const std::vector<float> q2 = {0, 0};
  std::vector<float> out2(2);
  attention(DType::F32, q2.data(), k.data(), v.data(), out2.data(), 2, 3, 1, 1, 1, true, 1.0);
  EXPECT_FLOAT_EQ(out2[0], 4.5f);
  EXPECT_FLOAT_EQ(out2[1], 7.0f);
}

TEST(RefAttention, GqaHeadMapping) {
  // nh = 4, nkv = 2, hd = 1, one key: query head h reads KV head h / 2.
  const std::vector<float> q = {1, 2, 3, 4}, k = {1, 1}, v = {10, 20};
  std::vector<float> out(4);
  attention(DType::F32, q.data(), k.data(), v.data(), out.data(), 1, 1, 4, 2, 1, true, 1.0);
  EXPECT_EQ(out, (std::vector<float>{10, 10, 20, 20}));
  // two keys: head h's weights depend on its own query against its group's keys.
  const std::vector<float> k2 = {0, 0, static_cast<float>(std::log(3.0)), 0};  // (Tk=2, nkv=2, 1)
  const std::vector<float> v2 = {4, 100, 8, 200};
  const std::vector<float> q2 = {1, 0, 1, 1};
  attention(DType::F32, q2.data(), k2.data(), v2.data(), out.data(), 1, 2, 4, 2, 1, false, 1.0);
  EXPECT_NEAR(out[0], 7.0, 1e-5);   // kv head 0, scores 0, ln3
  EXPECT_NEAR(out[1], 6.0, 1e-5);   // kv head 0, query 0: uniform
  EXPECT_NEAR(out[2], 150.0, 1e-4); // kv head 1: keys both 0 -> uniform
  EXPECT_NEAR(out[3], 150.0, 1e-4);
}

TEST(RefAttention, OutputRoundedToFp16) {
  const std::vector<float> q = {0}, k = {1, 2, 3}, v = {1, 1, 2};  // mean 4/3
  float out = 0;
  attention(DType::F16, q.data(), k.data(), v.data(), &out, 1, 3, 1, 1, 1, true, 1.0);
  EXPECT_EQ(out, round_to(DType::F16, 4.0f / 3.0f));
  EXPECT_NE(out, 4.0f / 3.0f);
}

// --- moe_route ---------------------------------------------------------------------------------

TEST(RefMoeRoute, SoftmaxThenTopk) {
  const std::vector<float> logits = {1, 3, 2, 0};  // (T=1, E=4)
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  moe_route(logits.data(), 1, 4, 2, RouterOrder::SoftmaxThenTopk, false, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2}));
  const double s = std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + 1;
  EXPECT_NEAR(w[0], std::exp(3.0) / s, 1e-7);
  EXPECT_NEAR(w[1], std::exp(2.0) / s, 1e-7);
  moe_route(logits.data(), 1, 4, 2, RouterOrder::SoftmaxThenTopk, true, ids.data(), w.data());
  EXPECT_NEAR(w[0], 1 / (1 + std::exp(-1.0)), 1e-7);  // renormalised: e^3 / (e^3 + e^2)
  EXPECT_NEAR(w[1], 1 / (1 + std::exp(1.0)), 1e-7);
}

TEST(RefMoeRoute, TopkThenSoftmaxEqualsRenormalised) {
  const std::vector<float> logits = {0.5f, -1, 2, 1.5f, 0, 2.25f};  // (T=2, E=3)
  std::vector<int32_t> a(4), b(4);
  std::vector<float> wa(4), wb(4);
  moe_route(logits.data(), 2, 3, 2, RouterOrder::TopkThenSoftmax, false, a.data(), wa.data());
  moe_route(logits.data(), 2, 3, 2, RouterOrder::SoftmaxThenTopk, true, b.data(), wb.data());
  EXPECT_EQ(a, (std::vector<int32_t>{2, 0, 2, 0}));  // descending by weight
  EXPECT_EQ(a, b);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(wa[i], wb[i], 1e-7);
  EXPECT_NEAR(wa[0], 1 / (1 + std::exp(-1.5)), 1e-7);
}

TEST(RefMoeRoute, TiesBreakToTheLowerIndex) {
  const std::vector<float> logits = {1, 1, 1, 1, 0, 2, 2, 1};  // (T=2, E=4)
  std::vector<int32_t> ids(4);
  std::vector<float> w(4);
  moe_route(logits.data(), 2, 4, 2, RouterOrder::SoftmaxThenTopk, false, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 1, 2}));
  EXPECT_FLOAT_EQ(w[0], 0.25f);
  EXPECT_FLOAT_EQ(w[1], 0.25f);
  moe_route(logits.data(), 2, 4, 2, RouterOrder::TopkThenSoftmax, false, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 1, 2}));
  EXPECT_FLOAT_EQ(w[2], 0.5f);
}

}  // namespace
}  // namespace minfer::ref
