// tests/gpu/test_engine.cpp: the CUDA engine against the scalar reference. The GEMM and attention
// kernels alone (odd shapes, GQA, ragged cache offsets); whole-model logits for preset:tiny,
// tiny-qwen2 and tiny-qwen3 in fp32 at every prefill and decode step of a ragged batch (prompts of
// 1, 5 and 17 tokens), rel err <= 1e-3; greedy tokens equal the reference's, with and without the
// CUDA graph; GPU sampling (distribution, top-k, top-p, reproducible for a seed); the KV cache
// refusal naming the limit; the per-step logits observer, reshape, the per-kernel decode profile, and
// the quick cases of validate_all's model sweep; and the engine's fp32 logits against HF transformers'
// own (tests/fixtures: llama with llama3 scaling, qwen2, qwen3). The same model checks also run with the
// flash attention backend (flash_prefill reading the engine's per-sequence cache, split-KV
// decode_attention in decode steps, with and without the graph), beside direct checks of those two
// kernels at the tiny models' head_dim. Every test skips when no CUDA device is present.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/core/plan.h"
#include "engine/core/presets.h"
#include "engine/core/safetensors.h"
#include "engine/core/weights.h"
#include "engine/model/model.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/kernel_tracer.h"
#include "engine/runtime/profile.h"
#include "kernels/attention.h"
#include "kernels/decode_attention.h"
#include "kernels/decode_step.h"
#include "kernels/flash_prefill.h"
#include "kernels/gemm.h"
#include "kernels/sampling.h"
#include "reference/model.h"
#include "reference/ops.h"
#include "validate/compare.h"
#include "validate/model_check.h"
#include "validate/op_runner.h"

namespace minfer {
namespace {

using Seqs = std::vector<std::vector<int32_t>>;

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!val::cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// Device buffer of n elements of dtype t, filled from float values (rounded to t).
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  DevBuf(DType t, const std::vector<float>& v) : bytes(v.size() * dtype_size(t)) {
    std::vector<uint8_t> raw(bytes);
    for (size_t i = 0; i < v.size(); ++i) store_as(t, raw.data(), i, v[i]);
    MINFER_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    MINFER_CUDA_CHECK(cudaMemcpy(p, raw.data(), bytes, cudaMemcpyHostToDevice));
  }
  explicit DevBuf(const std::vector<int32_t>& v) : bytes(v.size() * 4) {
    MINFER_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    MINFER_CUDA_CHECK(cudaMemcpy(p, v.data(), bytes, cudaMemcpyHostToDevice));
  }
  ~DevBuf() { cudaFree(p); }
  std::vector<float> read(DType t) const {
    std::vector<uint8_t> raw(bytes);
    MINFER_CUDA_CHECK(cudaMemcpy(raw.data(), p, bytes, cudaMemcpyDeviceToHost));
    std::vector<float> v(bytes / dtype_size(t));
    for (size_t i = 0; i < v.size(); ++i) v[i] = load_as(t, raw.data(), i);
    return v;
  }
};

// Values in [-1, 1) rounded to t, from a fixed formula (no zeros pattern).
std::vector<float> values(size_t n, uint32_t salt, DType t, float scale = 1.0f) {
  std::vector<float> v(n);
  uint32_t s = 0x9e3779b9u * (salt + 1);
  for (size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    v[i] = round_to(t, scale * (static_cast<float>(s >> 8) / 8388608.0f - 1.0f));
  }
  return v;
}

void expect_close(const std::vector<float>& out, const std::vector<float>& ref, double tol, const std::string& what) {
  ASSERT_EQ(out.size(), ref.size()) << what;
  const val::ErrorStats e = val::compare(out.data(), ref.data(), static_cast<int64_t>(out.size()));
  EXPECT_TRUE(e.pass(tol)) << what << ": " << e.summary();
}

// ---- GEMM ---------------------------------------------------------------------------------------

TEST_F(Engine, GemmMatchesReferenceLinear) {
  struct Shape { int64_t R, K, N; bool bias; };
  const Shape shapes[] = {{1, 64, 256, false}, {3, 896, 1152, true}, {17, 128, 96, true}, {23, 64, 770, false}};
  void* ws = nullptr;
  MINFER_CUDA_CHECK(cudaMalloc(&ws, kGemmWorkspaceBytes));
  {
    Gemm gemm(ws, kGemmWorkspaceBytes);
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      for (const Shape& s : shapes) {
        const std::vector<float> x = values(static_cast<size_t>(s.R * s.K), 1, t);
        const std::vector<float> w = values(static_cast<size_t>(s.N * s.K), 2, t, 0.1f);
        const std::vector<float> b = values(static_cast<size_t>(s.N), 3, t);
        std::vector<float> ref(static_cast<size_t>(s.R * s.N));
        ref::linear(t, x.data(), w.data(), s.bias ? b.data() : nullptr, ref.data(), s.R, s.K, s.N);
        DevBuf dx(t, x), dw(t, w), db(t, b), dy(t, std::vector<float>(ref.size(), NAN));
        const GemmParams p{t, dx.p, dw.p, s.bias ? db.p : nullptr, dy.p, s.R, s.K, s.N};
        MINFER_STATUS_CHECK(gemm.run(p, nullptr));
        MINFER_STATUS_CHECK(gemm.run(p, nullptr));  // second call: the cached plan
        MINFER_CUDA_CHECK(cudaDeviceSynchronize());
        expect_close(dy.read(t), ref, 1e-3,
                     std::string(dtype_name(t)) + " R" + std::to_string(s.R) + " K" + std::to_string(s.K) + " N" +
                         std::to_string(s.N));
      }
    }
    EXPECT_EQ(gemm.cached_plans(), 12u);
  }
  cudaFree(ws);
}

// ---- attention ----------------------------------------------------------------------------------

TEST_F(Engine, AttentionRaggedGqaMatchesReference) {
  const std::vector<int> tq = {1, 5, 17, 0}, cached_before = {3, 0, 40, 2};  // per sequence
  const int B = 4, C = 64;
  for (int hd : {16, 64, 128, 256}) {
    for (auto [nh, nkv] : std::vector<std::pair<int, int>>{{4, 2}, {6, 1}, {3, 3}}) {
      const DType t = DType::F32;
      std::vector<int32_t> cu{0}, lens, slot;
      for (int b = 0; b < B; ++b) {
        cu.push_back(cu.back() + tq[static_cast<size_t>(b)]);
        lens.push_back(cached_before[static_cast<size_t>(b)] + tq[static_cast<size_t>(b)]);
        slot.push_back(b == 2 ? 3 : (b == 3 ? 2 : b));  // sequences need not sit in their own slot
      }
      const int64_t T = cu.back(), kvrow = static_cast<int64_t>(nkv) * hd;
      const std::vector<float> q = values(static_cast<size_t>(T * nh * hd), 5, t);
      const std::vector<float> kc = values(static_cast<size_t>(B * C * kvrow), 6, t);
      const std::vector<float> vc = values(static_cast<size_t>(B * C * kvrow), 7, t);
      std::vector<float> ref(q.size());
      for (int b = 0; b < B; ++b) {
        if (tq[static_cast<size_t>(b)] == 0) continue;
        const size_t base = static_cast<size_t>(slot[static_cast<size_t>(b)]) * C * kvrow;
        ref::attention(t, q.data() + cu[static_cast<size_t>(b)] * nh * hd, kc.data() + base, vc.data() + base,
                       ref.data() + cu[static_cast<size_t>(b)] * nh * hd, tq[static_cast<size_t>(b)],
                       lens[static_cast<size_t>(b)], nh, nkv, hd, true, 1.0 / std::sqrt(static_cast<double>(hd)));
      }
      DevBuf dq(t, q), dk(t, kc), dv(t, vc), dout(t, std::vector<float>(q.size(), NAN)), dcu(cu), dlens(lens),
          dslot(slot);
      AttentionParams p;
      p.dtype = t;
      p.q = dq.p;
      p.k_cache = dk.p;
      p.v_cache = dv.p;
      p.out = dout.p;
      p.cu_seqlens = static_cast<int32_t*>(dcu.p);
      p.cache_lens = static_cast<int32_t*>(dlens.p);
      p.slot = static_cast<int32_t*>(dslot.p);
      p.batch = B;
      p.num_tokens = T;
      p.capacity = C;
      p.heads = nh;
      p.kv_heads = nkv;
      p.head_dim = hd;
      MINFER_STATUS_CHECK(attention_forward(p, nullptr));
      MINFER_CUDA_CHECK(cudaDeviceSynchronize());
      expect_close(dout.read(t), ref, 1e-4, "hd " + std::to_string(hd) + " nh " + std::to_string(nh));
    }
  }
  AttentionParams bad;
  bad.head_dim = 512;
  const Status s = attention_forward(bad, nullptr);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("head_dim"), std::string::npos) << s.message();
}

// The flash backend's two kernels as the engine calls them: flash_prefill reading a per-sequence
// cache in place (k_lens, k_seq_stride: sequence b at slot b, ragged new tokens after a cached
// prefix, a sequence with none), and decode_attention over the same cache layout, one and three
// splits; head_dim 16 and 32 (the tiny models') beside 64 and 128, fp32 (scalar) and bf16 (tensor cores).
struct CacheCase {
  int B = 4, C = 64, nh = 0, nkv = 0, hd = 0;
  DType t = DType::F32;
  int64_t kvrow() const { return static_cast<int64_t>(nkv) * hd; }
};

void check_flash_prefill_in_cache(const CacheCase& k) {
  const std::vector<int> tq = {1, 5, 17, 0}, cached_before = {3, 0, 40, 2};
  std::vector<int32_t> cu{0}, lens;
  for (int b = 0; b < k.B; ++b) {
    cu.push_back(cu.back() + tq[static_cast<size_t>(b)]);
    lens.push_back(cached_before[static_cast<size_t>(b)] + tq[static_cast<size_t>(b)]);
  }
  const int64_t T = cu.back(), qrow = static_cast<int64_t>(k.nh) * k.hd;
  const std::vector<float> q = values(static_cast<size_t>(T * qrow), 15, k.t);
  const std::vector<float> kc = values(static_cast<size_t>(k.B * k.C * k.kvrow()), 16, k.t);
  const std::vector<float> vc = values(static_cast<size_t>(k.B * k.C * k.kvrow()), 17, k.t);
  std::vector<float> ref(q.size());
  for (int b = 0; b < k.B; ++b) {
    const size_t bb = static_cast<size_t>(b);
    if (tq[bb] == 0) continue;
    const size_t base = bb * static_cast<size_t>(k.C * k.kvrow());
    ref::attention(k.t, q.data() + cu[bb] * qrow, kc.data() + base, vc.data() + base, ref.data() + cu[bb] * qrow,
                   tq[bb], lens[bb], k.nh, k.nkv, k.hd, true, 1.0 / std::sqrt(static_cast<double>(k.hd)));
  }
  DevBuf dq(k.t, q), dk(k.t, kc), dv(k.t, vc), dout(k.t, std::vector<float>(q.size(), NAN)), dcu(cu), dlens(lens);
  FlashPrefillParams p;
  p.dtype = k.t;
  p.q = dq.p;
  p.k = dk.p;
  p.v = dv.p;
  p.out = dout.p;
  p.cu_seqlens_q = static_cast<int32_t*>(dcu.p);
  p.k_lens = static_cast<int32_t*>(dlens.p);
  p.k_seq_stride = k.C;
  p.batch = k.B;
  p.max_seqlen_q = 17;
  p.heads = k.nh;
  p.kv_heads = k.nkv;
  p.head_dim = k.hd;
  MINFER_STATUS_CHECK(flash_prefill_forward(p, nullptr));
  MINFER_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close(dout.read(k.t), ref, 1e-3,
               std::string("flash_prefill ") + dtype_name(k.t) + " hd " + std::to_string(k.hd) + " nh " +
                   std::to_string(k.nh) + "/" + std::to_string(k.nkv));
  p.k_seq_stride = 0;  // k_lens without a stride is refused, naming the field
  const Status bad = flash_prefill_forward(p, nullptr);
  EXPECT_NE(bad.message().find("k_seq_stride"), std::string::npos) << bad.message();
}

void check_decode_in_cache(const CacheCase& k, int splits) {
  const std::vector<int32_t> lens = {4, 1, 57, 64};
  const int64_t qrow = static_cast<int64_t>(k.nh) * k.hd;
  const std::vector<float> q = values(static_cast<size_t>(k.B * qrow), 25, k.t);
  const std::vector<float> kc = values(static_cast<size_t>(k.B * k.C * k.kvrow()), 26, k.t);
  const std::vector<float> vc = values(static_cast<size_t>(k.B * k.C * k.kvrow()), 27, k.t);
  std::vector<float> ref(q.size());
  for (int b = 0; b < k.B; ++b) {
    const size_t bb = static_cast<size_t>(b), base = bb * static_cast<size_t>(k.C * k.kvrow());
    ref::attention(k.t, q.data() + bb * qrow, kc.data() + base, vc.data() + base, ref.data() + bb * qrow, 1, lens[bb],
                   k.nh, k.nkv, k.hd, true, 1.0 / std::sqrt(static_cast<double>(k.hd)));
  }
  const size_t ws_bytes = decode_attention_workspace_bytes(k.B, k.nh, k.hd, splits);
  DevBuf dq(k.t, q), dk(k.t, kc), dv(k.t, vc), dout(k.t, std::vector<float>(q.size(), NAN)), dlens(lens),
      ws(DType::F32, std::vector<float>(ws_bytes / 4 + 1, 0.0f));
  DecodeAttentionParams p;
  p.dtype = k.t;
  p.q = dq.p;
  p.k_cache = dk.p;
  p.v_cache = dv.p;
  p.out = dout.p;
  p.cache_lens = static_cast<int32_t*>(dlens.p);
  p.batch = k.B;
  p.heads = k.nh;
  p.kv_heads = k.nkv;
  p.head_dim = k.hd;
  p.max_len = k.C;
  p.max_kv_len = k.C;
  p.num_splits = splits;
  p.workspace = static_cast<float*>(ws.p);
  p.workspace_bytes = ws_bytes;
  MINFER_STATUS_CHECK(decode_attention_forward(p, nullptr));
  MINFER_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close(dout.read(k.t), ref, 1e-3,
               std::string("decode_attention ") + dtype_name(k.t) + " hd " + std::to_string(k.hd) + " nh " +
                   std::to_string(k.nh) + "/" + std::to_string(k.nkv) + " splits " + std::to_string(splits));
}

TEST_F(Engine, FlashKernelsReadTheEngineCache) {
  for (int hd : {16, 32, 64, 128})
    for (DType t : {DType::F32, DType::BF16})
      for (auto [nh, nkv] : std::vector<std::pair<int, int>>{{4, 2}, {6, 1}, {3, 3}}) {
        CacheCase k;
        k.nh = nh, k.nkv = nkv, k.hd = hd, k.t = t;
        check_flash_prefill_in_cache(k);
        for (int splits : {1, 3}) check_decode_in_cache(k, splits);
      }
}

// ---- whole model ---------------------------------------------------------------------------------

Seqs ragged_prompts(int vocab) {
  Seqs p;
  for (int len : {1, 5, 17}) {
    std::vector<int32_t> s;
    for (int i = 0; i < len; ++i) s.push_back((i * 37 + len * 11 + 3) % vocab);
    p.push_back(s);
  }
  return p;
}

std::vector<int32_t> last_argmax(const std::vector<float>& logits, const Seqs& fed, int V) {
  std::vector<int32_t> out;
  size_t row = 0;
  for (const auto& f : fed) {
    if (f.empty()) { out.push_back(-1); continue; }
    row += f.size();
    const float* r = logits.data() + (row - 1) * static_cast<size_t>(V);
    int32_t best = 0;
    for (int32_t v = 1; v < V; ++v) best = r[v] > r[best] ? v : best;
    out.push_back(best);
  }
  return out;
}

// The last row of each sequence's logits in (sum Tq_i, V) (every sequence non-empty).
std::vector<float> last_rows(const std::vector<float>& logits, const Seqs& fed, int V) {
  std::vector<float> out;
  size_t row = 0;
  for (const auto& f : fed) {
    row += f.size();
    const auto at = logits.begin() + static_cast<std::ptrdiff_t>((row - 1) * static_cast<size_t>(V));
    out.insert(out.end(), at, at + V);
  }
  return out;
}

void logits_every_step(const std::string& preset, DType t, double tol,
                       AttentionBackend attn = AttentionBackend::Simple) {
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, t);
  const ModelWeights w = load_weights(cfg, *src, t);
  ref::Model ref(cfg, w, t);
  const Seqs prompts = ragged_prompts(cfg.vocab);
  RunShape shape;
  shape.batch = 3;
  shape.context = 17 + 8;
  shape.max_prefill_tokens = 23;
  shape.all_logits = true;
  shape.attention = attn;
  Model eng(cfg, *src, t, shape);
  ASSERT_EQ(eng.shape().attention, attn);
  ref.reset(3);
  std::vector<float> rl = ref.forward(prompts);
  std::vector<float> el = eng.forward(prompts);
  const std::string what = preset + " " + dtype_name(t) + " " + attention_backend_name(attn);
  expect_close(el, rl, tol, what + " prefill");
  Seqs fed = prompts;
  for (int step = 0; step < 6; ++step) {
    const std::vector<int32_t> next = last_argmax(rl, fed, cfg.vocab);
    for (size_t b = 0; b < fed.size(); ++b) fed[b] = next[b] < 0 ? std::vector<int32_t>{} : std::vector<int32_t>{next[b]};
    if (step == 3) fed[1].clear();  // a sequence that sits out one step
    if (step == 4) fed[1] = {next[1] < 0 ? 7 : next[1]};
    rl = ref.forward(fed);
    el = eng.forward(fed);
    expect_close(el, rl, tol, what + " decode step " + std::to_string(step));
    for (int b = 0; b < 3; ++b) EXPECT_EQ(eng.cached(b), ref.cached(b)) << "seq " << b;
  }
}

TEST_F(Engine, Fp32LogitsMatchReferenceTiny) { logits_every_step("tiny", DType::F32, 1e-3); }
TEST_F(Engine, Fp32LogitsMatchReferenceQwen2) { logits_every_step("tiny-qwen2", DType::F32, 1e-3); }
TEST_F(Engine, Fp32LogitsMatchReferenceQwen3) { logits_every_step("tiny-qwen3", DType::F32, 1e-3); }
// bf16 against the reference rounding at the same points: only accumulation order differs, so
// rounding flips stay rare; bound set loosely until measured.
TEST_F(Engine, Bf16LogitsCloseToReference) { logits_every_step("tiny-qwen3", DType::BF16, 3e-2); }
// The flash backend: host-driven forwards run flash_prefill over the cache in place (the prompts,
// then one token per sequence on a cached prefix, a sequence sitting out a step).
constexpr AttentionBackend kFlash = AttentionBackend::Flash;
TEST_F(Engine, Fp32LogitsMatchReferenceTinyFlash) { logits_every_step("tiny", DType::F32, 1e-3, kFlash); }
TEST_F(Engine, Fp32LogitsMatchReferenceQwen2Flash) { logits_every_step("tiny-qwen2", DType::F32, 1e-3, kFlash); }
TEST_F(Engine, Fp32LogitsMatchReferenceQwen3Flash) { logits_every_step("tiny-qwen3", DType::F32, 1e-3, kFlash); }
TEST_F(Engine, Bf16LogitsCloseToReferenceFlash) { logits_every_step("tiny-qwen3", DType::BF16, 3e-2, kFlash); }

GenerateResult run_generate(Model& m, const Seqs& prompts, int max_new, SamplerConfig s, bool graph, int eos) {
  Generator g(m);
  GenerateRequest r;
  r.prompts = prompts;
  r.max_new_tokens = max_new;
  r.sampler = s;
  r.eos_token_id = eos;
  r.use_graph = graph;
  return g.generate(r);
}

RunShape generate_shape(int batch, int context, int prefill, AttentionBackend attn = AttentionBackend::Simple) {
  RunShape s;
  s.attention = attn;
  s.batch = batch;
  s.context = context;
  s.max_prefill_tokens = prefill;
  return s;
}

void greedy_tokens_equal_reference(AttentionBackend attn) {
  for (const char* preset : {"tiny", "tiny-qwen2", "tiny-qwen3"}) {
    const ModelConfig cfg = preset_config(preset);
    auto src = preset_source(preset, DType::F32);
    const ModelWeights w = load_weights(cfg, *src, DType::F32);
    ref::Model ref(cfg, w, DType::F32);
    const Seqs prompts = ragged_prompts(cfg.vocab);
    Model eng(cfg, *src, DType::F32, generate_shape(3, 17 + 10, 23, attn));
    const GenerateResult graph = run_generate(eng, prompts, 10, SamplerConfig{}, true, cfg.eos_token_id);
    const GenerateResult eager = run_generate(eng, prompts, 10, SamplerConfig{}, false, cfg.eos_token_id);
    for (size_t b = 0; b < prompts.size(); ++b) {
      const std::vector<int32_t> want = ref.generate_greedy(prompts[b], 10);
      const std::string tag = std::string(preset) + " " + attention_backend_name(attn) + " seq " + std::to_string(b);
      EXPECT_EQ(graph.tokens[b], want) << tag << " (graph)";
      EXPECT_EQ(eager.tokens[b], want) << tag << " (eager)";
    }
    EXPECT_TRUE(graph.graph);
    EXPECT_GT(graph.ttft_ms, 0.0);
    EXPECT_GT(graph.memory.kv_cache, 0u);
  }
}

TEST_F(Engine, GreedyTokensEqualReference) { greedy_tokens_equal_reference(AttentionBackend::Simple); }
TEST_F(Engine, GreedyTokensEqualReferenceFlash) { greedy_tokens_equal_reference(kFlash); }

// Flash decode steps (decode_attention, split-KV) give the reference's logits at every step, eager
// and from the graph: prompts long enough (and a context large enough) that the planned split count
// is above 1 and several splits hold keys, so the combine pass runs and is replayed while the caches grow.
// Sets an environment variable for one scope (the engine reads its switches when a Model is constructed).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// Whether decode steps of this engine run as the whole-step kernel (kernels/decode_step.h): its
// profile is one "decode_step" launch. Leaves the caches as they were.
bool runs_step_kernel(Model& eng, int batch) {
  const StepProfile p = profile_decode_step(eng, batch);
  return p.kernels.size() == 1 && p.kernels[0].name == "decode_step";
}

// Flash decode steps, from the split-KV decode_attention path (step_kernel false: MINFER_STEP=0) or
// the whole-step kernel, against the reference at every step.
void flash_decode_steps_match_reference(const char* preset, bool step_kernel, const std::vector<int>& lens) {
  ScopedEnv env("MINFER_STEP", step_kernel ? "1" : "0");
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::F32);
  const ModelWeights w = load_weights(cfg, *src, DType::F32);
  Seqs prompts;
  int prefill = 0;
  for (int len : lens) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back((i * 53 + len) % cfg.vocab);
    prompts.push_back(p);
    prefill += len;
  }
  const int steps = 6, B = static_cast<int>(lens.size());
  Model eng(cfg, *src, DType::F32, generate_shape(B, 400, prefill, kFlash));
  EXPECT_GT(eng.shape().decode_splits, 1);
  EXPECT_EQ(eng.shape().decode_workspace_bytes,
            decode_attention_workspace_bytes(B, cfg.heads, cfg.head_dim, eng.shape().decode_splits));
  EXPECT_EQ(eng.shape().step_workspace_bytes,
            decode_step_workspace_bytes(std::min(B, kDecodeStepMaxRows), cfg.heads, cfg.head_dim, kDecodeStepMaxSplits));
  for (bool graph : {false, true}) {
    std::vector<std::vector<float>> seen;
    Generator g(eng);
    GenerateRequest r;
    r.prompts = prompts;
    r.max_new_tokens = steps + 1;
    r.use_graph = graph;
    r.on_logits = [&](int, const std::vector<float>& l) { seen.push_back(l); };
    const GenerateResult res = g.generate(r);
    ASSERT_EQ(seen.size(), static_cast<size_t>(steps + 1));
    EXPECT_EQ(res.graph, graph);
    ref::Model ref(cfg, w, DType::F32);
    ref.reset(B);
    std::vector<float> rl = last_rows(ref.forward(prompts), prompts, cfg.vocab);
    for (int s = 0; s <= steps; ++s) {
      expect_close(seen[static_cast<size_t>(s)], rl, 1e-3,
                   std::string(preset) + (step_kernel ? " step kernel" : " decode_attention") + " step " +
                       std::to_string(s) + (graph ? " graph" : " eager"));
      if (s == steps) break;
      Seqs fed;
      for (size_t b = 0; b < prompts.size(); ++b) fed.push_back({res.tokens[b][static_cast<size_t>(s)]});
      rl = ref.forward(fed);
    }
  }
  EXPECT_EQ(runs_step_kernel(eng, B), step_kernel && B <= kDecodeStepMaxRows) << preset;
}

// Prompts long enough (and a context large enough) that the planned split count is above 1 and
// several splits hold keys, so the combine runs and is replayed while the caches grow.
// The engine plans its decode split count by the chained rule (decode_attention_splits_chained), in
// the regime where it differs from the kernel's rule too (one block per SM or so unsplit).
TEST_F(Engine, DecodeSplitsFollowTheChainedRule) {
  const ModelConfig cfg = preset_config("tiny-qwen3");
  auto src = preset_source("tiny-qwen3", DType::F32);
  int dev = 0, sms = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  const int64_t per_row = decode_attention_unsplit_blocks(1, cfg.heads, cfg.kv_heads);
  const int resident = decode_attention_resident_blocks(DType::F32, cfg.head_dim, 0);
  // The preset's whole context (tiny-qwen3: max_position_embeddings 1024; a longer plan is refused).
  const int ctx = cfg.max_position > 0 ? cfg.max_position : 4096;
  for (int B : {static_cast<int>(sms / per_row), std::max(1, static_cast<int>(sms / (4 * per_row)))}) {
    Model eng(cfg, *src, DType::F32, generate_shape(B, ctx, 64, kFlash));
    EXPECT_EQ(eng.shape().decode_splits,
              decode_attention_splits_chained(B, cfg.heads, cfg.kv_heads, ctx, sms, resident)) << "B=" << B;
  }
}

TEST_F(Engine, FlashDecodeStepLogitsMatchReference) { flash_decode_steps_match_reference("tiny-qwen3", false, {150, 7, 290}); }
// The whole-step kernel (its split count S = ceil(len / 32): 10 splits at 290 keys), one row (the
// R = 1 build) and three (the R <= 4 build), for each dense family's tiny model.
TEST_F(Engine, DecodeStepKernelLogitsMatchReference) {
  for (const char* preset : {"tiny", "tiny-qwen2", "tiny-qwen3"}) {
    flash_decode_steps_match_reference(preset, true, {150, 7, 290});
    flash_decode_steps_match_reference(preset, true, {290});
    flash_decode_steps_match_reference(preset, true, {3});  // one split: no combine
  }
}
// Off unless asked for; and the refusals name what the kernel cannot serve.
TEST_F(Engine, DecodeStepKernelIsOptInAndNamesWhatItCannotServe) {
  {
    const char* preset = "tiny-qwen3";
    const ModelConfig cfg = preset_config(preset);
    auto src = preset_source(preset, DType::BF16);
    Model eng(cfg, *src, DType::BF16, generate_shape(1, 40, 8, kFlash));
    run_generate(eng, {{1, 2, 3}}, 4, SamplerConfig{}, true, -1);
    EXPECT_FALSE(runs_step_kernel(eng, 1));
  }
  int dev = 0, major = 0;
  MINFER_CUDA_CHECK(cudaGetDevice(&dev));
  MINFER_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  DecodeStepParams p;
  p.rows = 5;
  if (major < 9) {
    EXPECT_NE(decode_step_unsupported(p).find("compute capability"), std::string::npos);
    return;
  }
  auto why = [&p] { return decode_step_unsupported(p); };
  EXPECT_NE(why().find("rows"), std::string::npos) << why();
  p.rows = 1;
  p.head_dim = 96;
  EXPECT_NE(why().find("head_dim"), std::string::npos) << why();
  p.head_dim = 128, p.heads = 32, p.kv_heads = 2;
  EXPECT_NE(why().find("8 query heads"), std::string::npos) << why();
  p.kv_heads = 8, p.layers = 2, p.vocab = 100, p.hidden = 4096, p.intermediate = 14336;
  EXPECT_NE(why().find("workspace"), std::string::npos) << why();  // nothing allocated
  p.rows = 4;  // 4 x 14336 bf16 activations: past the staging buffer
  EXPECT_NE(why().find("staging buffer"), std::string::npos) << why();
  const Status st = decode_step_forward(p, nullptr);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("decode_step"), std::string::npos) << st.message();
}

// Past the kernel's 4 rows the engine takes the per-op path.
TEST_F(Engine, DecodeStepKernelStepsAsideForFiveRows) {
  flash_decode_steps_match_reference("tiny-qwen3", true, {9, 1, 33, 70, 2});
}

TEST_F(Engine, SequencesFinishAtDifferentSteps) {
  // With eos set to the token the reference emits first for one sequence, that sequence stops at
  // once while the others run on; their tokens must still match the reference's.
  const char* preset = "tiny";
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::F32);
  const ModelWeights w = load_weights(cfg, *src, DType::F32);
  const Seqs prompts = ragged_prompts(cfg.vocab);
  ModelConfig cfg_eos = cfg;
  ModelConfig no_eos = cfg;
  no_eos.eos_token_id = -1;
  ref::Model plain(no_eos, w, DType::F32);
  const int eos = plain.generate_greedy(prompts[1], 1)[0];
  cfg_eos.eos_token_id = eos;
  ref::Model ref(cfg_eos, w, DType::F32);
  Model eng(cfg, *src, DType::F32, generate_shape(3, 17 + 8, 23));
  const GenerateResult r = run_generate(eng, prompts, 8, SamplerConfig{}, true, eos);
  ASSERT_EQ(r.tokens[1], std::vector<int32_t>({eos}));
  for (size_t b = 0; b < prompts.size(); ++b) EXPECT_EQ(r.tokens[b], ref.generate_greedy(prompts[b], 8)) << b;
}

// The kernel tracer (CUPTI) around a graph-decoding generate: every graph launch is one decode step of
// the same kernels (one record per graph node), spans are ordered in time, and the median step's shares
// add up to its span. Skipped where libcupti cannot be loaded (the tracer's error names it).
TEST_F(Engine, KernelTracerSeesEveryGraphStep) {
  const ModelConfig cfg = preset_config("tiny-qwen3");
  const Seqs prompts = ragged_prompts(cfg.vocab);
  Model eng(cfg, *preset_source("tiny-qwen3", DType::BF16), DType::BF16, generate_shape(3, 17 + 8, 23));
  run_generate(eng, prompts, 8, SamplerConfig{}, true, -1);  // warm: plans, tuner, graph capture
  std::unique_ptr<KernelTracer> tracer;
  try {
    tracer = std::make_unique<KernelTracer>();
  } catch (const UsageError& e) {
    GTEST_SKIP() << e.what();
  }
  const GenerateResult r = run_generate(eng, prompts, 8, SamplerConfig{}, true, -1);
  const std::vector<KernelSpan> spans = tracer->finish();
  ASSERT_TRUE(r.graph);
  std::map<uint32_t, std::vector<std::string>> steps;
  size_t eager = 0;
  for (const KernelSpan& k : spans) {
    EXPECT_FALSE(k.name.empty());
    EXPECT_GE(k.end_ns, k.start_ns) << k.name;
    if (k.graph != 0) steps[k.launch].push_back(k.name);
    else ++eager;
  }
  EXPECT_GT(eager, 0u);  // the prefill and the first (eager) decode step
  ASSERT_EQ(steps.size(), static_cast<size_t>(r.decode_steps - 1)) << "graph launches traced";
  const std::vector<std::string>& first = steps.begin()->second;
  EXPECT_GT(first.size(), static_cast<size_t>(cfg.layers));
  for (const auto& [launch, names] : steps) {
    std::vector<std::string> a = names, b = first;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b) << "launch " << launch;
  }
  const StepTimeline t = median_graph_step(spans);
  EXPECT_EQ(t.kernels.size(), first.size());
  double sum = 0;
  for (const TimelineKernel& k : t.kernels) sum += k.share_us;
  EXPECT_NEAR(sum, t.step_us, 1e-3 * t.step_us + 1e-3);
  EXPECT_LE(t.min_step_us, t.median_step_us);
  EXPECT_LE(t.median_step_us, t.max_step_us);
}

TEST_F(Engine, SamplingIsReproducibleForASeed) {
  const char* preset = "tiny-qwen3";
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::F32);
  const Seqs prompts = ragged_prompts(cfg.vocab);
  Model eng(cfg, *src, DType::F32, generate_shape(3, 17 + 12, 23));
  SamplerConfig s{1.0f, 40, 0.95f, 7};
  const GenerateResult a = run_generate(eng, prompts, 12, s, true, -1);
  const GenerateResult b = run_generate(eng, prompts, 12, s, true, -1);
  const GenerateResult c = run_generate(eng, prompts, 12, s, false, -1);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens, c.tokens);  // graph and eager draw the same
  s.seed = 8;
  const GenerateResult d = run_generate(eng, prompts, 12, s, true, -1);
  EXPECT_NE(a.tokens, d.tokens);  // 36 draws from ~40 tokens each: equal only by a vanishing chance
  for (const auto& seq : a.tokens) {
    EXPECT_EQ(seq.size(), 12u);
    for (int32_t id : seq) EXPECT_TRUE(id >= 0 && id < cfg.vocab) << id;
  }
  // top-k 1 and a tiny top-p are greedy whatever the temperature.
  const GenerateResult greedy = run_generate(eng, prompts, 12, SamplerConfig{}, true, -1);
  EXPECT_EQ(run_generate(eng, prompts, 12, SamplerConfig{2.0f, 1, 1.0f, 3}, true, -1).tokens, greedy.tokens);
  EXPECT_EQ(run_generate(eng, prompts, 12, SamplerConfig{2.0f, 0, 1e-6f, 3}, true, -1).tokens, greedy.tokens);
}

// Many identical rows of logits ln(1, 2, 3, 4): the draw frequencies follow p; top-k / top-p keep
// exactly the tokens they should.
TEST_F(Engine, SamplerDistribution) {
  const int rows = 8192, V = 4;
  std::vector<float> row = {std::log(1.0f), std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  std::vector<float> logits;
  for (int r = 0; r < rows; ++r) logits.insert(logits.end(), row.begin(), row.end());
  DevBuf dl(DType::F32, logits), dids(std::vector<int32_t>(rows, -1));
  uint64_t* counters = nullptr;
  MINFER_CUDA_CHECK(cudaMalloc(&counters, rows * 8));
  auto draw = [&](int top_k, float top_p) {
    MINFER_CUDA_CHECK(cudaMemset(counters, 0, rows * 8));
    SampleParams p;
    p.dtype = DType::F32;
    p.logits = dl.p;
    p.out_ids = static_cast<int32_t*>(dids.p);
    p.counters = counters;
    p.rows = rows;
    p.vocab = V;
    p.ld = V;
    p.temperature = 1.0f;
    p.top_k = top_k;
    p.top_p = top_p;
    p.seed = 11;
    MINFER_STATUS_CHECK(sample_forward(p, nullptr));
    std::vector<int32_t> ids(rows);
    MINFER_CUDA_CHECK(cudaMemcpy(ids.data(), dids.p, rows * 4, cudaMemcpyDeviceToHost));
    std::vector<double> f(V, 0.0);
    for (int32_t id : ids) {
      EXPECT_TRUE(id >= 0 && id < V) << id;
      if (id >= 0 && id < V) f[static_cast<size_t>(id)] += 1.0 / rows;
    }
    return f;
  };
  const std::vector<double> all = draw(0, 1.0f);
  for (int i = 0; i < V; ++i) EXPECT_NEAR(all[static_cast<size_t>(i)], (i + 1) / 10.0, 0.02) << i;
  const std::vector<double> k2 = draw(2, 1.0f);  // {3, 4} renormalised: 3/7, 4/7
  EXPECT_EQ(k2[0] + k2[1], 0.0);
  EXPECT_NEAR(k2[2], 3.0 / 7.0, 0.02);
  const std::vector<double> p5 = draw(0, 0.5f);  // smallest top set with mass >= 0.5: {0.4, 0.3}
  EXPECT_EQ(p5[0] + p5[1], 0.0);
  EXPECT_NEAR(p5[3], 4.0 / 7.0, 0.02);
  cudaFree(counters);
}

// Greedy rows over a vocab of 151939: the argmax, ties to the lowest id, in every dtype, by one block a
// row and by many (SampleParams::argmax_blocks, twice in a row: the tickets are back at zero), with rows
// that start 16-byte aligned (ld 151944: packs, then the element-wise tail) and rows that do not (ld
// 151941: rows 1-5 element-wise); the maximum planted twice per row, at ids in the packed part, in the
// tail, across, and at the two sides of a many-block chunk edge (2047 / 2048).
TEST_F(Engine, GreedyArgmaxTiesToTheLowestId) {
  const int rows = 7;
  const int64_t V = 151939;
  const int64_t plant[rows][2] = {{7, 151930}, {151936, 151938}, {0, 1}, {80000, 80001}, {5, 151938}, {151937, 9},
                                  {2048, 2047}};
  void* ws = nullptr;
  const size_t ws_bytes = sample_workspace_bytes(rows);
  MINFER_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  MINFER_CUDA_CHECK(cudaMemset(ws, 0, ws_bytes));
  for (int64_t ld : {V + 5, V + 2})
  for (int blocks : {0, 1, 1}) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> logits(static_cast<size_t>(rows * ld), 3.f);  // padding above the maximum: never read
    for (int r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < V; ++i) logits[static_cast<size_t>(r * ld + i)] = u(rng);
      for (int64_t id : plant[r]) logits[static_cast<size_t>(r * ld + id)] = 2.f;
    }
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      DevBuf dl(t, logits), dids(std::vector<int32_t>(rows, -1));
      SampleParams p;
      p.dtype = t;
      p.logits = dl.p;
      p.out_ids = static_cast<int32_t*>(dids.p);
      p.rows = rows;
      p.vocab = V;
      p.ld = ld;
      p.argmax_blocks = blocks;
      p.workspace = ws;
      p.workspace_bytes = ws_bytes;
      MINFER_STATUS_CHECK(sample_forward(p, nullptr));
      std::vector<int32_t> ids(rows);
      MINFER_CUDA_CHECK(cudaMemcpy(ids.data(), dids.p, rows * 4, cudaMemcpyDeviceToHost));
      for (int r = 0; r < rows; ++r)
        EXPECT_EQ(ids[static_cast<size_t>(r)], std::min(plant[r][0], plant[r][1]))
            << dtype_name(t) << " ld " << ld << " blocks " << blocks << " row " << r;
    }
  }
  std::vector<unsigned> tickets(rows, 1);
  MINFER_CUDA_CHECK(cudaMemcpy(tickets.data(), ws, rows * 4, cudaMemcpyDeviceToHost));
  for (int r = 0; r < rows; ++r) EXPECT_EQ(tickets[static_cast<size_t>(r)], 0u) << "row " << r;
  cudaFree(ws);
}

// The many-block argmax against one block a row, bf16, random rows of small and odd vocab sizes (one
// block, a partial last chunk, the 128-block limit), values in a narrow range (many exact ties: multiples
// of 1/8 in [-8, 8], exact in bf16) against the host's answer too; and its refusals name the field.
// Stream order after host copies: ids uploaded from pageable memory (cudaMemcpy) and a workspace
// cleared (cudaMemset) on the legacy stream, then the sampler launched there (PDL attributes on), many
// times over: each launch's ids are the host's, never the values uploaded before it. (Once, in a whole
// test_engine run on an H100, ManyBlockArgmaxAgreesWithOneBlock read V 1's one-block ids back as the -1
// uploaded before the launch; 300 repeats of it alone did not fail again.)
TEST_F(Engine, SamplerLaunchFollowsTheUploadsBeforeIt) {
  const int rows = 3;
  const int64_t V = 1;
  const std::vector<float> logits(rows * V, 0.5f);
  DevBuf dl(DType::BF16, logits), out(std::vector<int32_t>(rows, -1));
  void* ws = nullptr;
  const size_t ws_bytes = sample_workspace_bytes(rows);
  MINFER_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  const std::vector<int32_t> stale(rows, -1);
  int wrong = 0;
  for (int it = 0; it < 400; ++it) {
    MINFER_CUDA_CHECK(cudaMemcpy(out.p, stale.data(), rows * 4, cudaMemcpyHostToDevice));
    MINFER_CUDA_CHECK(cudaMemset(ws, 0, ws_bytes));
    SampleParams p;
    p.dtype = DType::BF16, p.logits = dl.p, p.rows = rows, p.vocab = V, p.ld = V;
    p.workspace = ws, p.workspace_bytes = ws_bytes;
    p.out_ids = static_cast<int32_t*>(out.p), p.argmax_blocks = it % 2;
    MINFER_STATUS_CHECK(sample_forward(p, nullptr));
    std::vector<int32_t> got(rows);
    MINFER_CUDA_CHECK(cudaMemcpy(got.data(), out.p, rows * 4, cudaMemcpyDeviceToHost));
    for (int r = 0; r < rows; ++r) wrong += got[static_cast<size_t>(r)] != 0;
  }
  EXPECT_EQ(wrong, 0) << "ids not written (or overwritten by the upload before the launch) in " << wrong
                      << " of " << 400 * rows << " rows";
  cudaFree(ws);
}

TEST_F(Engine, ManyBlockArgmaxAgreesWithOneBlock) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> q(-64, 64);
  for (int64_t V : {int64_t{1}, int64_t{7}, int64_t{2048}, int64_t{2049}, int64_t{128256}, int64_t{128 * 2048}}) {
    const int rows = 5;
    std::vector<float> logits(static_cast<size_t>(rows * V));
    for (auto& x : logits) x = static_cast<float>(q(rng)) / 8.f;
    DevBuf dl(DType::BF16, logits), one(std::vector<int32_t>(rows, -1)), many(std::vector<int32_t>(rows, -2));
    void* ws = nullptr;
    const size_t ws_bytes = sample_workspace_bytes(rows);
    MINFER_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
    MINFER_CUDA_CHECK(cudaMemset(ws, 0, ws_bytes));
    // Every upload landed before the first launch (its own check of each kernel, not of the launch
    // order after host copies): once, V 1's one-block ids read back as the -1 uploaded before it.
    MINFER_CUDA_CHECK(cudaDeviceSynchronize());
    SampleParams p;
    p.dtype = DType::BF16, p.logits = dl.p, p.rows = rows, p.vocab = V, p.ld = V;
    p.workspace = ws, p.workspace_bytes = ws_bytes;
    p.out_ids = static_cast<int32_t*>(one.p), p.argmax_blocks = 0;
    MINFER_STATUS_CHECK(sample_forward(p, nullptr));
    MINFER_CUDA_CHECK(cudaDeviceSynchronize());
    p.out_ids = static_cast<int32_t*>(many.p), p.argmax_blocks = 1;
    MINFER_STATUS_CHECK(sample_forward(p, nullptr));
    MINFER_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<int32_t> a(rows), b(rows);
    MINFER_CUDA_CHECK(cudaMemcpy(a.data(), one.p, rows * 4, cudaMemcpyDeviceToHost));
    MINFER_CUDA_CHECK(cudaMemcpy(b.data(), many.p, rows * 4, cudaMemcpyDeviceToHost));
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(a[static_cast<size_t>(r)], b[static_cast<size_t>(r)]) << "V " << V << " row " << r;
      const auto row = logits.begin() + r * V;
      EXPECT_EQ(b[static_cast<size_t>(r)], std::max_element(row, row + V) - row) << "V " << V << " row " << r;
      EXPECT_EQ(a[static_cast<size_t>(r)], std::max_element(row, row + V) - row) << "V " << V << " row " << r << " (one block)";
    }
    if (V == 2049) {
      p.workspace_bytes = ws_bytes - 1;
      const Status st = sample_forward(p, nullptr);
      EXPECT_FALSE(st.is_ok());
      EXPECT_NE(st.message().find("workspace_bytes"), std::string::npos) << st.message();
      p.workspace = nullptr;
      EXPECT_NE(sample_forward(p, nullptr).message().find("workspace"), std::string::npos);
    }
    cudaFree(ws);
  }
  SampleParams big;
  big.logits = &big, big.out_ids = reinterpret_cast<int32_t*>(&big), big.rows = 1, big.vocab = 128 * 2048 + 1;
  big.ld = big.vocab, big.argmax_blocks = 1, big.workspace = &big, big.workspace_bytes = sample_workspace_bytes(1);
  EXPECT_NE(sample_forward(big, nullptr).message().find("vocab"), std::string::npos);
}

// The engine's plan sizes the sampler's workspace as the kernel asks (no device needed).
TEST(SampleWorkspace, PlanMatchesTheKernel) {
  for (int rows : {1, 3, 4, 5, 32, 257}) EXPECT_EQ(sample_workspace_bytes_for(rows), sample_workspace_bytes(rows)) << rows;
}

TEST_F(Engine, KvCacheRefusalNamesTheLimit) {
  const ModelConfig cfg = preset_config("llama-3.1-8b");
  auto src = preset_source("llama-3.1-8b", DType::BF16);
  size_t free_before = 0, total = 0;
  MINFER_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  try {
    Model m(cfg, *src, DType::BF16, generate_shape(1024, 131072, 1024));
    FAIL() << "a 17 TB KV cache was not refused";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("KV cache of " + mib_str(kv_cache_bytes(cfg, DType::BF16, 1024, 131072))), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("free GPU memory"), std::string::npos) << msg;
  }
  size_t free_after = 0;
  MINFER_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  EXPECT_EQ(free_after, free_before);  // refused before any allocation
  const ModelConfig tiny = preset_config("tiny");
  auto tsrc = preset_source("tiny", DType::F32);
  try {
    Model m(tiny, *tsrc, DType::F32, generate_shape(1, tiny.max_position + 1, 4));
    FAIL() << "context past max_position_embeddings was not refused";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("max_position_embeddings"), std::string::npos) << e.what();
  }
}

// ---- per-step logits, reshape, profile, model sweep ------------------------------------------------

TEST_F(Engine, GeneratorReportsLogitsOfEveryStep) {
  const char* preset = "tiny-qwen2";
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::F32);
  const Seqs prompts = ragged_prompts(cfg.vocab);
  Model eng(cfg, *src, DType::F32, generate_shape(3, 17 + 6, 23));
  std::vector<std::pair<int, size_t>> seen;  // (step, values)
  std::vector<std::vector<float>> logits;
  Generator g(eng);
  GenerateRequest r;
  r.prompts = prompts;
  r.max_new_tokens = 6;
  r.on_logits = [&](int step, const std::vector<float>& l) {
    seen.emplace_back(step, l.size());
    logits.push_back(l);
  };
  const GenerateResult res = g.generate(r);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0], std::make_pair(0, size_t{3} * static_cast<size_t>(cfg.vocab)));
  for (int s = 1; s < 6; ++s) EXPECT_EQ(seen[static_cast<size_t>(s)], std::make_pair(s, static_cast<size_t>(bucket_for(3, 3)) * static_cast<size_t>(cfg.vocab)));
  for (int s = 0; s < 6; ++s)  // the greedy token of each step is the argmax of the logits reported
    for (int b = 0; b < 3; ++b) {
      const float* row = logits[static_cast<size_t>(s)].data() + static_cast<size_t>(b) * static_cast<size_t>(cfg.vocab);
      EXPECT_EQ(res.tokens[static_cast<size_t>(b)][static_cast<size_t>(s)],
                static_cast<int32_t>(std::max_element(row, row + cfg.vocab) - row)) << "step " << s << " seq " << b;
    }
}

TEST_F(Engine, ReshapeServesANewRequestShape) {
  const char* preset = "tiny";
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::F32);
  const ModelWeights w = load_weights(cfg, *src, DType::F32);
  ref::Model ref(cfg, w, DType::F32);
  Model eng(cfg, *src, DType::F32, generate_shape(1, 8, 4));
  const Seqs prompts = ragged_prompts(cfg.vocab);
  EXPECT_THROW(run_generate(eng, prompts, 6, SamplerConfig{}, true, -1), UsageError);  // batch 1 planned
  eng.reshape(generate_shape(3, 17 + 6, 23));
  EXPECT_EQ(eng.shape().batch, 3);
  const GenerateResult r = run_generate(eng, prompts, 6, SamplerConfig{}, true, -1);
  ModelConfig no_eos = cfg;
  no_eos.eos_token_id = -1;
  ref::Model plain(no_eos, w, DType::F32);
  for (size_t b = 0; b < prompts.size(); ++b) EXPECT_EQ(r.tokens[b], plain.generate_greedy(prompts[b], 6)) << b;
  EXPECT_THROW(eng.reshape(generate_shape(1, cfg.max_position + 1, 4)), UsageError);
}

// Sets MINFER_FUSED_MAX_ROWS for one scope (the engine reads it when a Model is constructed).
class FusedRows {
 public:
  explicit FusedRows(const char* n) { setenv("MINFER_FUSED_MAX_ROWS", n, 1); }
  ~FusedRows() { unsetenv("MINFER_FUSED_MAX_ROWS"); }
  FusedRows(const FusedRows&) = delete;
  FusedRows& operator=(const FusedRows&) = delete;
};

// The opt-in fused decode GEMVs (MINFER_FUSED_MAX_ROWS=4) against the reference in fp32: six sequences
// (a 6-row bucket, past the limit: unfused steps) and their first three (a 4-row bucket: fused steps).
TEST_F(Engine, FusedDecodeStepsMatchTheReference) {
  FusedRows env("4");
  ScopedEnv no_step("MINFER_STEP", "0");  // the fused GEMVs, not the whole-step kernel
  for (const char* preset : {"tiny", "tiny-qwen3"})
    for (int n : {6, 3}) {
      SCOPED_TRACE(std::string(preset) + " sequences " + std::to_string(n));
      const ModelConfig cfg = preset_config(preset);
      auto src = preset_source(preset, DType::F32);
      const ModelWeights w = load_weights(cfg, *src, DType::F32);
      Seqs prompts = ragged_prompts(cfg.vocab);
      for (const auto& p : ragged_prompts(cfg.vocab)) prompts.push_back(std::vector<int32_t>(p.rbegin(), p.rend()));
      prompts.resize(static_cast<size_t>(n));
      Model eng(cfg, *src, DType::F32, generate_shape(n, 17 + 6, 2 * 23, kFlash));
      const GenerateResult r = run_generate(eng, prompts, 6, SamplerConfig{}, true, -1);
      ModelConfig no_eos = cfg;
      no_eos.eos_token_id = -1;
      ref::Model plain(no_eos, w, DType::F32);
      for (size_t b = 0; b < prompts.size(); ++b) EXPECT_EQ(r.tokens[b], plain.generate_greedy(prompts[b], 6)) << b;
    }
}

// `copies` repeats of the three ragged prompts (a bucket of 4 rows, or 8 with 2 copies); `fused`: the
// opt-in fused decode GEMVs for steps of at most 4 rows; `fusions`: the gate/up GEMV's SwiGLU epilogue
// and decode attention's RoPE prologue for steps of at most 4 rows (the latter with flash attention
// only), else neither (both pinned either way: the default depends on the model's width).
void profile_times_every_launch(AttentionBackend attn, int copies, bool fused_on = false, bool fusions = false) {
  FusedRows env(fused_on ? "4" : "0");
  ScopedEnv swiglu("MINFER_GEMV_SWIGLU_MAX_ROWS", fusions ? "4" : "0");
  ScopedEnv rope("MINFER_FUSED_ROPE_MAX_ROWS", fusions ? "4" : "0");
  ScopedEnv no_step("MINFER_STEP", "0");  // the per-op step (the opt-in whole-step kernel: below)
  const char* preset = "tiny-qwen3";
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::BF16);
  Seqs prompts;
  for (int c = 0; c < copies; ++c)
    for (const auto& p : ragged_prompts(cfg.vocab)) prompts.push_back(p);
  const int B = static_cast<int>(prompts.size());
  Model eng(cfg, *src, DType::BF16, generate_shape(B, 17 + 6 + 1, 23 * copies, attn));
  run_generate(eng, prompts, 6, SamplerConfig{}, true, -1);
  std::vector<int> before;
  for (int b = 0; b < B; ++b) before.push_back(eng.cached(b));
  const StepProfile p = profile_decode_step(eng, B);
  EXPECT_EQ(p.rows, bucket_for(B, B));
  std::map<std::string, int> calls;
  int total = 0;
  for (const KernelTiming& k : p.kernels) {
    calls[k.name] = k.calls;
    total += k.calls;
    EXPECT_GT(k.us, 0.0) << k.name;
    EXPECT_GT(k.bytes, 0.0) << k.name;
  }
  const int L = cfg.layers;
  const bool fused = fused_on && p.rows <= 4;
  const bool rope_fused = fusions && p.rows <= 4 && attn == kFlash;  // in attention: no rope launch
  const bool swiglu_fused = fusions && p.rows <= 4;
  EXPECT_EQ(calls["embedding"], 1);
  EXPECT_EQ(calls["attention"], L);
  EXPECT_EQ(calls["qkv_rope_cache"], rope_fused ? 0 : L);
  EXPECT_EQ(calls["gemm.lm_head"], 1);
  const int rope_launches = rope_fused ? 0 : L;
  if (fused) {
    for (const char* k : {"gemm.qkv", "gemv.o+residual+norm", "gemv.gate_up+swiglu", "gemv.down+residual+norm"})
      EXPECT_EQ(calls[k], L) << k;
    EXPECT_EQ(calls["rmsnorm"], 1);  // layer 0's attention norm (the others come from the GEMVs)
    EXPECT_EQ(total, 1 + 1 + L * 5 + rope_launches + 1);  // embedding, norm; per layer: 4 projections, attention
    EXPECT_NE(format_profile(p).find("gemv.gate_up+swiglu"), std::string::npos);
  } else if (swiglu_fused) {
    for (const char* k : {"gemm.qkv", "gemm.o", "gemv.gate_up+swiglu", "gemm.down"}) EXPECT_EQ(calls[k], L) << k;
    EXPECT_EQ(calls["swiglu"], 0);
    EXPECT_EQ(calls["rmsnorm"], 2 * L + 1);
    EXPECT_EQ(total, 1 + L * 7 + rope_launches + 1 + 1);  // per layer: 2 norms, 4 projections, attention
  } else {
    EXPECT_EQ(calls["gemm.qkv"], L);
    EXPECT_EQ(calls["rmsnorm"], 2 * L + 1);
    EXPECT_EQ(total, 1 + L * 8 + rope_launches + 1 + 1);  // per layer: 2 norms, 4 GEMMs, attention, swiglu
    EXPECT_NE(format_profile(p).find("gemm.gate_up"), std::string::npos);
  }
  EXPECT_GE(p.step_us, p.launches_us * 0.5);
  EXPECT_EQ(profile_csv(p).rfind("kernel,calls,us,pct,bytes,gbps\n", 0), 0u);
  for (int b = 0; b < B; ++b) EXPECT_EQ(eng.cached(b), before[static_cast<size_t>(b)]);
}

TEST_F(Engine, ProfileTimesEveryLaunchOfADecodeStep) { profile_times_every_launch(AttentionBackend::Simple, 1); }
// Flash: decode_attention (split pass and, with splits, the combine pass) is one "attention" entry.
TEST_F(Engine, ProfileTimesEveryLaunchOfADecodeStepFlash) { profile_times_every_launch(kFlash, 1); }
TEST_F(Engine, ProfileTimesEveryLaunchOfAFusedDecodeStep) { profile_times_every_launch(kFlash, 1, true); }
TEST_F(Engine, ProfileTimesEveryLaunchOfAFusedEnginePastItsRowLimit) { profile_times_every_launch(kFlash, 2, true); }
// The SwiGLU epilogue and the RoPE prologue: two launches fewer per layer at 4 rows; none past the limit
// (8 rows); with the simple attention only the SwiGLU one.
TEST_F(Engine, ProfileTimesEveryLaunchOfADecodeStepWithItsFusions) {
  profile_times_every_launch(kFlash, 1, false, true);
  profile_times_every_launch(kFlash, 2, false, true);
  profile_times_every_launch(AttentionBackend::Simple, 1, false, true);
  profile_times_every_launch(kFlash, 1, true, true);  // with the fused GEMVs: the rope launch goes too
}

// A single-row decode step of a model at most 2048 wide folds both RMSNorms of a layer into the QKV and
// gate/up GEMVs and the residual adds into the o and down GEMVs (MINFER_NORM_IN unset: the default
// rule; =1 forces it): one RMSNorm launch a step, the final one. MINFER_NORM_IN=0 keeps two a layer.
TEST_F(Engine, ProfileOfASingleRowStepFoldsItsNorms) {
  for (const char* mode : {"unset", "1", "0"}) {
    FusedRows env("0");
    ScopedEnv no_step("MINFER_STEP", "0");
    if (std::string(mode) == "unset") unsetenv("MINFER_NORM_IN");
    else setenv("MINFER_NORM_IN", mode, 1);
    const char* preset = "tiny-qwen3";
    const ModelConfig cfg = preset_config(preset);
    ASSERT_LE(cfg.hidden, 2048);
    auto src = preset_source(preset, DType::BF16);
    const Seqs prompts{ragged_prompts(cfg.vocab)[0]};
    Model eng(cfg, *src, DType::BF16, generate_shape(1, 32, 32, kFlash));
    run_generate(eng, prompts, 4, SamplerConfig{}, true, -1);
    const StepProfile p = profile_decode_step(eng, 1);
    unsetenv("MINFER_NORM_IN");
    std::map<std::string, int> calls;
    for (const KernelTiming& k : p.kernels) calls[k.name] = k.calls;
    const int L = cfg.layers;
    const bool folded = std::string(mode) != "0";
    EXPECT_EQ(p.rows, 1) << mode;
    EXPECT_EQ(calls["rmsnorm"], folded ? 1 : 2 * L + 1) << mode;
    for (const char* k : {"gemv.qkv+norm", "gemv.o+residual", "gemv.gate_up+norm+swiglu", "gemv.down+residual"})
      EXPECT_EQ(calls[k], folded ? L : 0) << k << " " << mode;
    EXPECT_EQ(calls["gemm.qkv"], folded ? 0 : L) << mode;
    EXPECT_EQ(calls["attention"], L) << mode;
  }
}

// The whole-step kernel is one launch per decode step (the sampler and the position advance are the
// generator's); its bytes are the streamed weights and the KV rows read.
TEST_F(Engine, ProfileOfTheDecodeStepKernelIsOneLaunch) {
  ScopedEnv step("MINFER_STEP", "1");
  const char* preset = "tiny-qwen3";
  const ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, DType::BF16);
  const Seqs prompts = ragged_prompts(cfg.vocab);
  Model eng(cfg, *src, DType::BF16, generate_shape(3, 17 + 6 + 1, 23, kFlash));
  run_generate(eng, prompts, 6, SamplerConfig{}, true, -1);
  const StepProfile p = profile_decode_step(eng, 3);
  ASSERT_EQ(p.kernels.size(), 1u) << format_profile(p);
  EXPECT_EQ(p.kernels[0].name, "decode_step");
  EXPECT_EQ(p.kernels[0].calls, 1);
  EXPECT_GT(p.kernels[0].us, 0.0);
  EXPECT_GT(p.kernels[0].bytes, 0.0);
  // Its traced stages: embed, then five per layer, then the head; walls add up to about the kernel.
  std::vector<std::string> names;
  double wall = 0;
  for (const StageTiming& t : p.stages) {
    names.push_back(t.name);
    wall += t.wall_us;
    EXPECT_EQ(t.calls, t.name == "embed" || t.name == "head" ? 1 : cfg.layers) << t.name;
    EXPECT_GT(t.wall_us, 0.0) << t.name;
    EXPECT_GE(t.work_max_us, t.work_mean_us) << t.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"embed", "qkv", "attn", "o", "gu", "down", "head"}));
  EXPECT_LT(wall, 3.0 * p.kernels[0].us);
  EXPECT_NE(format_profile(p).find("decode_step stages"), std::string::npos);
  EXPECT_EQ(profile_stages_csv(p).rfind("stage,calls,wall_us,pct,work_max_us,work_mean_us,barrier_us\n", 0), 0u);
}

// The trace summary on made-up times (no GPU): 1 layer, 2 blocks; block 1 arrives last at each
// barrier, both leave together 1 us later.
TEST(StepTrace, SummaryOfStagesFromATrace) {
  const int L = 1, G = 2, points = 5 * L + 3;
  std::vector<unsigned long long> t(static_cast<size_t>(points) * G * 2);
  unsigned long long now = 1000;
  for (int k = 0; k < points; ++k) {
    const unsigned long long a0 = now + 1000 * k, a1 = a0 + 500, dep = k == 0 || k == points - 1 ? 0 : a1 + 1000;
    t[(static_cast<size_t>(k) * G + 0) * 2] = a0;
    t[(static_cast<size_t>(k) * G + 0) * 2 + 1] = dep ? dep : a0;
    t[(static_cast<size_t>(k) * G + 1) * 2] = a1;
    t[(static_cast<size_t>(k) * G + 1) * 2 + 1] = dep ? dep : a1;
    now += 1500;
  }
  const std::vector<StageTiming> s = summarise_step_trace(t, L, G);
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(s[0].name, "embed");
  EXPECT_EQ(s[6].name, "head");
  EXPECT_EQ(s[2].name, "attn");
  EXPECT_NEAR(s[2].barrier_us, 1.0, 1e-9);   // from the last arrival to the departure
  EXPECT_NEAR(s[2].work_max_us, 1.5, 1e-9);  // block 1: arrival 6500 ns - previous departure 5000 ns
  EXPECT_NEAR(s[2].work_mean_us, 1.25, 1e-9);
  EXPECT_NEAR(s[2].wall_us, 2.5, 1e-9);      // departures 5000 -> 7500 ns
  EXPECT_NEAR(s[6].barrier_us, 0.0, 1e-9);   // the end is no barrier
  EXPECT_THROW(summarise_step_trace(std::vector<unsigned long long>(5), L, G), UsageError);
}

TEST_F(Engine, ModelSweepQuickFp32CasesPass) {
  for (const val::Case& c : val::sweep_cases("model", true)) {
    if (c.dtype != DType::F32) continue;
    const val::ModelCaseResult r = val::check_model_case(c, 1e-3, 1234);
    ASSERT_TRUE(r.error.empty()) << c.id() << ": " << r.error;
    EXPECT_TRUE(r.pass) << c.id() << " worst " << r.rows.back().e.summary();
    EXPECT_EQ(r.rows.size(), static_cast<size_t>(c.axis("steps") + 3)) << c.id();
    EXPECT_EQ(r.rows.back().agree, r.rows.back().tokens) << c.id();  // fp32: every greedy token agrees
  }
}

}  // namespace
}  // namespace minfer

// ---- HF parity: the engine's fp32 logits against transformers' own (tests/fixtures) ----------------
namespace minfer {
namespace {

struct HfSequence {
  std::vector<int32_t> tokens;  // (S)
  std::vector<float> logits;    // (S, V) HF fp32
};

std::vector<HfSequence> read_expected(const std::string& path, int vocab) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open (run tools/make_hf_fixtures.py)");
  const nlohmann::json j = nlohmann::json::parse(f);
  std::vector<HfSequence> out;
  for (const auto& s : j.at("sequences")) {
    HfSequence q;
    q.tokens = s.at("tokens").get<std::vector<int32_t>>();
    for (const auto& row : s.at("logits")) {
      const auto r = row.get<std::vector<float>>();
      if (static_cast<int>(r.size()) != vocab) throw std::runtime_error(path + ": logits row is not vocab wide");
      q.logits.insert(q.logits.end(), r.begin(), r.end());
    }
    out.push_back(std::move(q));
  }
  return out;
}

// Each sequence as one prefill, then again token by token through the KV cache.
void engine_matches_hf(const std::string& family, AttentionBackend attn = AttentionBackend::Simple) {
  const std::string dir = std::string(MINFER_SOURCE_DIR) + "/tests/fixtures/" + family;
  const ModelConfig cfg = load_config_json(dir + "/config.json");
  auto src = open_checkpoint(dir);
  for (const HfSequence& s : read_expected(dir + "/expected.json", cfg.vocab)) {
    const int n = static_cast<int>(s.tokens.size());
    RunShape shape;
    shape.batch = 1;
    shape.context = n + 1;
    shape.max_prefill_tokens = n;
    shape.all_logits = true;
    shape.attention = attn;
    Model eng(cfg, *src, DType::F32, shape);
    const std::string what = family + " (" + attention_backend_name(attn) + ")";
    expect_close(eng.forward({s.tokens}), s.logits, 1e-3, what + " prefill of " + std::to_string(n));
    eng.reset();
    std::vector<float> stepwise;
    for (int32_t t : s.tokens) {
      const std::vector<float> l = eng.forward({{t}});
      stepwise.insert(stepwise.end(), l.begin(), l.end());
    }
    expect_close(stepwise, s.logits, 1e-3, what + " token by token, " + std::to_string(n));
  }
}

TEST_F(Engine, Fp32LogitsMatchHfTransformersLlama) { engine_matches_hf("llama"); }
TEST_F(Engine, Fp32LogitsMatchHfTransformersQwen2) { engine_matches_hf("qwen2"); }
TEST_F(Engine, Fp32LogitsMatchHfTransformersQwen3) { engine_matches_hf("qwen3"); }
TEST_F(Engine, Fp32LogitsMatchHfTransformersLlamaFlash) { engine_matches_hf("llama", AttentionBackend::Flash); }
TEST_F(Engine, Fp32LogitsMatchHfTransformersQwen2Flash) { engine_matches_hf("qwen2", AttentionBackend::Flash); }
TEST_F(Engine, Fp32LogitsMatchHfTransformersQwen3Flash) { engine_matches_hf("qwen3", AttentionBackend::Flash); }

}  // namespace
}  // namespace minfer
