// engine/core/presets.h: named model configs with deterministic random weights, so every command
// runs with nothing downloaded. A preset's tensors carry HF names and are generated one at a time
// from (preset seed, tensor name, element index) by a counter-based RNG: the same on every machine,
// and any tensor can be produced without the others.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/weights.h"

namespace minfer {

std::vector<std::string> preset_names();
// Throws UsageError listing the known names if `name` is not one.
ModelConfig preset_config(const std::string& name);
// Tensor source whose values are rounded to `storage` (so bf16 exports are exact).
std::unique_ptr<TensorSource> preset_source(const std::string& name, DType storage);
// Same with an explicit weight seed (0: the preset's own seed, a hash of its name). Different seeds
// give different values; the same seed gives the same values everywhere.
std::unique_ptr<TensorSource> preset_source(const std::string& name, DType storage, uint64_t seed);

// "preset:NAME" -> preset; anything else -> a checkpoint directory / .safetensors file.
struct LoadedModel {
  ModelConfig config;
  std::unique_ptr<TensorSource> source;
  std::string spec;  // as given
};
LoadedModel open_model(const std::string& spec, DType storage);
// Same; `seed` picks a preset's weight seed (as preset_source) and is ignored for checkpoints.
LoadedModel open_model(const std::string& spec, DType storage, uint64_t seed);

// Write config.json + safetensors (sharded with model.safetensors.index.json past max_shard_bytes)
// that HF transformers loads. Files are written to temporary names and renamed.
void export_checkpoint(const ModelConfig& cfg, const TensorSource& src, const std::string& out_dir,
                       DType dtype, uint64_t max_shard_bytes);

}  // namespace minfer
