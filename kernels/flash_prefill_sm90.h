// kernels/flash_prefill_sm90.h: prefill attention v3, the Hopper (sm_90a) version of
// kernels/flash_prefill's tensor-core path, on warpgroup MMAs (kernels/flash_prefill_sm90.cu has the
// details). Called by flash_prefill_forward (the default where it applies); not a public entry point.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/status.h"
#include "kernels/flash_prefill.h"

namespace minfer {

// fp16 or bf16, head_dim 64 or 128, at most 65535 query tiles of 128 rows, and the current device
// has compute capability 9.0 (the build's sm_90a code runs there).
bool flash_prefill_sm90_applies(const FlashPrefillParams& p);

// Which form of v3 runs (all false: v3's 128-row blocks). The fields:
struct Sm90PrefillForm {
  bool persistent = false;    // MINFER_PREFILL=v3p
  bool small = false;         // v3s
  bool ws = false;            // v4
  bool tma = false;           // with ws: v4t
  bool v3_otherwise = false;  // with tma: v3 where the tensor maps cannot be made (the default's choice)
  bool copy_tma = false;      // v3 / v3s (not ws), bf16: whole K/V tiles by TMA where the maps can be made
                              // (MINFER_PREFILL_COPY=tma sets it for every such launch)
};

// Launches v3 on `stream` (p already checked by flash_prefill_forward; scale_log2 = log2(e) /
// sqrt(head_dim)) in form f. Refuses params flash_prefill_sm90_applies() rejects. persistent (head_dim 128; 64
// ignores it): the persistent variant (MINFER_PREFILL=v3p), blocks that walk several query tiles with
// one copy stream, so that the next tile's Q and first keys are copied under this one's last MMAs.
// small: the small variant (MINFER_PREFILL=v3s), blocks of 64 query rows (one warpgroup) with three
// K/V stages, two blocks an SM (head_dim 128), or four stages, three blocks an SM (head_dim 64); the
// same arithmetic per row.
// ws: the warp-specialised variant (MINFER_PREFILL=v4; head_dim 64 and 128): a producer warpgroup
// copies, two consumer warpgroups compute and take turns at the MMAs; the same arithmetic per row.
// tma (with ws; MINFER_PREFILL=v4t): whole K/V tiles copied by TMA (one producer thread) where the key
// tensor's extent is known (k_lens, or total_k), a sequence's last partial tile and Q by cp.async;
// where it is not known, v4's copies, or with v3_otherwise the 128-row v3 (the default's choice).
// (Removed after 89d5485: v4tw, key tiles of 128 rows in v4t, measured 0.768x the default over 26
// bf16 cases on an H100: reports/logs/h100/ab/ab_attention_v4tw.csv.)
// (Removed after 36628fe: v4t3, v4t at head_dim 64 with three consumer warpgroups and 192-row blocks,
// correct but 0.820x the default over 14 bf16 cases on an H100: reports/logs/h100/ab/ab_attention_v4t3.csv.)
Status flash_prefill_sm90_forward(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream,
                                  const Sm90PrefillForm& f = {});

// MINFER_PREFILL_PV=f16 (unset or bf16: off; read once, an unknown value warned of): bf16 P V through
// fp16, in v2 (kernels/flash_prefill.cu) and, where FlashPrefillParams::pv_fp16 is -1, in the sm90
// default blocks and v4t. The one reader of the variable.
bool prefill_pv_f16_env();

#if defined(__CUDACC__)
// First key row and key count of sequence b (cu_seqlens_k, or a per-sequence cache with k_lens):
// shared by the prefill kernels.
__device__ __forceinline__ void prefill_key_range(const FlashPrefillParams& p, int b, int64_t& k0, int& tk) {
  if (p.k_lens) {
    k0 = static_cast<int64_t>(b) * p.k_seq_stride;
    tk = p.k_lens[b];
  } else {
    k0 = p.cu_seqlens_k[b];
    tk = static_cast<int>(p.cu_seqlens_k[b + 1] - k0);
  }
}
#endif

}  // namespace minfer
