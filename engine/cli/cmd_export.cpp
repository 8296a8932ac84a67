// engine/cli/cmd_export.cpp: `minfer export --preset NAME --out DIR`: writes a preset as an HF
// checkpoint (config.json + model.safetensors, or shards + model.safetensors.index.json).
#include <cstdio>

#include "engine/cli/commands.h"
#include "engine/cli/util.h"
#include "engine/core/presets.h"

namespace minfer::cli {

CLI::App* add_export_command(CLI::App& app, ExportOptions& o) {
  CLI::App* c = app.add_subcommand("export", "Write a preset as an HF checkpoint directory that transformers "
                                             "and `minfer --model DIR` load.");
  c->add_option("--preset", o.preset, "Preset name (see `minfer presets`)")->required();
  c->add_option("--out", o.out, "Output directory (created if absent)")->required();
  c->add_option("--dtype", o.dtype, "Stored dtype: bf16, fp16 or fp32 (default: the preset's torch_dtype)");
  c->add_option("--max-shard-size", o.max_shard_size,
                "Largest shard, e.g. 2GB, 500MB, 1GiB; past it the weights are sharded with an index (default 5GB)");
  c->add_option("--weight-seed", o.weight_seed, "Weight seed of the preset (0: the preset's own)");
  return c;
}

int run_export(const ExportOptions& o) {
  ModelConfig cfg = preset_config(o.preset);
  const DType dtype = o.dtype.empty() ? cfg.torch_dtype : dtype_arg("--dtype", o.dtype);
  const uint64_t max_shard = size_arg("--max-shard-size", o.max_shard_size);
  auto gen = preset_source(o.preset, dtype, o.weight_seed);
  ProgressSource src(*gen, "export: writing preset:" + o.preset);
  export_checkpoint(cfg, src, o.out, dtype, max_shard);
  ParamCount p = count_params(cfg);
  std::printf("exported preset:%s (%s parameters, %s) to %s\n", o.preset.c_str(), human_count(p.total).c_str(),
              dtype_name(dtype), o.out.c_str());
  return 0;
}

}  // namespace minfer::cli
