// kernels/decode_attention.h: split-KV (flash-decoding) attention for one new query token per
// sequence, over a contiguous or a paged KV cache. One block per (split, KV head, sequence) holds
// every query head that shares the KV head (up to 16 per block), so each KV byte is read once; online
// softmax; a combine pass merges the splits by their log-sum-exp. Versions: v2 for fp16/bf16 (the
// group's heads as the rows of tensor-core MMAs, per-warp cp.async double buffering of 16-key tiles;
// pages must hold a multiple of 16 tokens, others take v1);
// v1 kept for fp32 (keys in tiles of 32 staged in shared memory as fp32, CUDA-core math).
// Dimension legend: B sequences, nh query heads, nkv KV heads (head h reads KV head h / (nh/nkv)),
// hd head_dim (16, 32, 64 or 128), L contiguous capacity per sequence, P pages in the pool, S page_size
// (>= 16 tokens), MP max pages per sequence, NS splits.
// Sequence b's cache holds cache_lens[b] tokens (its query is the last of them, already appended);
// the query attends to all of them (no mask needed). Token i of b lives at row (b, i) of the
// contiguous cache, or at row i % S of page block_table[b][i / S] of the pool. Scale 1/sqrt(hd);
// output rounded to dtype once. Reference: ref::attention with Tq = 1, Tk = cache_lens[b].
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct DecodeAttentionParams {
  DType dtype = DType::BF16;
  const void* q = nullptr;              // (B, nh, hd)
  const void* k_cache = nullptr;        // contiguous (B, L, nkv, hd); paged: pool (P, S, nkv, hd)
  const void* v_cache = nullptr;        // same layout as k_cache
  void* out = nullptr;                  // (B, nh, hd)
  const int32_t* cache_lens = nullptr;  // (B) tokens in each sequence's cache, device memory, <= max_kv_len
  const int32_t* block_table = nullptr; // (B, MP) page ids, device memory; nullptr: contiguous cache
  int batch = 0;                        // B
  int heads = 0;                        // nh
  int kv_heads = 0;                     // nkv, divides nh
  int head_dim = 0;                     // hd: 16, 32, 64 or 128
  int64_t max_len = 0;                  // L (contiguous only)
  int page_size = 0;                    // S (paged only), >= 16
  int max_pages = 0;                    // MP (paged only)
  int max_kv_len = 0;                   // host-side upper bound of cache_lens (chooses the splits)
  int num_splits = 0;                   // NS; 0: chosen by decode_attention_splits for this device
  float* workspace = nullptr;           // decode_attention_workspace_bytes(B, nh, hd, NS) bytes, device
  size_t workspace_bytes = 0;
};

// Splits for a work size: enough blocks to fill about two waves of num_sms (MINFER_DECODE_WAVES=N: N
// waves, for A/B timing), each split at least 128 keys (MINFER_DECODE_MIN_KEYS=N: N), at most 64
// splits, at least 1.
int decode_attention_splits(int batch, int heads, int kv_heads, int max_kv_len, int num_sms);

// Workspace the combine pass needs (0 when num_splits is 1): partial outputs and log-sum-exps.
size_t decode_attention_workspace_bytes(int batch, int heads, int head_dim, int num_splits);

// Checks the params (naming the field at fault), then launches the split pass and the combine pass.
Status decode_attention_forward(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace minfer
