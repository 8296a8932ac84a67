// kernels/flash_prefill_sm90.h: prefill attention v3, the Hopper (sm_90a) version of
// kernels/flash_prefill's tensor-core path, on warpgroup MMAs (kernels/flash_prefill_sm90.cu has the
// details). Called by flash_prefill_forward (the default where it applies); not a public entry point.
#pragma once
#include <cuda_runtime.h>

#include "kernels/common/status.h"
#include "kernels/flash_prefill.h"

namespace minfer {

// fp16 or bf16, head_dim 64 or 128, at most 65535 query tiles of 128 rows, and the current device
// has compute capability 9.0 (the build's sm_90a code runs there).
bool flash_prefill_sm90_applies(const FlashPrefillParams& p);

// Launches v3 on `stream` (p already checked by flash_prefill_forward; scale_log2 = log2(e) /
// sqrt(head_dim)). Refuses params flash_prefill_sm90_applies() rejects.
Status flash_prefill_sm90_forward(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream);

}  // namespace minfer
