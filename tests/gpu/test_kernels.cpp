// tests/gpu/test_kernels.cpp: the four memory-bound kernels (embedding, rmsnorm, rope, swiglu) against
// the scalar reference, in fp32, fp16 and bf16, through make_runner (odd sizes, real shapes, sizes
// that force the scalar fallback) and through the launchers directly (strided, misaligned and aliased
// pointers; argument errors naming the field). Outputs are NaN-poisoned first, so an element the
// kernel leaves unwritten fails. Every test skips when no CUDA device is present.
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "reference/ops.h"
#include "validate/csv_table.h"
#include "validate/op_runner.h"
#include "validate/runner_util.h"

namespace minfer {
namespace {

constexpr double kTol = 1e-3;
const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!val::cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// ---- through make_runner ----------------------------------------------------------------------

using Axes = std::vector<std::pair<std::string, int64_t>>;

std::vector<val::Case> runner_cases() {
  const std::vector<std::pair<std::string, std::vector<Axes>>> shapes = {
      {"embedding",
       {{{"tokens", 1}, {"vocab", 1000}, {"hidden", 896}},
        {{"tokens", 17}, {"vocab", 128256}, {"hidden", 4096}},
        {{"tokens", 3}, {"vocab", 100}, {"hidden", 895}},        // hidden not a multiple of the vector
        {{"tokens", 70001}, {"vocab", 64}, {"hidden", 64}}}},   // tokens past the grid's y limit
      {"norm",
       {{{"rows", 1}, {"hidden", 896}, {"residual", 0}},
        {{"rows", 1}, {"hidden", 896}, {"residual", 1}},
        {{"rows", 17}, {"hidden", 4096}, {"residual", 1}},
        {{"rows", 3}, {"hidden", 895}, {"residual", 1}},       // scalar path
        {{"rows", 1023}, {"hidden", 2048}, {"residual", 0}},
        {{"rows", 5}, {"hidden", 16384}, {"residual", 1}},     // fp32 row cache past 48 KiB
        {{"rows", 2}, {"hidden", 32768}, {"residual", 1}}}},   // more packs than threads: row loop
      {"rope",
       {{{"tokens", 1}, {"heads", 14}, {"kv_heads", 2}, {"head_dim", 64}, {"qk_norm", 0}, {"llama3", 0}},
        {{"tokens", 17}, {"heads", 32}, {"kv_heads", 8}, {"head_dim", 128}, {"qk_norm", 0}, {"llama3", 1}},
        {{"tokens", 7}, {"heads", 16}, {"kv_heads", 8}, {"head_dim", 128}, {"qk_norm", 1}, {"llama3", 0}},
        {{"tokens", 3}, {"heads", 8}, {"kv_heads", 1}, {"head_dim", 256}, {"qk_norm", 1}, {"llama3", 0}},
        {{"tokens", 33}, {"heads", 3}, {"kv_heads", 1}, {"head_dim", 64}, {"qk_norm", 1}, {"llama3", 1}}}},
      {"swiglu",
       {{{"rows", 1}, {"inter", 4864}},
        {{"rows", 17}, {"inter", 14336}},
        {{"rows", 3}, {"inter", 895}},   // scalar path
        {{"rows", 70001}, {"inter", 8}}}},
  };
  std::vector<val::Case> out;
  for (const auto& [sweep, list] : shapes)
    for (const Axes& axes : list)
      for (DType t : kDtypes) out.push_back(val::Case{sweep, t, axes, ""});
  return out;
}

class RunnerCase : public ::testing::TestWithParam<val::Case> {
 protected:
  void SetUp() override {
    if (!val::cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(RunnerCase, MatchesReference) {
  const val::Case& c = GetParam();
  auto r = val::make_runner(c);
  r->prepare(1234);
  const val::ErrorStats e = r->check(nullptr);
  EXPECT_EQ(e.nonfinite, 0) << c.id() << " " << e.summary();
  EXPECT_GT(e.count, 0) << c.id();
  EXPECT_LE(e.rel_err, kTol) << c.id() << " " << e.summary();
  EXPECT_GT(r->bytes_moved(), 0);
  EXPECT_GE(static_cast<double>(r->device_bytes()), 0.5 * r->bytes_moved());
  // Re-runnable: a second launch and a second check still pass (rope restores its inputs).
  ASSERT_TRUE(r->launch(nullptr).is_ok());
  EXPECT_TRUE(r->check(nullptr).pass(kTol)) << c.id();
}

std::string case_name(const ::testing::TestParamInfo<val::Case>& info) {
  std::string s = info.param.id();
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

}  // namespace
namespace val {
// Names a case by its id in test listings (instead of gtest's byte dump).
void PrintTo(const Case& c, std::ostream* os) { *os << c.id(); }
}  // namespace val
namespace {

INSTANTIATE_TEST_SUITE_P(Kernels, RunnerCase, ::testing::ValuesIn(runner_cases()), case_name);

// A packed build's binaries (scripts/pack_prebuilt.sh: <build>/<dir>/<name>, <build>/COMMIT) stamp
// their rows with the packed commit, not with whatever checkout they run in; no file: "".
TEST(RunMeta, PackedCommitBesideTheBinarysFolder) {
  const std::filesystem::path root = std::filesystem::temp_directory_path() / "minfer_packed_commit_test";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "bench");
  EXPECT_EQ(val::packed_commit(root / "bench" / "bench_all"), "");
  std::ofstream(root / "COMMIT") << "7e529c4+dirty  \n";
  EXPECT_EQ(val::packed_commit(root / "bench" / "bench_all"), "7e529c4+dirty");
  std::filesystem::create_directories(root / "nested" / "bench");  // a build inside it: no COMMIT of its own
  EXPECT_EQ(val::packed_commit(root / "nested" / "bench" / "bench_all"), "");
  EXPECT_EQ(val::packed_commit("bench_all"), "");
  std::filesystem::remove_all(root);
}

TEST(MakeRunner, UnknownSweepNamed) {
  val::Case c{"no_such_sweep", DType::BF16, {}, ""};
  try {
    val::make_runner(c);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_sweep"), std::string::npos) << e.what();
  }
}

// ---- launchers directly: strides, misalignment, aliasing --------------------------------------

// Compares host float arrays of n elements; fails on NaN or rel_err > kTol.
void expect_close(const std::vector<float>& got, const std::vector<float>& ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const val::ErrorStats e = val::compare(got.data(), ref.data(), static_cast<int64_t>(ref.size()));
  EXPECT_TRUE(e.pass(kTol)) << what << ": " << e.summary();
}

// Element offset `off` into a device buffer of dtype t.
void* at(const val::DeviceBuffer& b, DType t, int64_t off) {
  return static_cast<unsigned char*>(b.get()) + off * static_cast<int64_t>(dtype_size(t));
}

TEST_F(Gpu, SwigluStridedAndMisaligned) {
  for (DType t : kDtypes) {
    for (int64_t off : {0, 1}) {  // off = 1: out and gate_up one element past 16-byte alignment
      const int64_t R = 5, I = 64, in_stride = 2 * I + 8, out_stride = I + 3;
      std::mt19937_64 rng(7);
      std::vector<float> gu = val::random_rounded(t, static_cast<size_t>(R * in_stride + off), rng, -4.f, 4.f);
      val::DeviceBuffer gu_d = val::upload(t, gu);
      val::DeviceBuffer out_d(static_cast<size_t>(R * out_stride + off) * dtype_size(t));
      val::poison(out_d.get(), out_d.bytes(), nullptr);
      SwigluParams p;
      p.dtype = t, p.gate_up = at(gu_d, t, off), p.out = at(out_d, t, off);
      p.rows = R, p.inter = I, p.in_stride = in_stride, p.out_stride = out_stride;
      ASSERT_TRUE(swiglu_forward(p, nullptr).is_ok());
      std::vector<float> got = val::download(t, out_d.get(), static_cast<size_t>(R * out_stride + off), nullptr);
      std::vector<float> ref(got.size(), 0.f);
      ref::swiglu(t, gu.data() + off, ref.data() + off, R, I, in_stride, out_stride);
      std::vector<float> g, r;  // only the written columns; the stride padding stays poisoned
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < I; ++j) {
          g.push_back(got[off + i * out_stride + j]);
          r.push_back(ref[off + i * out_stride + j]);
        }
      expect_close(g, r, std::string("swiglu ") + dtype_name(t) + " off=" + std::to_string(off));
    }
  }
}

TEST_F(Gpu, RmsNormInPlaceAliasedAndMisaligned) {
  for (DType t : kDtypes) {
    for (int64_t off : {0, 1}) {
      const int64_t R = 3, H = 1024, n = R * H;
      std::mt19937_64 rng(11);
      std::vector<float> x = val::random_rounded(t, static_cast<size_t>(n + off), rng, -2.f, 2.f);
      std::vector<float> res = val::random_rounded(t, static_cast<size_t>(n + off), rng, -2.f, 2.f);
      std::vector<float> w = val::random_rounded(t, static_cast<size_t>(H + off), rng, 0.5f, 1.5f);
      val::DeviceBuffer x_d = val::upload(t, x), res_d = val::upload(t, res), w_d = val::upload(t, w);
      RmsNormParams p;  // out = x and residual_out = residual_in: the engine's in-place use
      p.dtype = t, p.x = at(x_d, t, off), p.out = at(x_d, t, off), p.weight = at(w_d, t, off);
      p.residual_in = at(res_d, t, off), p.residual_out = at(res_d, t, off), p.rows = R, p.hidden = H;
      ASSERT_TRUE(rmsnorm_forward(p, nullptr).is_ok());
      std::vector<float> out_ref(static_cast<size_t>(n)), res_ref(static_cast<size_t>(n));
      ref::rmsnorm(t, x.data() + off, res.data() + off, res_ref.data(), w.data() + off, out_ref.data(), R, H, p.eps);
      std::vector<float> got_x = val::download(t, x_d.get(), static_cast<size_t>(n + off), nullptr);
      std::vector<float> got_r = val::download(t, res_d.get(), static_cast<size_t>(n + off), nullptr);
      const std::string what = std::string("rmsnorm ") + dtype_name(t) + " off=" + std::to_string(off);
      expect_close(std::vector<float>(got_x.begin() + off, got_x.end()), out_ref, what + " out");
      expect_close(std::vector<float>(got_r.begin() + off, got_r.end()), res_ref, what + " residual");
    }
  }
}

// q and k inside one fused qkv buffer (token stride (nh + 2 nkv) hd), optionally misaligned by one element.
TEST_F(Gpu, RopeFusedQkvLayout) {
  for (DType t : kDtypes) {
    for (int64_t off : {0, 1}) {
      const int T = 9, nh = 6, nkv = 2, hd = 128, P = 4096;
      const int64_t stride = int64_t{nh + 2 * nkv} * hd, n = T * stride;
      std::mt19937_64 rng(13);
      std::vector<float> qkv = val::random_rounded(t, static_cast<size_t>(n + off), rng, -2.f, 2.f);
      std::vector<float> qn = val::random_rounded(t, hd, rng, 0.5f, 1.5f);
      std::vector<int32_t> pos(T);
      for (int i = 0; i < T; ++i) pos[i] = (i * 977) % P;
      ModelConfig cfg;
      cfg.heads = nh, cfg.kv_heads = nkv, cfg.head_dim = hd, cfg.rope_theta = 1e6;
      std::vector<double> tab = ref::rope_cos_sin(cfg, P);
      std::vector<float> tab32(tab.begin(), tab.end());
      for (size_t i = 0; i < tab.size(); ++i) tab[i] = tab32[i];
      val::DeviceBuffer qkv_d = val::upload(t, qkv), qn_d = val::upload(t, qn);
      val::DeviceBuffer pos_d(pos.size() * 4), tab_d(tab32.size() * 4);
      MINFER_CUDA_CHECK(cudaMemcpy(pos_d.get(), pos.data(), pos_d.bytes(), cudaMemcpyHostToDevice));
      MINFER_CUDA_CHECK(cudaMemcpy(tab_d.get(), tab32.data(), tab_d.bytes(), cudaMemcpyHostToDevice));
      RopeParams p;  // q_norm only: k is rotated without a norm
      p.dtype = t, p.q = at(qkv_d, t, off), p.k = at(qkv_d, t, off + int64_t{nh} * hd);
      p.q_stride = stride, p.k_stride = stride, p.positions = static_cast<const int32_t*>(pos_d.get());
      p.cos_sin = static_cast<const float*>(tab_d.get()), p.q_norm = qn_d.get();
      p.num_tokens = T, p.max_positions = P, p.heads = nh, p.kv_heads = nkv, p.head_dim = hd;
      ASSERT_TRUE(rope_forward(p, nullptr).is_ok());
      std::vector<float> ref = qkv;
      ref::rope(t, ref.data() + off, ref.data() + off + int64_t{nh} * hd, stride, stride, pos.data(), tab.data(),
                qn.data(), nullptr, p.norm_eps, T, P, nh, nkv, hd);
      std::vector<float> got = val::download(t, qkv_d.get(), static_cast<size_t>(n + off), nullptr);
      expect_close(got, ref, std::string("rope qkv ") + dtype_name(t) + " off=" + std::to_string(off));
    }
  }
}

// ---- launcher argument errors --------------------------------------------------------------------

void expect_error_names(const Status& s, const std::string& field) {
  EXPECT_FALSE(s.is_ok()) << "expected an error naming " << field;
  EXPECT_NE(s.message().find(field), std::string::npos) << "message: " << s.message();
}

TEST_F(Gpu, EmbeddingArgumentErrors) {
  val::DeviceBuffer b(4096);
  EmbeddingParams p;
  p.ids = static_cast<const int32_t*>(b.get()), p.table = b.get(), p.out = b.get();
  p.num_tokens = 1, p.vocab = 4, p.hidden = 8;
  EmbeddingParams q = p; q.ids = nullptr;      expect_error_names(embedding_forward(q, nullptr), "ids");
  q = p; q.table = nullptr;                    expect_error_names(embedding_forward(q, nullptr), "table");
  q = p; q.out = nullptr;                      expect_error_names(embedding_forward(q, nullptr), "out");
  q = p; q.num_tokens = 0;                     expect_error_names(embedding_forward(q, nullptr), "num_tokens");
  q = p; q.vocab = -1;                         expect_error_names(embedding_forward(q, nullptr), "vocab");
  q = p; q.hidden = 0;                         expect_error_names(embedding_forward(q, nullptr), "hidden");
  q = p; q.dtype = static_cast<DType>(9);      expect_error_names(embedding_forward(q, nullptr), "dtype");
}

TEST_F(Gpu, RmsNormArgumentErrors) {
  val::DeviceBuffer b(4096);
  RmsNormParams p;
  p.x = b.get(), p.weight = b.get(), p.out = b.get(), p.rows = 1, p.hidden = 8;
  RmsNormParams q = p; q.x = nullptr;          expect_error_names(rmsnorm_forward(q, nullptr), "x");
  q = p; q.weight = nullptr;                   expect_error_names(rmsnorm_forward(q, nullptr), "weight");
  q = p; q.residual_in = b.get();              expect_error_names(rmsnorm_forward(q, nullptr), "residual_out");
  q = p; q.rows = 0;                           expect_error_names(rmsnorm_forward(q, nullptr), "rows");
  q = p; q.hidden = -3;                        expect_error_names(rmsnorm_forward(q, nullptr), "hidden");
  q = p; q.hidden = int64_t{1} << 30;  // row cache past shared memory
  expect_error_names(rmsnorm_forward(q, nullptr), "hidden");
}

TEST_F(Gpu, RopeArgumentErrors) {
  val::DeviceBuffer b(1 << 16);
  RopeParams p;
  p.q = b.get(), p.k = b.get(), p.positions = static_cast<const int32_t*>(b.get());
  p.cos_sin = static_cast<const float*>(b.get()), p.num_tokens = 1, p.max_positions = 1;
  p.heads = 2, p.kv_heads = 1, p.head_dim = 64, p.q_stride = 128, p.k_stride = 64;
  RopeParams q = p; q.head_dim = 96;
  Status s = rope_forward(q, nullptr);
  expect_error_names(s, "head_dim");
  EXPECT_NE(s.message().find("96"), std::string::npos) << s.message();
  q = p; q.q = nullptr;                        expect_error_names(rope_forward(q, nullptr), "q");
  q = p; q.positions = nullptr;                expect_error_names(rope_forward(q, nullptr), "positions");
  q = p; q.cos_sin = nullptr;                  expect_error_names(rope_forward(q, nullptr), "cos_sin");
  q = p; q.q_stride = 127;                     expect_error_names(rope_forward(q, nullptr), "q_stride");
  q = p; q.k_stride = 63;                      expect_error_names(rope_forward(q, nullptr), "k_stride");
  q = p; q.kv_heads = 0;                       expect_error_names(rope_forward(q, nullptr), "kv_heads");
  q = p; q.num_tokens = 0;                     expect_error_names(rope_forward(q, nullptr), "num_tokens");
  q = p; q.max_positions = 0;                  expect_error_names(rope_forward(q, nullptr), "max_positions");
}

TEST_F(Gpu, SwigluArgumentErrors) {
  val::DeviceBuffer b(4096);
  SwigluParams p;
  p.gate_up = b.get(), p.out = b.get(), p.rows = 1, p.inter = 8, p.in_stride = 16, p.out_stride = 8;
  SwigluParams q = p; q.gate_up = nullptr;     expect_error_names(swiglu_forward(q, nullptr), "gate_up");
  q = p; q.out = nullptr;                      expect_error_names(swiglu_forward(q, nullptr), "out");
  q = p; q.rows = 0;                           expect_error_names(swiglu_forward(q, nullptr), "rows");
  q = p; q.inter = 0;                          expect_error_names(swiglu_forward(q, nullptr), "inter");
  q = p; q.in_stride = 15;                     expect_error_names(swiglu_forward(q, nullptr), "in_stride");
  q = p; q.out_stride = 7;                     expect_error_names(swiglu_forward(q, nullptr), "out_stride");
}

// A position outside the table is not silently rotated: its vectors become NaN.
TEST_F(Gpu, RopePositionOutOfRangeIsLoud) {
  const int hd = 64;
  std::vector<float> q(hd, 1.f), tab(hd, 0.5f);
  val::DeviceBuffer q_d = val::upload(DType::F32, q), tab_d = val::upload(DType::F32, tab), pos_d(4);
  const int32_t pos = 5;  // table has 1 position
  MINFER_CUDA_CHECK(cudaMemcpy(pos_d.get(), &pos, 4, cudaMemcpyHostToDevice));
  RopeParams p;
  p.dtype = DType::F32, p.q = q_d.get(), p.q_stride = hd, p.positions = static_cast<const int32_t*>(pos_d.get());
  p.cos_sin = static_cast<const float*>(tab_d.get()), p.num_tokens = 1, p.max_positions = 1, p.heads = 1;
  p.head_dim = hd;
  ASSERT_TRUE(rope_forward(p, nullptr).is_ok());
  for (float v : val::download(DType::F32, q_d.get(), hd, nullptr)) EXPECT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace minfer
