// tests/cpu/test_e2e_metrics.cpp: the work counts of bench_all --sweep e2e (bench/e2e_metrics.h):
// decode bytes per step (weights without the embedding table, plus K and V), prefill FLOPs (matmuls,
// LM head on the last rows, causal attention), against hand counts of real presets; and the CSV
// columns (DESIGN.md section 6 plus the end-to-end ones).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "bench/e2e_metrics.h"
#include "engine/core/presets.h"

namespace {

using minfer::DType;
using minfer::preset_config;
namespace b = minfer::bench;

TEST(E2eMetrics, DecodeWeightBytesMatchPublishedParameterCounts) {
  // Llama-3.1-8B: 8.03e9 parameters, of which the embedding table (not read by a decode step) is
  // 128256 x 4096 = 0.525e9.
  const double llama = b::decode_weight_bytes(preset_config("llama-3.1-8b"), DType::BF16);
  EXPECT_NEAR(llama / 2.0, 8.03e9 - 0.525e9, 0.01 * 7.5e9);
  // Qwen3-0.6B: 0.596e9 parameters with tied embeddings (the table is read once, as the LM head).
  const double qwen3 = b::decode_weight_bytes(preset_config("qwen3-0.6b"), DType::BF16);
  EXPECT_NEAR(qwen3 / 2.0, 0.596e9, 0.01 * 0.596e9);
  EXPECT_DOUBLE_EQ(b::decode_weight_bytes(preset_config("qwen3-0.6b"), DType::F32), 2 * qwen3);
}

TEST(E2eMetrics, KvBytesPerStep) {
  const auto c = preset_config("llama-3.1-8b");  // 32 layers, 8 KV heads of 128
  EXPECT_DOUBLE_EQ(b::decode_kv_bytes(c, DType::BF16, 4, 1000.0), 2.0 * 32 * 4 * 1000 * 1024 * 2);
  EXPECT_DOUBLE_EQ(b::mean_decode_context(128, 128), 192.0);
}

TEST(E2eMetrics, PrefillFlopsByHand) {
  const auto c = preset_config("llama-3.1-8b");
  const double layer = (4096.0 + 2 * 1024) * 4096 + 4096.0 * 4096 + 3.0 * 14336 * 4096;
  EXPECT_DOUBLE_EQ(b::layer_matmul_params(c), layer);
  const double linear = 2.0 * 128 * 32 * layer + 2.0 * 128256 * 4096;
  const double attn = 4.0 * 32 * 32 * 128 * (128.0 * 129 / 2);
  EXPECT_NEAR(b::prefill_flops(c, 1, 128), linear + attn, 1e-9 * (linear + attn));
  // Attention grows with the square of the prompt, the matmuls linearly.
  const double a1 = b::prefill_flops(c, 1, 4096) - 2 * b::prefill_flops(c, 1, 2048);
  EXPECT_GT(a1, 0);
  // Batch B of the same prompt: B times the work.
  EXPECT_NEAR(b::prefill_flops(c, 4, 512), 4 * b::prefill_flops(c, 1, 512), 1e-9 * b::prefill_flops(c, 4, 512));
}

TEST(E2eMetrics, ColumnsHoldSection6AndTheEndToEndOnes) {
  const auto cols = b::e2e_columns();
  for (const char* k : {"sweep", "variant", "dtype", "median_us", "p10_us", "p90_us", "tflops", "gbps", "sol_pct",
                        "peak_mem_mib", "rel_err", "gpu", "cuda", "commit", "repro", "model", "batch", "prompt_len",
                        "phase", "tok_s", "ms_per_step", "status"})
    EXPECT_NE(std::find(cols.begin(), cols.end(), k), cols.end()) << k;
  std::vector<std::string> sorted = cols;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());  // no duplicates
}

}  // namespace
