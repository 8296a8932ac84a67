// engine/model/device_weights.h: every weight of a dense model in one device allocation, in the
// run dtype (fp32, fp16 or bf16), laid out by plan_weights (engine/core/plan.h): fused QKV rows
// (wq | wk | wv) and gate/up rows (w_gate | w_up) so that each is one GEMM.
// Upload is per tensor: read one tensor from the TensorSource as float, round it to the dtype on
// the host, copy it into its slice; the whole model is never held on the host.
#pragma once
#include <cstdint>

#include "engine/core/config.h"
#include "engine/core/plan.h"
#include "engine/core/weights.h"

namespace minfer {

class DeviceWeights {
 public:
  // Throws BadInput (missing / mis-shaped tensor, naming file and tensor) or UsageError (MoE model).
  DeviceWeights(const ModelConfig& cfg, const TensorSource& src, DType dtype);
  ~DeviceWeights();
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;

  const WeightLayout& layout() const { return layout_; }
  DType dtype() const { return layout_.dtype; }
  uint64_t bytes() const { return layout_.bytes(); }
  // Device pointer to the slice at element `offset` (-1: null).
  const void* at(int64_t offset) const;

 private:
  void upload(const ModelConfig& cfg, const TensorSource& src);
  WeightLayout layout_;
  void* base_ = nullptr;  // (total_elems) of dtype
};

}  // namespace minfer
