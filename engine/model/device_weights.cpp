// engine/model/device_weights.cpp: one device allocation for the weights, filled tensor by tensor
// (see device_weights.h). Names and shapes come from weight_map (engine/core/weights.h).
#include "engine/model/device_weights.h"

#include <cuda_runtime.h>

#include <vector>

#include "engine/core/error.h"
#include "kernels/common/status.h"

namespace minfer {
namespace {

std::string source_name(const TensorSource& src, const WeightSpec& spec) {
  if (src.meta(spec.hf_name)) return spec.hf_name;
  for (const auto& alt : spec.alt_names) {
    if (src.meta(alt)) return alt;
  }
  throw BadInput(src.file_of(spec.hf_name), spec.hf_name, "missing");
}

// Values of one tensor in dtype's bytes (rounded on the host).
std::vector<uint8_t> to_storage(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) store_as(dtype, out.data(), i, v[i]);
  return out;
}

}  // namespace

DeviceWeights::DeviceWeights(const ModelConfig& cfg, const TensorSource& src, DType dtype)
    : layout_(plan_weights(cfg, dtype)) {
  MINFER_CUDA_CHECK(cudaMalloc(&base_, layout_.bytes()));
  try {
    MINFER_CUDA_CHECK(cudaMemset(base_, 0, layout_.bytes()));
    upload(cfg, src);
  } catch (...) {
    cudaFree(base_);
    throw;
  }
}

DeviceWeights::~DeviceWeights() { cudaFree(base_); }

const void* DeviceWeights::at(int64_t offset) const {
  if (offset < 0) return nullptr;
  return static_cast<const uint8_t*>(base_) + static_cast<uint64_t>(offset) * dtype_size(layout_.dtype);
}

void DeviceWeights::upload(const ModelConfig& cfg, const TensorSource& src) {
  for (const WeightSpec& spec : weight_map(cfg)) {
    const std::string name = source_name(src, spec);
    const auto meta = src.meta(name);
    if (meta->shape != spec.shape)
      throw BadInput(src.file_of(name), name, "shape " + shape_str(meta->shape) + " expected " + shape_str(spec.shape));
    const SlotPlace place = place_of(cfg, layout_, spec.slot);
    const std::vector<float> v = src.read_f32(name);
    if (static_cast<int64_t>(v.size()) != place.count)
      throw BadInput(src.file_of(name), name,
                     "holds " + std::to_string(v.size()) + " values, expected " + std::to_string(place.count));
    const std::vector<uint8_t> bytes = to_storage(v, layout_.dtype);
    MINFER_CUDA_CHECK(cudaMemcpy(const_cast<void*>(at(place.offset)), bytes.data(), bytes.size(),
                                 cudaMemcpyHostToDevice));
  }
}

}  // namespace minfer
