// engine/cli/cmd_info.cpp: `minfer info --model SPEC`: the config summary, parameter counts, and a
// full weight load (load_weights) that proves the checkpoint complete and well-formed.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/cli/util.h"
#include "engine/core/presets.h"

namespace minfer::cli {

CLI::App* add_info_command(CLI::App& app, InfoOptions& o) {
  CLI::App* c = app.add_subcommand("info", "Print a model's config summary and parameter count, then load "
                                           "every weight (names, shapes, finite values) to prove it complete.");
  c->add_option("--model", o.model,
                "Checkpoint directory, .safetensors file, .gguf file (dequantized on load), or preset:NAME")
      ->required();
  c->add_option("--dtype", o.dtype, "Storage dtype for the load: bf16, fp16 or fp32 (default: the config's)");
  c->add_option("--weight-seed", o.weight_seed, "Weight seed for preset models (0: the preset's own)");
  return c;
}

namespace {

const char* qk_norm_name(QkNorm q) {
  return q == QkNorm::PerHead ? "per-head" : q == QkNorm::Full ? "full" : "none";
}

void print_config(const std::string& spec, const ModelConfig& c) {
  std::printf("model:        %s\n", spec.c_str());
  std::printf("family:       %s\n", c.model_type.c_str());
  std::printf("layers:       %d  hidden %d  intermediate %d  vocab %d  max_position %d\n", c.layers, c.hidden,
              c.intermediate, c.vocab, c.max_position);
  std::printf("attention:    heads %d  kv_heads %d  head_dim %d  bias %s  qk_norm %s\n", c.heads, c.kv_heads,
              c.head_dim, c.attention_bias ? "qkv" : "none", qk_norm_name(c.qk_norm));
  std::printf("rope:         theta %g  scaling %s\n", c.rope_theta, c.rope_scaling.llama3 ? "llama3" : "none");
  if (c.rope_scaling.llama3) {
    std::printf("              factor %g  low %g  high %g  original_max_position %d\n", c.rope_scaling.factor,
                c.rope_scaling.low_freq_factor, c.rope_scaling.high_freq_factor, c.rope_scaling.original_max_position);
  }
  if (c.is_moe()) {
    int moe_layers = 0;
    for (int l = 0; l < c.layers; ++l) moe_layers += c.layer_is_moe(l) ? 1 : 0;
    std::printf("moe:          experts %d  top_k %d  moe_intermediate %d  router %s  norm_topk_prob %s  "
                "moe layers %d/%d\n",
                c.num_experts, c.top_k, c.moe_intermediate,
                c.router_order == RouterOrder::TopkThenSoftmax ? "topk-then-softmax" : "softmax-then-topk",
                c.norm_topk_prob ? "true" : "false", moe_layers, c.layers);
  }
  std::printf("norm:         rms_eps %g  tie_embeddings %s  torch_dtype %s\n", c.rms_eps,
              c.tie_embeddings ? "true" : "false", dtype_name(c.torch_dtype));
  ParamCount p = count_params(c);
  std::printf("parameters:   %s total, %s active per token (%lld)\n", human_count(p.total).c_str(),
              human_count(p.active).c_str(), static_cast<long long>(p.total));
}

}  // namespace

int run_info(const InfoOptions& o) {
  LoadedModel m = open_model(o.model, o.dtype.empty() ? DType::F32 : dtype_arg("--dtype", o.dtype), o.weight_seed);
  const DType storage = o.dtype.empty() ? m.config.torch_dtype : dtype_arg("--dtype", o.dtype);
  print_config(o.model, m.config);
  std::fflush(stdout);
  auto t0 = std::chrono::steady_clock::now();
  ProgressSource src(*m.source, "info: loading " + m.source->describe());
  ModelWeights w = load_weights(m.config, src, storage);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("weights:      %zu tensors, %s values loaded as %s in %.2f s: complete and well-formed\n",
              src.tensors_read(), human_count(static_cast<int64_t>(src.values_read())).c_str(),
              dtype_name(w.storage), s);
  return 0;
}

}  // namespace minfer::cli
