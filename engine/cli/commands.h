// engine/cli/commands.h: the `minfer` subcommands (presets, info, export, generate, tokenize, chat,
// perplexity): their options, their registration on the CLI11 app, and their run functions. Each run
// function returns the exit code (0 ok) and throws minfer::Error for bad input (mapped to its exit code
// by main.cpp).
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
  std::string prompt;         // text (needs the model's tokenizer); exclusive with prompt_tokens
  bool chat = false;          // wrap `prompt` as a user turn in the model's chat template
  std::string system;         // with chat: a system message
  bool no_think = false;      // with chat on a Qwen3 model: enable_thinking = false
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
  // Backend cuda: trace the CUDA-graph decode steps (CUPTI) and lay out the median step's kernels.
  bool timeline = false;
  std::string timeline_csv;  // also write its kernels as CSV here (and PATH.groups.csv) ("" = no file)
  // Backend cuda: each decode-attention block's phase times (kernels/decode_attention.h trace) to this CSV.
  std::string attention_trace_csv;
  std::string attention = "auto";  // backend cuda: attention kernels, auto, simple or flash (engine/core/plan.h)
};

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  std::string decode;        // ids to decode instead
  bool add_special = false;  // the post-processor's BOS
  bool no_parse_special = false;
  bool pieces = false;       // one line per token: id and its text
};

struct ChatCmdOptions {
  std::string model;
  std::string backend = "reference";
  std::string dtype = "fp32";
  std::string system;
  int max_new_tokens = 512;
  int ctx = 2048;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  bool no_think = false;
  std::string attention = "auto";
};

struct PerplexityOptions {
  std::string model;
  std::string text;          // a UTF-8 text file
  int ctx = 512;
  int64_t max_tokens = 0;    // 0: all
  std::string backend = "reference";
  std::string dtype = "fp32";
  std::string json;          // also write the result here
  std::string attention = "auto";
};

CLI::App* add_presets_command(CLI::App& app);
CLI::App* add_info_command(CLI::App& app, InfoOptions& o);
CLI::App* add_export_command(CLI::App& app, ExportOptions& o);
CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o);

CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& o);
CLI::App* add_chat_command(CLI::App& app, ChatCmdOptions& o);
CLI::App* add_perplexity_command(CLI::App& app, PerplexityOptions& o);

int run_presets();
int run_tokenize(const TokenizeOptions& o);
int run_chat(const ChatCmdOptions& o);
int run_perplexity(const PerplexityOptions& o);
int run_info(const InfoOptions& o);
int run_export(const ExportOptions& o);
int run_generate(const GenerateOptions& o);

}  // namespace minfer::cli
