// engine/model/run_state.cpp: one workspace allocation carved into the run's buffers, one KV cache
// allocation, pinned host staging (see run_state.h).
#include "engine/model/run_state.h"

#include <cuda_runtime.h>

#include <vector>

#include "engine/core/error.h"
#include "kernels/common/status.h"

namespace minfer {

RunState::RunState(const ModelConfig& c, DType dtype, const RunShape& s, uint64_t weight_bytes) {
  MemoryPlan plan = plan_memory(c, dtype, s);
  size_t free_b = 0, total_b = 0;
  MINFER_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  plan.weights = 0;  // already allocated: the free memory no longer includes it
  check_fits(plan, s, free_b);
  rows_ = activation_rows(s);
  logit_rows_ = minfer::logit_rows(s);
  decode_rows_ = bucket_for(s.batch, s.batch);
  const WorkspaceLayout w = plan_workspace(c, dtype, s);
  const uint64_t T = static_cast<uint64_t>(rows_);
  mem_.weights = weight_bytes;
  mem_.workspace = w.bytes;
  mem_.kv_cache = kv_cache_bytes(c, dtype, s.batch, s.context);
  MINFER_CUDA_CHECK(cudaMalloc(&block_, mem_.workspace));
  MINFER_CUDA_CHECK(cudaMalloc(&kv_, mem_.kv_cache));
  MINFER_CUDA_CHECK(cudaMemset(block_, 0, mem_.workspace));
  MINFER_CUDA_CHECK(cudaMemset(kv_, 0, mem_.kv_cache));
  auto at = [this](uint64_t off) { return static_cast<void*>(static_cast<uint8_t*>(block_) + off); };
  res = at(w.res); a = at(w.a); y = at(w.y); qkv = at(w.qkv); q = at(w.q); att = at(w.att);
  gu = at(w.gu); act = at(w.act); logits = at(w.logits);
  ids = static_cast<int32_t*>(at(w.ids)); positions = static_cast<int32_t*>(at(w.positions));
  token_slot = static_cast<int32_t*>(at(w.token_slot)); cu_seqlens = static_cast<int32_t*>(at(w.cu_seqlens));
  cache_lens = static_cast<int32_t*>(at(w.cache_lens)); slot = static_cast<int32_t*>(at(w.slot));
  counters = static_cast<uint64_t*>(at(w.counters)); cos_sin = static_cast<float*>(at(w.cos_sin));
  gemv_counters = static_cast<unsigned*>(at(w.gemv_counters));
  sample_workspace = at(w.sample);
  sample_bytes = sample_workspace_bytes_for(sample_rows(s));
  gemm_workspace = at(w.gemm);
  attn_workspace = w.step > w.attn ? static_cast<float*>(at(w.attn)) : nullptr;
  step_workspace = w.gemm > w.step ? at(w.step) : nullptr;  // (the workspace was zeroed above)
  k_cache = kv_;
  v_cache = static_cast<uint8_t*>(kv_) + mem_.kv_cache / 2;
  MINFER_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_index), (6 * T + 1) * 4));
  MINFER_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_ids), T * 4));
  const std::vector<float> table = rope_table(c, s.context);
  MINFER_CUDA_CHECK(cudaMemcpy(cos_sin, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
}

RunState::~RunState() {
  cudaFreeHost(host_ids);
  cudaFreeHost(host_index);
  cudaFree(kv_);
  cudaFree(block_);
}

}  // namespace minfer
