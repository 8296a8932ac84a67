// tests/gpu/test_gemv.cpp: the fused decode GEMVs (kernels/gemv.h) against the reference composed
// the way the unfused engine runs it (ref::linear, ref::swiglu, the residual add with its rounding,
// ref::rmsnorm), normwise rel err <= 1e-3 in fp32, fp16 and bf16: plain with bias, the residual
// epilogue (in place, y aliasing the residual), residual + RMSNorm of the new residual (the last
// block's norm; its counters re-armed, checked by running it twice), SwiGLU; rows 1, 3, 16 and 17
// (two block rows); odd K and N; every split the form allows; a grid of several waves (N large);
// argument errors naming the field; the slice form (one row, 16-bit, weights via shared memory); the
// folded input RMSNorm (one row, plain with bias and SwiGLU) against linear(rmsnorm(x)) with the
// normalised x left unrounded, as the kernel keeps it; two weight rows a warp (one row, every form it takes).
// Outputs are NaN-poisoned before each run. GPU tests skip without a CUDA device.
// Legend: R rows, K in features, N out features (I for SwiGLU outputs).
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include "kernels/gemv.h"
#include "reference/ops.h"
#include "validate/compare.h"
#include "validate/op_runner.h"
#include "validate/runner_util.h"

namespace minfer {
namespace {

constexpr double kTol = 1e-3;
const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr float kEps = 1e-6f;

enum class Form { Bias, Residual, ResidualNorm, Swiglu, NormBias, NormSwiglu };

const char* form_name(Form f) {
  switch (f) {
    case Form::Bias: return "bias";
    case Form::Residual: return "residual";
    case Form::ResidualNorm: return "residual+norm";
    case Form::Swiglu: return "swiglu";
    case Form::NormBias: return "norm-in+bias";
    case Form::NormSwiglu: return "norm-in+swiglu";
  }
  return "?";
}

bool residual_form(Form f) { return f == Form::Residual || f == Form::ResidualNorm; }
bool norm_in_form(Form f) { return f == Form::NormBias || f == Form::NormSwiglu; }
bool swiglu_form(Form f) { return f == Form::Swiglu || f == Form::NormSwiglu; }

// One fused problem: host inputs rounded to t, the reference outputs, device copies.
struct Problem {
  DType t;
  Form form;
  int64_t R, K, N;
  std::vector<float> x, gamma, gin, w, b, res, ref, ref_norm;
  val::DeviceBuffer dx, dg, dgin, dw, db, dy, dnorm, dcount;

  Problem(DType t_, Form f, int64_t r, int64_t k, int64_t n, uint64_t seed) : t(t_), form(f), R(r), K(k), N(n) {
    std::mt19937_64 rng(seed);
    const int64_t wrows = swiglu_form(form) ? 2 * N : N;
    x = val::random_rounded(t, static_cast<size_t>(R * K), rng, -2.f, 2.f);
    gamma = val::random_rounded(t, static_cast<size_t>(N), rng, 0.5f, 1.5f);
    w = val::random_rounded(t, static_cast<size_t>(wrows * K), rng, -0.5f, 0.5f);
    b = val::random_rounded(t, static_cast<size_t>(N), rng, -1.f, 1.f);
    res = val::random_rounded(t, static_cast<size_t>(R * N), rng, -4.f, 4.f);
    gin = val::random_rounded(t, static_cast<size_t>(K), rng, 0.5f, 1.5f);
    ref.resize(static_cast<size_t>(R * N));
    // The folded norm's input: rmsnorm(x) per row in double, not rounded to t.
    std::vector<float> xn(x.size());
    for (int64_t row = 0; row < R; ++row) {
      double ss = 0.0;
      for (int64_t i = 0; i < K; ++i) ss += static_cast<double>(x[row * K + i]) * x[row * K + i];
      const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(K) + kEps);
      for (int64_t i = 0; i < K; ++i) xn[row * K + i] = static_cast<float>(x[row * K + i] * rstd * gin[i]);
    }
    switch (form) {
      case Form::NormBias: ref::linear(t, xn.data(), w.data(), b.data(), ref.data(), R, K, N); break;
      case Form::NormSwiglu: {
        std::vector<float> gu(static_cast<size_t>(R * 2 * N));
        ref::linear(t, xn.data(), w.data(), nullptr, gu.data(), R, K, 2 * N);
        ref::swiglu(t, gu.data(), ref.data(), R, N, 2 * N, N);
        break;
      }
      case Form::Bias: ref::linear(t, x.data(), w.data(), b.data(), ref.data(), R, K, N); break;
      case Form::Residual:
      case Form::ResidualNorm: {
        std::vector<float> y(ref.size());
        ref::linear(t, x.data(), w.data(), nullptr, y.data(), R, K, N);
        for (size_t i = 0; i < y.size(); ++i) ref[i] = round_to(t, res[i] + y[i]);
        if (form == Form::ResidualNorm) {
          ref_norm.resize(ref.size());
          ref::rmsnorm(t, ref.data(), nullptr, nullptr, gamma.data(), ref_norm.data(), R, N, kEps);
        }
        break;
      }
      case Form::Swiglu: {
        std::vector<float> gu(static_cast<size_t>(R * 2 * N));
        ref::linear(t, x.data(), w.data(), nullptr, gu.data(), R, K, 2 * N);
        ref::swiglu(t, gu.data(), ref.data(), R, N, 2 * N, N);
        break;
      }
    }
    dx = val::upload(t, x);
    dg = val::upload(t, gamma);
    dgin = val::upload(t, gin);
    dw = val::upload(t, w);
    db = val::upload(t, b);
    dy = residual_form(form) ? val::upload(t, res) : val::DeviceBuffer(ref.size() * dtype_size(t));
    dnorm = val::DeviceBuffer(ref.size() * dtype_size(t));
    dcount = val::DeviceBuffer(static_cast<size_t>((R + 15) / 16) * sizeof(unsigned));
    MINFER_CUDA_CHECK(cudaMemset(dcount.get(), 0, dcount.bytes()));
  }
  GemvParams params(int split) const {
    GemvParams p;
    p.dtype = t;
    p.x = dx.get();
    p.w = dw.get();
    p.y = dy.get();
    p.rows = R;
    p.in = K;
    p.out = N;
    p.split = split;
    if (form == Form::Bias || form == Form::NormBias) p.bias = db.get();
    if (norm_in_form(form)) {
      p.in_norm_weight = dgin.get();
      p.in_norm_eps = kEps;
    }
    if (residual_form(form)) p.residual = dy.get();  // in place, as the engine runs it
    if (form == Form::ResidualNorm) {
      p.norm_out = dnorm.get();
      p.norm_weight = dg.get();
      p.norm_eps = kEps;
      p.counters = static_cast<unsigned*>(dcount.get());
    }
    p.swiglu = swiglu_form(form);
    return p;
  }
  std::string name(int split) const {
    return std::string(dtype_name(t)) + " " + form_name(form) + " R" + std::to_string(R) + " K" + std::to_string(K) +
           " N" + std::to_string(N) + " split " + std::to_string(split);
  }
  // The residual forms run in place: restore y = res first; the other outputs are NaN-poisoned.
  void reset(cudaStream_t s) const {
    if (residual_form(form)) {
      const val::DeviceBuffer fresh = val::upload(t, res);
      MINFER_CUDA_CHECK(cudaMemcpyAsync(dy.get(), fresh.get(), dy.bytes(), cudaMemcpyDeviceToDevice, s));
      MINFER_CUDA_CHECK(cudaStreamSynchronize(s));
    } else {
      val::poison(dy.get(), dy.bytes(), s);
    }
    val::poison(dnorm.get(), dnorm.bytes(), s);
  }
  // y, then (residual + norm) norm_out, each within tol; the counters back at zero.
  void expect_close(cudaStream_t s, double tol) const {
    const std::vector<float> out = val::download(t, dy.get(), ref.size(), s);
    const val::ErrorStats e = val::compare(out.data(), ref.data(), static_cast<int64_t>(out.size()));
    EXPECT_TRUE(e.pass(tol)) << "y: " << e.summary();
    if (form != Form::ResidualNorm) return;
    const std::vector<float> nout = val::download(t, dnorm.get(), ref_norm.size(), s);
    const val::ErrorStats en = val::compare(nout.data(), ref_norm.data(), static_cast<int64_t>(nout.size()));
    EXPECT_TRUE(en.pass(tol)) << "norm_out: " << en.summary();
    std::vector<unsigned> c(dcount.bytes() / sizeof(unsigned));
    MINFER_CUDA_CHECK(cudaMemcpy(c.data(), dcount.get(), dcount.bytes(), cudaMemcpyDeviceToHost));
    for (unsigned v : c) EXPECT_EQ(v, 0u) << "counters not re-armed";
  }
};

class GemvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!val::cuda_device_available()) GTEST_SKIP() << "no CUDA device";
    MINFER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  // Runs p at split 0 (default) and every split the form allows, twice each (the second run checks
  // that the first left the counters re-armed); each result within kTol.
  void run_all_splits(const Problem& pr, int warp_rows = 1) {
    const int max_split = swiglu_form(pr.form) ? 4 : 8;
    for (int split = 0; split <= max_split; split = split == 0 ? 1 : 2 * split) {
      SCOPED_TRACE(pr.name(split) + " warp_rows " + std::to_string(warp_rows));
      GemvParams p = pr.params(split);
      p.warp_rows = warp_rows;
      ASSERT_TRUE(gemv_fused_supports(p));
      run_twice(pr, p);
    }
  }
  // Runs p twice (fresh outputs each time), each result within kTol.
  void run_twice(const Problem& pr, const GemvParams& p) {
    for (int rep = 0; rep < 2; ++rep) {
      pr.reset(stream_);
      const Status s = gemv_fused_forward(p, stream_);
      ASSERT_TRUE(s.is_ok()) << s.message();
      MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
      pr.expect_close(stream_, kTol);
    }
  }
  cudaStream_t stream_ = nullptr;
};

TEST_F(GemvTest, FusedFormsMatchTheUnfusedReference) {
  struct Shape {
    int64_t R, K, N;
  };
  const Shape shapes[] = {{1, 896, 1152}, {3, 1024, 96}, {16, 512, 200}, {17, 256, 72}, {2, 4096, 40}};
  uint64_t seed = 1;
  for (DType t : kDtypes)
    for (Form f : {Form::Bias, Form::Residual, Form::ResidualNorm, Form::Swiglu})
      for (const Shape& sh : shapes) run_all_splits(Problem(t, f, sh.R, sh.K, sh.N, seed++));
}

// The folded input norm (GemvParams::in_norm_weight): one row; qwen3-0.6b's QKV and gate/up shapes, a
// wide K, odd N; every split; refused for several rows and with the residual form, naming the field.
TEST_F(GemvTest, FoldedInputNormMatchesTheReference) {
  struct Shape {
    int64_t K, N;
  };
  const Shape shapes[] = {{1024, 4096}, {1024, 3072}, {896, 1151}, {4096, 40}, {64, 7}};
  uint64_t seed = 500;
  for (DType t : kDtypes)
    for (Form f : {Form::NormBias, Form::NormSwiglu})
      for (const Shape& sh : shapes) run_all_splits(Problem(t, f, 1, sh.K, sh.N, seed++));
  const Problem two(DType::BF16, Form::NormBias, 2, 256, 16, 9);
  Status s = gemv_fused_forward(two.params(0), stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("in_norm_weight", 0), 0u) << s.message();
  const Problem one(DType::BF16, Form::NormBias, 1, 256, 16, 10);
  GemvParams p = one.params(0);
  p.residual = one.dy.get();
  s = gemv_fused_forward(p, stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("in_norm_weight", 0), 0u) << s.message();
}

// Two weight rows a warp (GemvParams::warp_rows = 2; one row): two outputs a warp, or a SwiGLU output's
// gate and up rows; with and without the folded input norm; odd N (a warp's second row past N), every
// split; refused for several rows, the RMSNorm epilogue and any other count, naming the field.
TEST_F(GemvTest, TwoWeightRowsAWarpMatchTheReference) {
  struct Shape {
    int64_t K, N;
  };
  const Shape shapes[] = {{1024, 3072}, {896, 1151}, {4096, 40}, {64, 7}};
  uint64_t seed = 900;
  for (DType t : kDtypes)
    for (Form f : {Form::Bias, Form::Residual, Form::Swiglu, Form::NormBias, Form::NormSwiglu})
      for (const Shape& sh : shapes) run_all_splits(Problem(t, f, 1, sh.K, sh.N, seed++), 2);
  // {form, rows, warp_rows}: several rows, the RMSNorm epilogue, a count other than 1 or 2.
  struct Refused {
    Form f;
    int64_t R;
    int warp_rows;
  };
  for (const Refused& c : {Refused{Form::Bias, 3, 2}, Refused{Form::ResidualNorm, 1, 2}, Refused{Form::Bias, 1, 3}}) {
    const Problem pr(DType::BF16, c.f, c.R, 256, 16, 11);
    GemvParams p = pr.params(0);
    p.warp_rows = c.warp_rows;
    const Status s = gemv_fused_forward(p, stream_);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.message().rfind("warp_rows", 0), 0u) << s.message();
  }
}

// The one-wave rule's weight rows a warp (host only: runs without a GPU, at 132 SMs then): two only
// where one row a warp fits the grid in one resident wave (4 blocks an SM) at no split and two rows
// at split 1 do. Blocks at split 1: features (2 N with SwiGLU) over 8 warps, over 16 at two rows.
TEST(GemvOneWave, TwoRowsAWarpOnlyWhereOneCannotFit) {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
    sms = 132;
  (void)cudaGetLastError();
  struct Shape {
    const char* what;
    int64_t K, N;
    bool swiglu;
    int at_132;  // the rule's pick on 132 SMs (H100, H200)
  };
  const Shape shapes[] = {{"qwen3-0.6b gate/up", 1024, 3072, true, 2},
                          {"qwen2.5-0.5b gate/up", 896, 4864, true, 1},
                          {"qwen3-0.6b QKV", 1024, 4096, false, 1},
                          {"qwen3-0.6b down", 3072, 1024, false, 1},
                          {"llama-3.1-8b gate/up", 4096, 14336, true, 1}};
  for (const Shape& sh : shapes) {
    SCOPED_TRACE(sh.what);
    GemvParams p;
    p.dtype = DType::BF16;
    p.rows = 1, p.in = sh.K, p.out = sh.N, p.swiglu = sh.swiglu;
    const int64_t features = sh.swiglu ? 2 * sh.N : sh.N, slots = 4LL * sms;
    GemvParams q = p;  // one row a warp at the one-wave split (1 where none fits)
    q.split = gemv_one_wave_split(q);
    const bool one_fits = gemv_fits_one_wave(q);
    const int expected = !one_fits && (features + 15) / 16 <= slots ? 2 : 1;
    EXPECT_EQ(gemv_one_wave_warp_rows(p), expected);
    if (sms == 132) {
      EXPECT_EQ(gemv_one_wave_warp_rows(p), sh.at_132);
    }
    GemvParams several = p;
    several.rows = 2;
    EXPECT_EQ(gemv_one_wave_warp_rows(several), 1) << "two rows a warp take one row";
  }
}

TEST_F(GemvTest, ManyOutputBlocks) {
  // 40000 outputs at split 1: 5000 blocks of 8 outputs, several waves; with the norm epilogue the
  // last of them normalises the row.
  for (DType t : {DType::BF16, DType::F32})
    for (Form f : {Form::Bias, Form::ResidualNorm}) {
      const Problem pr(t, f, 1, 256, 40000, 99);
      SCOPED_TRACE(pr.name(1));
      pr.reset(stream_);
      ASSERT_TRUE(gemv_fused_forward(pr.params(1), stream_).is_ok());
      MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
      pr.expect_close(stream_, kTol);
    }
}

// The slice form (one row, 16-bit types; each block's weight rows copied into shared memory by the
// bulk-copy engine): plain with bias, residual in place, SwiGLU; qwen3-0.6b's four projections, odd N
// (a short last block), K up to the form's limit; it must apply to each, and not where the slice
// would pass its shared-memory limit, with the RMSNorm epilogue, or for several rows.
TEST_F(GemvTest, SliceFormMatchesTheReference) {
  struct Shape {
    int64_t K, N;
  };
  const Shape shapes[] = {{1024, 4096}, {2048, 1024}, {1024, 3072}, {3072, 1024}, {896, 1151}, {4096, 40}, {64, 7}};
  uint64_t seed = 300;
  for (DType t : {DType::F16, DType::BF16})
    for (Form f : {Form::Bias, Form::Residual, Form::Swiglu})
      for (const Shape& sh : shapes) {
        if (f == Form::Swiglu && sh.N == 4096) continue;  // 32 rows of gate and up, 128 KiB: too big
        const Problem pr(t, f, 1, sh.K, sh.N, seed++);
        GemvParams p = pr.params(0);
        p.slice = 1;
        SCOPED_TRACE(pr.name(0) + " slice");
        ASSERT_TRUE(gemv_slice_applies(p));
        run_twice(pr, p);
      }
  const Problem big(DType::BF16, Form::Bias, 1, 4096, 6144, 7);  // 47 rows of 8 KiB a block: too big
  GemvParams p = big.params(0);
  p.slice = 1;
  EXPECT_FALSE(gemv_slice_applies(p));
  const Problem norm(DType::BF16, Form::ResidualNorm, 1, 1024, 1024, 8);
  p = norm.params(0);
  p.slice = 1;
  EXPECT_FALSE(gemv_slice_applies(p));
  const Problem rows(DType::BF16, Form::Bias, 2, 1024, 1024, 9);
  p = rows.params(0);
  p.slice = 1;
  EXPECT_FALSE(gemv_slice_applies(p));
  p.rows = 1, p.slice = 0;
  EXPECT_FALSE(gemv_slice_applies(p));
  const Problem f32(DType::F32, Form::Bias, 1, 1024, 1024, 10);
  p = f32.params(0);
  p.slice = 1;
  EXPECT_FALSE(gemv_slice_applies(p));
}

TEST_F(GemvTest, ArgumentErrorsNameTheField) {
  const Problem pr(DType::BF16, Form::Swiglu, 1, 64, 16, 5);
  GemvParams p = pr.params(8);
  Status s = gemv_fused_forward(p, stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("split"), std::string::npos) << s.message();
  p = pr.params(0);
  p.in = 60;
  s = gemv_fused_forward(p, stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("in"), std::string::npos) << s.message();
  const Problem rn(DType::BF16, Form::ResidualNorm, 1, 64, 16, 6);
  p = rn.params(0);
  p.residual = nullptr;  // the norm epilogue without the residual form
  EXPECT_FALSE(gemv_fused_supports(p));
  s = gemv_fused_forward(p, stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("norm_out"), std::string::npos) << s.message();
  p = rn.params(0);
  p.counters = nullptr;
  s = gemv_fused_forward(p, stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("counters"), std::string::npos) << s.message();
  p = rn.params(0);
  p.out = 12;  // not a multiple of the 8-element packs the norm reads
  s = gemv_fused_forward(p, stream_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("out"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace minfer
