// tests/cpu/test_engine_plan.cpp: the CUDA engine's host-side planning (engine/core/plan.h), tested
// without a GPU: device weight layout, KV cache sizing and refusal, memory plan, workspace layout,
// batch buckets, sampler checks, the RoPE table against the reference's, and the CLI's refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>

#include "engine/core/error.h"
#include "engine/core/plan.h"
#include "engine/core/presets.h"
#include "engine/core/weights.h"
#include "reference/ops.h"

namespace minfer {
namespace {

template <typename F>
std::string usage_message(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(EnginePlan, EverySlotHasADisjointAlignedPlace) {
  for (const char* name : {"tiny", "tiny-qwen2", "tiny-qwen3", "qwen3-0.6b"}) {
    const ModelConfig c = preset_config(name);
    const WeightLayout w = plan_weights(c, DType::BF16);
    std::vector<std::pair<int64_t, int64_t>> spans;
    for (const WeightSpec& s : weight_map(c)) {
      const SlotPlace p = place_of(c, w, s.slot);
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      EXPECT_EQ(p.count, n) << name << " " << s.slot;
      EXPECT_GE(p.offset, 0);
      EXPECT_LE(p.offset + p.count, w.total_elems) << name << " " << s.slot;
      spans.emplace_back(p.offset, p.offset + p.count);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i) EXPECT_LE(spans[i - 1].second, spans[i].first) << name << " overlap";
    EXPECT_EQ(w.bytes(), static_cast<uint64_t>(w.total_elems) * 2);
    for (const LayerLayout& l : w.layers) {
      EXPECT_EQ(l.wqkv % kWeightAlignElems, 0);
      EXPECT_EQ(l.wgu % kWeightAlignElems, 0);
    }
  }
}

TEST(EnginePlan, FusedSlicesAreContiguousInProjectionOrder) {
  const ModelConfig c = preset_config("tiny-qwen2");  // attention bias, tied embeddings
  const WeightLayout w = plan_weights(c, DType::F32);
  const int64_t H = c.hidden, q = c.q_dim(), kv = c.kv_dim(), I = c.intermediate;
  EXPECT_EQ(place_of(c, w, "layers.1.wk").offset, w.layers[1].wqkv + q * H);
  EXPECT_EQ(place_of(c, w, "layers.1.wv").offset, w.layers[1].wqkv + (q + kv) * H);
  EXPECT_EQ(place_of(c, w, "layers.1.bv").offset, w.layers[1].bqkv + q + kv);
  EXPECT_EQ(place_of(c, w, "layers.0.w_up").offset, w.layers[0].wgu + I * H);
  EXPECT_EQ(w.lm_head, w.embed);  // tied
  EXPECT_TRUE(has(usage_message([&] { place_of(c, w, "lm_head"); }), "lm_head"));
  const ModelConfig l = preset_config("tiny");
  const WeightLayout wl = plan_weights(l, DType::F32);
  EXPECT_NE(wl.lm_head, wl.embed);
  EXPECT_EQ(wl.layers[0].bqkv, -1);
  EXPECT_EQ(wl.layers[0].q_norm, -1);
  const WeightLayout w3 = plan_weights(preset_config("tiny-qwen3"), DType::F32);
  EXPECT_GE(w3.layers[1].q_norm, 0);
}

TEST(EnginePlan, RefusesMixtureOfExperts) {
  for (const char* name : {"tiny-mixtral", "tiny-qwen3-moe", "tiny-olmoe"}) {
    const std::string m = usage_message([&] { plan_weights(preset_config(name), DType::BF16); });
    EXPECT_TRUE(has(m, "cuda engine")) << name << ": " << m;
  }
}

TEST(EnginePlan, KvCacheBytes) {
  const ModelConfig c = preset_config("qwen3-0.6b");  // L 28, nkv 8, hd 128
  EXPECT_EQ(kv_cache_bytes(c, DType::BF16, 4, 1000), 2ull * 28 * 4 * 1000 * 8 * 128 * 2);
  EXPECT_EQ(kv_cache_bytes(c, DType::F32, 1, 1), 2ull * 28 * 8 * 128 * 4);
}

TEST(EnginePlan, RequestPastLimitsNamesTheLimit) {
  const ModelConfig c = preset_config("tiny");  // max_position 1024
  RunShape s;
  s.batch = 2;
  s.context = 1025;
  s.max_prefill_tokens = 4;
  std::string m = usage_message([&] { check_request(c, s); });
  EXPECT_TRUE(has(m, "max_position_embeddings") && has(m, "1024") && has(m, "1025")) << m;
  s.context = 1024;
  EXPECT_EQ(usage_message([&] { check_request(c, s); }), "");
  s.batch = kMaxBatch + 1;
  m = usage_message([&] { check_request(c, s); });
  EXPECT_TRUE(has(m, std::to_string(kMaxBatch))) << m;
}

TEST(EnginePlan, KvCacheThatDoesNotFitIsRefusedWithItsSize) {
  const ModelConfig c = preset_config("llama-3.1-8b");
  RunShape s;
  s.batch = 64;
  s.context = 131072;
  s.max_prefill_tokens = 64;
  const MemoryPlan p = plan_memory(c, DType::BF16, s);
  EXPECT_EQ(p.kv_cache, kv_cache_bytes(c, DType::BF16, 64, 131072));
  const uint64_t free80 = 80ull << 30;
  const std::string m = usage_message([&] { check_fits(p, s, free80); });
  EXPECT_TRUE(has(m, "KV cache of " + mib_str(p.kv_cache)) && has(m, "batch 64") && has(m, "context 131072") &&
              has(m, "free GPU memory " + mib_str(free80)))
      << m;
  s.batch = 1;
  s.context = 4096;
  const MemoryPlan small = plan_memory(c, DType::BF16, s);
  EXPECT_EQ(usage_message([&] { check_fits(small, s, free80); }), "");
  EXPECT_GT(small.weights, 16'000'000'000ull);  // 8.03B bf16 parameters (plus alignment)
  EXPECT_LT(small.weights, 16'100'000'000ull);
}

TEST(EnginePlan, WorkspaceLayoutIsDisjointAndSized) {
  const ModelConfig c = preset_config("tiny-qwen3");
  RunShape s;
  s.batch = 3;
  s.context = 40;
  s.max_prefill_tokens = 23;
  s.all_logits = true;
  EXPECT_EQ(activation_rows(s), 23);
  EXPECT_EQ(logit_rows(s), 23);
  const WorkspaceLayout w = plan_workspace(c, DType::F16, s);
  const std::array<uint64_t, 21> offs{w.res,        w.a,        w.y,    w.qkv,      w.q,
                                      w.att,        w.gu,       w.act,  w.logits,   w.ids,
                                      w.positions,  w.token_slot, w.cu_seqlens, w.cache_lens, w.slot,
                                      w.counters,   w.gemv_counters, w.sample, w.cos_sin, w.gemm, w.bytes};
  for (size_t i = 1; i < offs.size(); ++i) EXPECT_LT(offs[i - 1], offs[i]) << i;
  for (uint64_t o : offs) EXPECT_EQ(o % 256, 0u);
  EXPECT_GE(w.logits - w.act, 23ull * static_cast<uint64_t>(c.intermediate) * 2);
  EXPECT_GE(w.ids - w.logits, 23ull * static_cast<uint64_t>(c.vocab) * 2);
  EXPECT_EQ(w.bytes - w.gemm, kGemmWorkspaceBytes);
  // The sampler's workspace holds the largest batch bucket's rows (3 here), not the 23 logit rows.
  EXPECT_EQ(sample_rows(s), 3);
  EXPECT_GE(w.cos_sin - w.sample, sample_workspace_bytes_for(3));
  EXPECT_LT(w.cos_sin - w.sample, sample_workspace_bytes_for(3) + 256);
  EXPECT_EQ(workspace_bytes(c, DType::F16, s), w.bytes);
  s.all_logits = false;
  EXPECT_EQ(logit_rows(s), 3);  // the decode bucket of the planned batch: the batch itself
  s.max_prefill_tokens = 2;
  EXPECT_EQ(activation_rows(s), 3);  // at least the decode rows
}

TEST(EnginePlan, AttentionBackendIsParsedAndChecked) {
  EXPECT_EQ(parse_attention_backend("--attention", "simple"), AttentionBackend::Simple);
  EXPECT_EQ(parse_attention_backend("--attention", "flash"), AttentionBackend::Flash);
  EXPECT_STREQ(attention_backend_name(AttentionBackend::Flash), "flash");
  EXPECT_STREQ(attention_backend_name(AttentionBackend::Simple), "simple");
  const std::string m = usage_message([] { parse_attention_backend("--attention", "fast"); });
  EXPECT_TRUE(has(m, "--attention") && has(m, "fast") && has(m, "simple, flash")) << m;
  EXPECT_EQ(RunShape{}.attention, AttentionBackend::Flash);  // the default: measured faster (e2e.csv)
  EXPECT_EQ(choose_attention_backend("--attention", "auto", 128), AttentionBackend::Flash);
  EXPECT_EQ(choose_attention_backend("--attention", "auto", 96), AttentionBackend::Simple);
  EXPECT_EQ(choose_attention_backend("--attention", "simple", 128), AttentionBackend::Simple);
  EXPECT_EQ(choose_attention_backend("--attention", "flash", 96), AttentionBackend::Flash);  // refused by the plan
  const std::string bad = usage_message([] { choose_attention_backend("--attention", "fastest", 64); });
  EXPECT_TRUE(has(bad, "--attention") && has(bad, "fastest") && has(bad, "auto, simple, flash")) << bad;
  ModelConfig c = preset_config("tiny");  // head_dim 16: held by the flash kernels
  RunShape s;
  s.batch = 2;
  s.context = 64;
  s.max_prefill_tokens = 8;
  s.attention = AttentionBackend::Flash;
  EXPECT_EQ(usage_message([&] { check_request(c, s); }), "");
  c.head_dim = 96;  // held by the simple kernel only
  const std::string hd = usage_message([&] { check_request(c, s); });
  EXPECT_TRUE(has(hd, "head_dim 96") && has(hd, "--attention")) << hd;
  s.attention = AttentionBackend::Simple;
  EXPECT_EQ(usage_message([&] { check_request(c, s); }), "");
}

TEST(EnginePlan, FlashDecodeWorkspaceIsPlanned) {
  const ModelConfig c = preset_config("qwen3-0.6b");
  RunShape s;
  s.batch = 4;
  s.context = 4096;
  s.max_prefill_tokens = 512;
  s.decode_splits = 8;
  s.decode_workspace_bytes = 4ull * 16 * 8 * (128 + 1) * 4;  // (B, nh, splits, hd + 1) fp32
  s.step_workspace_bytes = 4096 + 4ull * 16 * 16 * (128 + 1) * 4;  // barrier flags + (4, nh, 16, hd + 1) fp32
  s.attention = AttentionBackend::Simple;
  const WorkspaceLayout simple = plan_workspace(c, DType::BF16, s);
  EXPECT_EQ(simple.attn, simple.gemm);  // the simple backend plans no split workspace
  EXPECT_EQ(simple.step, simple.gemm);  // nor the whole-step kernel's
  s.attention = AttentionBackend::Flash;
  const WorkspaceLayout flash = plan_workspace(c, DType::BF16, s);
  EXPECT_EQ(flash.attn % 256, 0u);
  EXPECT_GT(flash.attn, flash.cos_sin);
  EXPECT_GE(flash.gemm - flash.attn, s.decode_workspace_bytes);
  EXPECT_GE(flash.step - flash.attn, s.decode_workspace_bytes);
  EXPECT_LT(flash.step - flash.attn, s.decode_workspace_bytes + 256);
  EXPECT_EQ(flash.step % 256, 0u);
  EXPECT_GE(flash.gemm - flash.step, s.step_workspace_bytes);
  EXPECT_LT(flash.gemm - flash.step, s.step_workspace_bytes + 256);
  EXPECT_EQ(flash.bytes - simple.bytes, flash.gemm - simple.gemm);
  EXPECT_EQ(plan_memory(c, DType::BF16, s).workspace, flash.bytes);
}

TEST(EnginePlan, BatchBuckets) {
  EXPECT_EQ(batch_buckets(1), std::vector<int>({1}));
  EXPECT_EQ(batch_buckets(6), std::vector<int>({1, 2, 4, 6}));
  EXPECT_EQ(batch_buckets(8), std::vector<int>({1, 2, 4, 8}));
  EXPECT_EQ(bucket_for(1, 6), 1);
  EXPECT_EQ(bucket_for(3, 6), 4);
  EXPECT_EQ(bucket_for(5, 6), 6);
  EXPECT_EQ(bucket_for(33, 64), 64);
  EXPECT_TRUE(has(usage_message([] { bucket_for(7, 6); }), "6"));
  EXPECT_FALSE(usage_message([] { bucket_for(0, 6); }).empty());
}

TEST(EnginePlan, SamplerParametersAreChecked) {
  SamplerConfig ok;
  ok.temperature = 0.7f;
  ok.top_k = 50;
  ok.top_p = 0.9f;
  EXPECT_EQ(usage_message([&] { validate_sampler(ok, 256); }), "");
  auto bad = [](SamplerConfig s, const char* flag) {
    const std::string m = usage_message([&] { validate_sampler(s, 256); });
    EXPECT_TRUE(has(m, flag)) << flag << ": " << m;
  };
  SamplerConfig s = ok;
  s.temperature = -1.0f;
  bad(s, "--temperature");
  s.temperature = std::numeric_limits<float>::quiet_NaN();
  bad(s, "--temperature");
  s = ok;
  s.top_k = 257;
  bad(s, "--top-k");
  s.top_k = -1;
  bad(s, "--top-k");
  s = ok;
  s.top_p = 0.0f;
  bad(s, "--top-p");
  s.top_p = 1.5f;
  bad(s, "--top-p");
}

TEST(EnginePlan, RopeTableMatchesTheReference) {
  for (const char* name : {"tiny", "llama-3.1-8b", "qwen3-0.6b"}) {  // llama-3.1-8b: llama3 scaling
    const ModelConfig c = preset_config(name);
    const int64_t P = 3000;
    const std::vector<float> t = rope_table(c, P);
    const std::vector<double> r = ref::rope_cos_sin(c, P);
    ASSERT_EQ(t.size(), r.size()) << name;
    double worst = 0;
    for (size_t i = 0; i < t.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(t[i]) - r[i]));
    EXPECT_LT(worst, 1e-7) << name;  // fp32 rounding of the same double values
  }
}

// The CLI refuses bad sampler flags with exit 2 before touching any device.
int run_cli(const std::string& args, std::string& out) {
  const std::string cmd = std::string(MINFER_CLI_PATH) + " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return -1;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), f)) out += buf.data();
  const int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(EnginePlan, CliRefusesBadSamplerFlags) {
  std::string out;
  EXPECT_EQ(run_cli("generate --model preset:tiny --prompt-tokens 1,2 --backend cuda --top-p 0", out), 2);
  EXPECT_TRUE(has(out, "--top-p")) << out;
  out.clear();
  EXPECT_EQ(run_cli("generate --model preset:tiny --prompt-tokens 1,2 --backend cuda --temperature -2", out), 2);
  EXPECT_TRUE(has(out, "--temperature")) << out;
  out.clear();
  EXPECT_EQ(run_cli("generate --model preset:tiny --prompt-tokens 1,2 --temperature 0.5", out), 2);
  EXPECT_TRUE(has(out, "greedy only")) << out;
  out.clear();
  EXPECT_EQ(run_cli("generate --model preset:tiny-mixtral --prompt-tokens 1,2 --backend cuda", out), 2);
  EXPECT_TRUE(has(out, "cuda engine") || has(out, "no CUDA device")) << out;
}

TEST(EnginePlan, CliRefusesBadAttentionBackend) {
  std::string out;
  EXPECT_EQ(run_cli("generate --model preset:tiny --prompt-tokens 1,2 --backend cuda --attention fast", out), 2);
  EXPECT_TRUE(has(out, "--attention") && has(out, "fast")) << out;
  out.clear();
  EXPECT_EQ(run_cli("generate --model preset:tiny --prompt-tokens 1,2 --attention flash", out), 2);
  EXPECT_TRUE(has(out, "--attention") && has(out, "--backend cuda")) << out;
  out.clear();
  EXPECT_EQ(run_cli("generate --help", out), 0);
  EXPECT_TRUE(has(out, "--attention")) << out;
}

}  // namespace
}  // namespace minfer
