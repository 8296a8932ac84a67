// kernels/decode_attention.h: split-KV (flash-decoding) attention for one new query token per
// sequence, over a contiguous or a paged KV cache. One block per (split, KV head, sequence) holds
// every query head that shares the KV head (up to 16 per block), so each KV byte is read once; online
// softmax; a combine pass merges the splits by their log-sum-exp (or, in the cluster form, the split
// blocks of one head group merge them through distributed shared memory: no combine launch). Versions: v2 for fp16/bf16 (the
// group's heads as the rows of tensor-core MMAs, a per-warp cp.async pipeline of 16-key tiles, two
// stages or three with MINFER_DECODE_STAGES=3, 16-byte copies with a 128-byte L2 prefetch hint, or
// bulk copies with MINFER_DECODE_COPY=bulk, or tensor-map boxes with =tma (sm_90+; =auto: those boxes where they run, in 2 or 3 stages by
// a rule of the grid's size); pages must hold a multiple of 16 tokens, others take
// v1); MINFER_DECODE_ORDER=heads orders the blocks KV head fastest (default: split fastest);
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
#include <string>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"
#include "kernels/kv_cache.h"

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
  // Variants of the same arithmetic (outputs are bitwise the same), for A/B timing:
  int stages = 0;       // v2's copy stages per warp at head_dim 64 and 128: 2, 3, or 4 (the TMA form only); 0: MINFER_DECODE_STAGES, else 2
                        // (MINFER_DECODE_COPY=auto, tma -1: the TMA form's rule where it runs)
  int heads_fast = -1;  // block order: 1 KV heads fastest, 0 splits fastest; -1: MINFER_DECODE_ORDER, else 0
  // K/V copies (v2 at head_dim 64 and 128): 1 bulk copies (cp.async.bulk,
  // one a cache row, on a barrier a stage), 0 cp.async; -1: MINFER_DECODE_COPY=bulk, else cp.async.
  int bulk = -1;
  // K/V copies (v2 at head_dim 64 and 128, sm_90+): 1 TMA copies (each warp's 16-key run as head_dim / 64
  // tensor-map boxes each of K and V, issued by one lane, on a barrier a stage; unpadded stages with the
  // 128-byte swizzle; the same bits), 0 not; -1: MINFER_DECODE_COPY=tma or auto, else not. Not with bulk; the
  // fused prologue and the cluster form, where they run, keep cp.async (a TMA request leaves them on).
  // Where the device or the maps do not allow it, cp.async (decode_attention_tma_applies says which).
  int tma = -1;
  // L2 prefetch-size hint of the cp.async K/V copies: 128 or 256 bytes, 0 none; -1:
  // MINFER_DECODE_L2_PREFETCH (0, 128 or 256), else 128. The same bits.
  int l2_prefetch = -1;
  // v2 leaves O alone on steps where no row of a warp moved its running maximum (the factor is exactly
  // 1: the same bits; with two cp.async stages, the default's form): 1 on, 0 off; -1:
  // MINFER_DECODE_RESCALE=skip, else off.
  int skip_unit_rescale = -1;
  // v2's cp.async copies of whole 16-key runs without the zero-fill source-size operand (only a run
  // crossing the sequence's end zero-fills; the same bits): 1 on, 0 off; -1: MINFER_DECODE_ZFILL=edge,
  // else off.
  int zfill_edge = -1;
  // Fused prologue (the engine's decode steps of at most 4 rows of models at most 2048 wide, or
  // MINFER_FUSED_ROPE_MAX_ROWS=N; engine/model/model.cpp has the timings): with rope.qkv set, the split
  // kernel first does qkv_rope_cache's work for its row (kernels/kv_cache.h, the same arithmetic and
  // bits): the QK-norm and RoPE of its query heads, taken from rope.qkv instead of q (q may be null),
  // and the blocks whose keys hold the row's position (and the last split's first head group, always)
  // write its K and V into the cache before they read it; then rope's launch is not needed. Holds
  // where decode_attention_rope_fits says so: fp16 / bf16 through v2's default form (cp.async copies,
  // two stages or three, no rescale skip), a contiguous cache that is rope's (k_cache, v_cache, capacity = max_len), one token per
  // row (rope.num_tokens = batch), the same heads and head_dim. Each live row's slot must be its own
  // row b (token_slot[b] = b, or < 0: padding, q zero and nothing written), so that no block reads a
  // cache row another block writes; device memory, not checked.
  QkvRopeParams rope{};
  // The fused prologue's loads overlapped with the first key copies (the same bits): each block loads
  // its query heads, K and V rows and its cache length at once after the wait (the norms' weights
  // before it), issues its first copies (all but the new key's row, which it writes into its shared
  // buffers itself), then rotates. 1 on, 0 off (the prologue first, then the copies); -1:
  // MINFER_DECODE_ROPE_OVERLAP=0|1 where set, else decode_attention_rope_overlap_rule.
  int rope_overlap = -1;
  // Removed after H100 timing (their figures in README and reports/logs/h100/INDEX.md): short_last (the
  // split ranges' longer shares first; e2e within the spread), spare_stage (warp 0's spare stage buffer;
  // speed 0.999), compact_smem (the rope rows and cluster receive area sized for the launch; 0.984, 0.991
  // with three stages) and kv_layout 1 (a head-major contiguous cache; 1.001 over 22 decode cases).
  // Their branches had grown the default kernel's key loop from 1090 to 1266 instructions (SASS).
  // The caller's guarantee that the kernel before this launch on the stream lets it launch only after
  // its own wait on the kernel before it (GemvParams::trigger_after_wait), or is no PDL launch: then
  // every kernel that wrote the cache lengths, positions, slots and the cache rows of the keys before
  // each row's new one has completed when this kernel starts. With it (1) and the fused prologue, each
  // block reads those and issues its first key copies before its own wait, overlapping the previous
  // kernel's tail; only the rows of rope.qkv (the previous kernel's output) wait. Implies rope_overlap's
  // form. The same bits. 0 (default) or 1; not read from the environment (the engine sets it:
  // MINFER_DECODE_PREWAIT=1).
  int prewait = 0;
  // Splits merged in the split kernel instead of by the combine launch: the splits of one (sequence,
  // head group) run as one thread-block cluster; each block pushes its (normalised output, log2-sum-exp)
  // into the shared memory of the block that owns each slice of the output, and after one cluster
  // barrier the owners write it (the combine's arithmetic in its order: the same bits). Applies where
  // decode_attention_cluster_applies says so (v2's default form, two stages or three, head_dim 64 or 128, 2..cluster_max
  // splits, splits fastest, sm_90+); elsewhere the combine launch runs. 1 on, 0 off; -1:
  // MINFER_DECODE_CLUSTER=1, else off.
  int cluster = -1;
  // The most splits a cluster takes: 8 (a portable cluster) or 16 (a non-portable one, which H100 and
  // H200 allow); 0: decode_attention_cluster_max() (MINFER_DECODE_CLUSTER_MAX).
  int cluster_max = 0;
  // Phase trace for profiling (v2 only): null, or decode_attention_trace_start()'s device buffer. Each
  // block appends one record of its globaltimer at eight points (decode_attention_trace_csv names them).
  unsigned long long* trace = nullptr;
};

// Whether the split kernel of p copies K and V by TMA (DecodeAttentionParams::tma, or MINFER_DECODE_COPY=tma
// with p.tma < 0): asked for, fp16 / bf16 at head_dim 64 or 128 through v2 (pages of a multiple of 16
// tokens), no fused prologue, not the cluster form (judged at p.num_splits; with 0, the caller checks
// decode_attention_cluster_applies at its split count), compute capability 9.0 or newer, both maps encode.
bool decode_attention_tma_applies(const DecodeAttentionParams& p);

// Whether the split kernel merges `splits` splits of p in clusters (see DecodeAttentionParams::cluster;
// p.cluster < 0 reads MINFER_DECODE_CLUSTER). Needs a device of compute capability 9.0 or newer.
bool decode_attention_cluster_applies(const DecodeAttentionParams& p, int splits);

// MINFER_DECODE_CLUSTER, read once: -1 unset, 0 off, 1 on (another value: a warning, then off).
int decode_attention_cluster_mode();

// The most splits a cluster takes by default, read once: 16 (a non-portable cluster size) on a device of
// compute capability 9.0 or newer with at least 16 SMs (H100, H200), else 8 (a portable cluster);
// MINFER_DECODE_CLUSTER_MAX=8|16 sets it (another value: a warning, then 8). With 16, qwen3-0.6b b1 keeps
// the chained rule's 16 splits from prompt 512 on and loses the combine launch: H100, e2e bf16 ms/step,
// 8 / 16, p512 0.882 / 0.841, p2048 1.025 / 0.956, p8192 1.430 / 1.260 (reports/logs/h100/ab/ab_e2e_cmax.csv).
int decode_attention_cluster_max();

// Whether the fused prologue's loads overlap the first copies by default (rope_overlap -1, the
// environment unset): where no split of a max_kv_len cache holds more than one step of the block's four
// warps (64 keys), so that the prologue, not the key stream, is the block's path. H100, e2e bf16 b1
// ms/step, two interleaved rounds, off / on: qwen3-0.6b p128 (3 splits of at most 64 keys) 0.790 / 0.775,
// p2048 (16 of 144) 0.942 / 0.948, p8192 1.315 / 1.337; qwen2.5-0.5b p128 0.736 / 0.716
// (reports/logs/h100/ab/ab_e2e_stages3.csv).
bool decode_attention_rope_overlap_rule(int max_kv_len, int splits);

// The split count for the cluster form (the engine's decode step with the cluster switch on): keys of a
// split at least 64 (MINFER_DECODE_CLUSTER_MIN_KEYS=N: N), at most num_sms / work blocks a KV head group
// and max_splits (8 or 16; 0: decode_attention_cluster_max()); 1 where the unsplit blocks already fill
// num_sms.
int decode_attention_splits_cluster(int batch, int heads, int kv_heads, int max_kv_len, int num_sms,
                                    int max_splits = 0);

// The phase trace (DecodeAttentionParams::trace): start allocates room for `records` block records on
// the current device (zeroed; again on each call); buffer is the device pointer (null before start);
// csv copies the records back (in the order blocks finished) as CSV: block (x, y, z), SM, and the
// globaltimer ns at entry, after pdl_wait, after the fused prologue, when the first key step landed in
// warp 0, after the key loop, after the block's merge, at the end, and after the cluster barrier (the
// cluster form; 0 otherwise), the last column so that older traces keep their columns; stop frees it.
unsigned long long* decode_attention_trace_start(int records);
unsigned long long* decode_attention_trace_buffer();
std::string decode_attention_trace_csv();
void decode_attention_trace_stop();

// The copy stages a warp of the split pass runs with for p (num_splits set): p.stages, else the TMA
// form's rule where MINFER_DECODE_COPY=auto puts p in that form (3 where the unsplit blocks overflow the
// 2-stage form's resident slots, else 2), else MINFER_DECODE_STAGES, else 2.
int decode_attention_stages(const DecodeAttentionParams& p);

// Whether decode_attention_forward accepts p's fused prologue (p.rope.qkv set): see rope above. Reads
// the environment's stage and copy switches as the forward does.
bool decode_attention_rope_fits(const DecodeAttentionParams& p);

// Splits for a work size (work = batch x KV heads x head groups, the blocks of one split). The default
// rule (sm): about one block per SM, floor(num_sms / work) splits while work <= num_sms; one split
// while the unsplit blocks fit the resident slots (resident_blocks, from
// decode_attention_resident_blocks; 0: unknown); past that, decode_attention_splits_fill's count.
// Always at least 128 keys a split (MINFER_DECODE_MIN_KEYS=N: N), at most 64 splits, at least 1.
// Measured on an H100 (bench_decode_splits, every count 1..64 for the 76 bf16 bench cases; reports/
// logs/h100/decode_splits.csv): within 4% of the best count in every case, 1.067x the earlier rule
// (geomean); one block per SM streams the KV cache as fast as three, and every extra split costs.
// MINFER_DECODE_SPLITS=waves: the earlier rule, blocks for about two waves of num_sms
// (MINFER_DECODE_WAVES=N: N waves); =fill: decode_attention_splits_fill whenever resident_blocks > 0.
int decode_attention_splits(int batch, int heads, int kv_heads, int max_kv_len, int num_sms, int resident_blocks = 0);

// Blocks of the split pass with one split: batch x KV heads x head groups (of up to 16 query heads).
int64_t decode_attention_unsplit_blocks(int batch, int heads, int kv_heads);

// The count for launches chained in a CUDA graph under programmatic dependent launch (the engine's
// decode step), where the combine launch overlaps its neighbours and a split costs less than the
// kernel's isolated timing says: decode_attention_splits, except that where the default rule leaves
// about one block per SM unsplit (unsplit blocks in (num_sms / 2, num_sms]) it takes the waves rule's
// count. H100 e2e, qwen3-0.6b batch 16 (128 blocks unsplit): 2.76 vs 3.33 ms/step at prompt 2048,
// 1.69 vs 1.81 at 512; other shapes within 1-3% (reports/logs/h100/ab/ab_e2e_decode_split_rule.csv).
int decode_attention_splits_chained(int batch, int heads, int kv_heads, int max_kv_len, int num_sms,
                                    int resident_blocks = 0);

// The waves rule: blocks for about `waves` waves of num_sms (at least 128 keys a split, 1..64).
int decode_attention_splits_waves(int batch, int heads, int kv_heads, int max_kv_len, int num_sms, int waves = 2);

// The fill rule: the split count (1..64, at least 128 keys a split) that minimises a model of the
// split pass's time in which every block streams at the same rate and at most resident_blocks run at
// once: ceil(blocks / resident_blocks) rounds of (keys per split + a block's fixed cost of 128 keys),
// plus 64 keys for the combine launch when splitting. It fills the resident slots evenly instead of
// leaving a partial last wave (batch 32 x 8192 keys x 8 KV heads on 396 slots: 3 splits, 768
// blocks, where two waves of 132 SMs gave 2 splits, 512 blocks: 1.3 rounds).
int decode_attention_splits_fill(int batch, int heads, int kv_heads, int max_kv_len, int resident_blocks);

// Blocks of the split kernel that decode_attention_forward would launch for (dtype, head_dim,
// page_size; 0: contiguous; stages as in DecodeAttentionParams) that fit on the device at once
// (occupancy x SMs; 0 without a device). work: the unsplit blocks (decode_attention_unsplit_blocks),
// which the TMA form's stage rule (MINFER_DECODE_COPY=auto) reads; 0: not known (2 stages).
int decode_attention_resident_blocks(DType dtype, int head_dim, int page_size, int stages = 0, int64_t work = 0);

// Workspace the combine pass needs (0 when num_splits is 1): partial outputs and log-sum-exps.
size_t decode_attention_workspace_bytes(int batch, int heads, int head_dim, int num_splits);

// Checks the params (naming the field at fault), then launches the split pass and the combine pass.
Status decode_attention_forward(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace minfer
