// engine/cli/main.cpp: the `minfer` command line: subcommands presets, info, export, generate, tokenize,
// chat, perplexity (commands.h). Exit codes: 0 ok, 1 a check failed, 2 bad usage or bad input (CLI11
// errors too),
// 3 internal error. Every failure is one line on stderr; no exception escapes.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "engine/cli/commands.h"
#include "engine/core/error.h"

namespace {

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int run(int argc, char** argv) {
  using namespace minfer::cli;
  CLI::App app{"minfer: LLM inference engine (llama, qwen2, qwen3, qwen3_moe, mixtral, olmoe) with a scalar "
               "CPU reference.\nModels are a checkpoint directory (config.json + safetensors), a .gguf file, or "
               "preset:NAME (deterministic random weights; see `minfer presets`).\nExit codes: 0 ok, 1 check failed, "
               "2 bad usage or bad input, 3 internal error.",
               "minfer"};
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "minfer: " + one_line(e.what()) + " (run with --help for usage)\n";
  });
  InfoOptions info;
  ExportOptions exp;
  GenerateOptions gen;
  TokenizeOptions tokz;
  ChatCmdOptions chat;
  PerplexityOptions ppl;
  CLI::App* c_presets = add_presets_command(app);
  CLI::App* c_info = add_info_command(app, info);
  CLI::App* c_export = add_export_command(app, exp);
  CLI::App* c_generate = add_generate_command(app, gen);
  CLI::App* c_tokenize = add_tokenize_command(app, tokz);
  CLI::App* c_chat = add_chat_command(app, chat);
  CLI::App* c_ppl = add_perplexity_command(app, ppl);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->get_name() == argv[1];
    if (!known) {
      throw minfer::UsageError(std::string("unknown subcommand \"") + argv[1] +
                               "\" (presets, info, export, generate, tokenize, chat, perplexity; run with --help "
                               "for usage)");
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (c_presets->parsed()) return run_presets();
  if (c_info->parsed()) return run_info(info);
  if (c_export->parsed()) return run_export(exp);
  if (c_generate->parsed()) return run_generate(gen);
  if (c_tokenize->parsed()) return run_tokenize(tokz);
  if (c_chat->parsed()) return run_chat(chat);
  if (c_ppl->parsed()) return run_perplexity(ppl);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const minfer::Error& e) {
    std::cerr << "minfer: " << one_line(e.what()) << "\n";
    return e.exit_code();
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "minfer: " << one_line(e.what()) << "\n";  // a path we cannot read or write: bad input
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "minfer: internal error: " << one_line(e.what()) << "\n";
    return 3;
  } catch (...) {
    std::cerr << "minfer: internal error: unknown exception\n";
    return 3;
  }
}
