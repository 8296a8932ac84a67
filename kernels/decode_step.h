// kernels/decode_step.h: one whole decode step of a dense decoder (llama, qwen2, qwen3) in a single
// persistent kernel, for a few rows (R <= 4): embedding, every layer, the final norm and the LM head,
// leaving the logits for the sampler. Opt-in in the engine (MINFER_STEP=1). Versions: v3 (this file:
// a flag per block as the grid barrier, weight pieces issued across the warps' rings, attention keys
// loaded before the RoPE work; 288 threads under __launch_bounds__(288, 1): 168 registers, ~100-360
// bytes of spills). Measured on an H100 (reports/logs/h100/INDEX.md): correct (the step tests, model
// validation), slower than the per-op step: qwen3-0.6b b1 1.58 vs 1.06 ms/step, llama-3.1-8b 6.66 vs
// 5.66 (its stage trace: every stage of a qwen3 layer is 8-11 us where its weights stream in 1-4; grid
// barriers 2-3.5 us each). Earlier, measured on an H200 (both
// correct, both slower than the per-op step; reports/logs/h200/INDEX.md): v1 (one block barrier per
// weight chunk: qwen3-0.6b batch 1 1.25 ms/step vs 0.93), v2 (per-warp rings: 1.13 ms; llama-3.1-8b
// 6.76 vs 4.66 ms, its down projection starved by one warp's 3 slots; grid barriers ~1.7 us each).
//
// Why: at batch 1 a step is ~10 small launches per layer; each costs a few microseconds of ramp and
// tail while the weights stream for only 1-4 us (reports/logs/h100/profile). Here the weights never
// wait for a launch: one producer warp per block streams the block's share of every projection of
// the step, in the order they are used, through a ring of shared-memory slots (cp.async.bulk on an
// mbarrier), running ahead across the grid barriers that order the activations. Consumer warps do
// the small ops redundantly per block (RMSNorm of R x H, the split-KV combine) or on their share.
//
// Grid: one block per SM (cooperative launch: every block resident), 8 consumer warps + 1 producer.
// Stages (a grid barrier after each; all on the consumer warps):
//   embed : res = embed[ids]                                               (shared out over blocks)
//   per layer l:
//   qkv   : x = rmsnorm(res, attn_norm) [every block]; qkv = x Wqkv^T + b  [rows shared out]
//   attn  : items (row, KV head, split): q = RoPE(QK-norm(q)) of the group's heads, and in the item
//           holding the new position k = RoPE(QK-norm(k)), v, written to the cache; online softmax
//           over the split's keys -> att (one split) or (normalised o, log2-sum-exp) partials
//   o     : x = att or the combine of the partials [every block]; res = res + x Wo^T
//   gu    : x = rmsnorm(res, ffn_norm); act = silu(g) * u with [g | u] = x Wgu^T (a block owns
//           gate row n and up row n together)
//   down  : x = act; res = res + x Wdown^T
//   head  : x = rmsnorm(res, final_norm); logits = x Wlm^T                 (no barrier after)
// Rounding points are the unfused step's (engine/model/model.h): every stored activation is rounded
// to the storage type where the reference rounds it; the fp32 accumulation order differs.
// Attention splits S = clamp(ceil(max len / 32), 1, min(max_splits, blocks / (R * nkv))), the same in
// every block (computed from cache_lens). Rows with token_slot < 0 (padding, finished) attend to
// nothing (att = 0) and write no cache; their logits are computed and ignored.
// Dimension legend: R rows, H hidden, nh/nkv heads, hd head_dim, Q = nh*hd, KV = nkv*hd,
// I intermediate, V vocab, L layers, C cache capacity per slot, P RoPE table positions, S splits.
// Reference: the decode step of reference/model.cpp (ref::Model::forward with one token per row).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

// One layer's weights (device pointers, storage dtype), as laid out by engine/core/plan.h.
struct DecodeStepLayer {
  const void* attn_norm = nullptr;  // (H)
  const void* wqkv = nullptr;       // (Q + 2 KV, H): wq | wk | wv rows
  const void* bqkv = nullptr;       // (Q + 2 KV) or null
  const void* q_norm = nullptr;     // (hd) or null (QK-norm, qwen3)
  const void* k_norm = nullptr;     // (hd) or null
  const void* wo = nullptr;         // (H, Q)
  const void* ffn_norm = nullptr;   // (H)
  const void* wgu = nullptr;        // (2 I, H): gate rows, then up rows
  const void* wdown = nullptr;      // (H, I)
};

constexpr int kDecodeStepMaxRows = 4;     // R
constexpr int kDecodeStepMaxSplits = 16;  // S
constexpr int kDecodeStepMaxGroup = 8;    // nh / nkv

struct DecodeStepParams {
  DType dtype = DType::BF16;
  int rows = 0;                          // R
  int hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, vocab = 0, layers = 0;
  float eps = 1e-6f;                     // RMSNorm and QK-norm eps
  const DecodeStepLayer* layers_dev = nullptr;  // (L) in device memory
  const void* embed = nullptr;           // (V, H)
  const void* final_norm = nullptr;      // (H)
  const void* lm_head = nullptr;         // (V, H)
  const int32_t* ids = nullptr;          // (R) input token of each row
  const int32_t* positions = nullptr;    // (R) its position (its row in the cache)
  const int32_t* token_slot = nullptr;   // (R) cache slot, < 0: padding / finished
  const int32_t* cache_lens = nullptr;   // (R) keys after the append (position + 1 for live rows)
  const float* cos_sin = nullptr;        // (P, hd/2, 2) fp32
  int64_t max_positions = 0;             // P
  void* k_cache = nullptr;               // (L, slots, C, nkv, hd)
  void* v_cache = nullptr;               // (L, slots, C, nkv, hd)
  int64_t layer_stride = 0;              // elements from one layer's cache to the next: slots * C * nkv * hd
  int64_t capacity = 0;                  // C
  void* res = nullptr;                   // (R, H) residual stream
  void* qkv = nullptr;                   // (R, Q + 2 KV)
  void* att = nullptr;                   // (R, Q)
  void* act = nullptr;                   // (R, I)
  void* logits = nullptr;                // (R, V)
  void* workspace = nullptr;             // decode_step_workspace_bytes(R, nh, hd, max_splits), zeroed once
  size_t workspace_bytes = 0;
  int max_splits = kDecodeStepMaxSplits; // S bound the workspace was sized for
  // (points, blocks, 2) or null: each block's globaltimer ns at arrival and departure of each trace
  // point (0 the start; 1 the barrier after embed; 2 + 5 l + {0..4} those after layer l's qkv, attn,
  // o, gu and down stages; the last, the end of the head stage). For profiling; costs a few stores.
  unsigned long long* trace = nullptr;
};

// Workspace: the grid-barrier flags (4 KiB, one word per block; zero before the first launch, and
// all equal between launches) and the split partials (R, nh, S, hd + 1) fp32.
size_t decode_step_workspace_bytes(int rows, int heads, int head_dim, int max_splits);

// Why p cannot run here ("" when it can): compute capability 9.0 or newer, R <= 4, hd in
// {16, 32, 64, 128}, nh / nkv <= 8, sizes multiples of 16 bytes, R x max(H, Q, I) activations that fit
// the block's staging buffer, every pointer set and 16-byte aligned.
std::string decode_step_unsupported(const DecodeStepParams& p);
bool decode_step_supported(const DecodeStepParams& p);

// Blocks the kernel launches (one per SM) and trace points a step records (5 L + 3).
int decode_step_blocks();
int decode_step_trace_points(int layers);

// Checks (naming the field), then launches on `stream` (cooperative; capturable in a CUDA graph).
// MINFER_STEP_COOP=0 launches without the cooperative attribute (for A/B of graph capture).
Status decode_step_forward(const DecodeStepParams& p, cudaStream_t stream);

}  // namespace minfer
