// engine/core/rope_freq.h: RoPE inverse frequencies of a config, in double: theta^(-2i/hd) for
// i < hd/2, with HF's llama3 scaling (_compute_llama3_parameters) when the config asks for it.
// One definition shared by the reference (reference/ops.cpp) and the engine's table (plan.cpp).
#pragma once
#include <vector>

#include "engine/core/config.h"

namespace minfer {

std::vector<double> rope_inverse_frequencies(const ModelConfig& cfg);  // (hd/2)

}  // namespace minfer
