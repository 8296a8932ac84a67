// engine/cli/commands.h: the `minfer` subcommands (presets, info, export, generate): their options,
// their registration on the CLI11 app, and their run functions. Each run function returns the exit
// code (0 ok) and throws minfer::Error for bad input (mapped to its exit code by main.cpp).
#pragma once
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace minfer::cli {

struct InfoOptions {
  std::string model;  // "preset:NAME" or a checkpoint path
  std::string dtype;  // storage dtype for the load; "" = the config's torch_dtype
  uint64_t weight_seed = 0;  // preset weights (0: the preset's own)
};

struct ExportOptions {
  std::string preset;
  std::string out;
  std::string dtype;                  // "" = the preset's torch_dtype
  std::string max_shard_size = "5GB";
  uint64_t weight_seed = 0;  // preset weights (0: the preset's own)
};

struct GenerateOptions {
  std::string model;
  std::string prompt_tokens;  // "1,2,3" (one prompt) or "1,2;3,4,5" (several)
  int batch = 0;              // 0 = one sequence per prompt
  int max_new_tokens = 16;
  std::string backend = "reference";
  std::string dtype = "fp32";
  uint64_t weight_seed = 0;  // preset weights (0: the preset's own)
  // Sampling (backend cuda): temperature 0 = greedy; top_k 0 = off; top_p 1 = off.
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;         // sampling (--seed)
  // Backend cuda: after generating, one eager decode step with events around each launch.
  bool profile = false;
  std::string profile_csv;  // also write the breakdown as CSV here ("" = no file)
  std::string attention = "auto";  // backend cuda: attention kernels, auto, simple or flash (engine/core/plan.h)
};

CLI::App* add_presets_command(CLI::App& app);
CLI::App* add_info_command(CLI::App& app, InfoOptions& o);
CLI::App* add_export_command(CLI::App& app, ExportOptions& o);
CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o);

int run_presets();
int run_info(const InfoOptions& o);
int run_export(const ExportOptions& o);
int run_generate(const GenerateOptions& o);

}  // namespace minfer::cli
