// kernels/sampling.h: next-token choice on the GPU, one block per row of logits. Versions: v1
// (exact thresholds by bisection over the order-preserving 32-bit keys of the logits; no sort).
// B rows, V vocab.
//   temperature == 0: greedy, argmax with ties to the lowest id.
//   otherwise: p_i ~ exp((l_i - max) / temperature); keep the top_k largest (0 = all; ties at the
//   k-th value are all kept), then the smallest top set whose mass reaches top_p of what is left
//   (1 = all); draw u uniform in [0, kept mass) and take the first id, in id order, whose running
//   sum of kept p passes u. The draw is a pure function of (seed, row, counters[row]); the kernel
//   increments counters[row], so a captured graph replays fresh draws and a run is reproducible for
//   a seed once the counters are reset.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct SampleParams {
  DType dtype = DType::BF16;       // storage dtype of logits
  const void* logits = nullptr;    // (B, V) row stride ld
  int32_t* out_ids = nullptr;      // (B)
  uint64_t* counters = nullptr;    // (B) draws made per row (read and incremented); may be null when greedy
  int rows = 0;                    // B
  int64_t vocab = 0;               // V
  int64_t ld = 0;                  // elements between rows (>= V)
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  // Greedy rows only (temperature 0): the argmax spread over ceil(V / 2048) blocks a row (at most 128),
  // the row's last block reducing their (max, id) pairs, instead of one block a row. 1 on (workspace
  // required), 0 off, -1: on where a workspace is given unless MINFER_SAMPLE_ARGMAX=block. The
  // workspace: sample_workspace_bytes(rows) bytes, zeroed once by the caller (the kernel leaves it
  // zeroed); one launch at a time may use it. H100, e2e bf16 b1 ms/step, two interleaved rounds, one
  // block / many: qwen3-0.6b p128 0.804 / 0.797, p512 0.843 / 0.834, p2048 0.955 / 0.947, p8192 1.290 /
  // 1.279; qwen2.5-0.5b p128 0.745 / 0.740 (reports/logs/h100/ab/ab_e2e_argmax.csv).
  int argmax_blocks = -1;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// Bytes of SampleParams::workspace for `rows` rows (a ticket a row and 128 (max, id) pairs a row).
size_t sample_workspace_bytes(int rows);
// MINFER_SAMPLE_ARGMAX, read once: 1 blocks (unset), 0 block; another value warns and keeps blocks.
int sample_argmax_mode();

Status sample_forward(const SampleParams& p, cudaStream_t stream);

// The uniform draw in [0, 1) the kernel uses, for host tests: 24 bits of a splitmix64 finaliser.
uint64_t sample_mix64(uint64_t z);
double sample_uniform(uint64_t seed, int row, uint64_t counter);

}  // namespace minfer
