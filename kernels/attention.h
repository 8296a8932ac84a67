// kernels/attention.h: simple, correct causal self-attention over a contiguous KV cache, for a
// ragged batch of queries (prefill: many tokens per sequence; decode: one). Versions: v1 (one block
// per (query token, head), keys in chunks of 128 with an online fp32 softmax; any head_dim <= 256).
// B sequences, T query tokens in all, nh/nkv heads (GQA: head h reads KV head h / (nh/nkv)),
// hd head_dim, C cache capacity per sequence slot.
// Sequence b's queries are rows [cu_seqlens[b], cu_seqlens[b+1]) of q; its cache slot is
// slot[b] (< 0: a padding row, whose output is zeros); cache_lens[b] counts its cached tokens
// *including* the new ones, so query i of b sits at position cache_lens[b] - Tq_b + i and sees keys
// 0 ..= that position. Scores scaled by 1/sqrt(hd); output rounded to dtype once.
// Reference: ref::attention (per sequence).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct AttentionParams {
  DType dtype = DType::BF16;
  const void* q = nullptr;             // (T, nh, hd)
  const void* k_cache = nullptr;       // (slots, C, nkv, hd) for this layer
  const void* v_cache = nullptr;       // (slots, C, nkv, hd)
  void* out = nullptr;                 // (T, nh, hd)
  const int32_t* cu_seqlens = nullptr; // (B + 1) query row offsets
  const int32_t* cache_lens = nullptr; // (B) cached tokens after the append
  const int32_t* slot = nullptr;       // (B) cache slot of each sequence, < 0 for padding
  int batch = 0;                       // B
  int64_t num_tokens = 0;              // T (rows of q and out)
  int64_t capacity = 0;                // C
  int heads = 0;                       // nh
  int kv_heads = 0;                    // nkv
  int head_dim = 0;                    // hd, at most 256
};

Status attention_forward(const AttentionParams& p, cudaStream_t stream);

}  // namespace minfer
