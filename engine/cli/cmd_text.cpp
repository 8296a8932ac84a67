// engine/cli/cmd_text.cpp: the commands that work on text through the model's own tokenizer
// (engine/core/tokenizer.h; a .gguf file or an HF directory with tokenizer.json):
//   tokenize    text -> ids (and --decode ids -> text)
//   chat        an interactive conversation in the model's chat template (engine/core/chat_template.h),
//               streamed, with a stats line after each reply
//   perplexity  perplexity over a text file (engine/core/perplexity.h), on either backend
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/cli/commands.h"
#include "engine/cli/text_backend.h"
#include "engine/cli/text_util.h"
#include "engine/cli/util.h"
#include "engine/core/error.h"
#include "engine/core/perplexity.h"
#include "engine/core/tokenizer.h"

namespace minfer::cli {

// ---------------------------------------------------------------- tokenize

CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& o) {
  CLI::App* c = app.add_subcommand("tokenize", "Text to token ids with the model's tokenizer (or --decode ids to "
                                               "text); the ids print as a list --prompt-tokens accepts.");
  c->add_option("--model", o.model, "A .gguf file or an HF model directory with tokenizer.json")->required();
  auto* t = c->add_option("--text", o.text, "The text to encode");
  auto* f = c->add_option("--file", o.file, "A UTF-8 file to encode");
  auto* d = c->add_option("--decode", o.decode, "Token ids to decode instead: 1,2,3");
  t->excludes(f)->excludes(d);
  f->excludes(d);
  c->add_flag("--add-special", o.add_special, "Add the tokenizer's own specials (a BOS where it adds one)");
  c->add_flag("--no-parse-special", o.no_parse_special,
              "Treat special-token text such as <|im_start|> as plain text");
  c->add_flag("--pieces", o.pieces, "One line per token: the id and the text it stands for");
  return c;
}

int run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tok = Tokenizer::load(o.model);
  if (!o.decode.empty()) {
    const auto lists = token_lists_arg("--decode", o.decode);
    std::vector<int32_t> ids;
    for (const auto& l : lists) ids.insert(ids.end(), l.begin(), l.end());
    std::cout << tok.decode(ids) << "\n";
    return 0;
  }
  if (o.text.empty() && o.file.empty()) throw UsageError("tokenize: give --text, --file or --decode");
  const std::string text = o.file.empty() ? o.text : read_text_file(o.file);
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, o.add_special, !o.no_parse_special);
  } catch (const UsageError& e) {
    if (o.file.empty()) throw UsageError(std::string("--text: ") + e.what());
    throw BadInput(o.file, "text", e.what());
  }
  if (o.pieces) {
    for (int32_t id : ids) std::cout << id << "\t" << printable_piece(tok.token_bytes(id)) << "\n";
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
    std::cout << "\n";
  }
  std::fprintf(stderr, "tokenize: %zu bytes -> %zu tokens (%s)\n", text.size(), ids.size(), tok.describe().c_str());
  return 0;
}

// ---------------------------------------------------------------- chat

CLI::App* add_chat_command(CLI::App& app, ChatCmdOptions& o) {
  CLI::App* c = app.add_subcommand(
      "chat", "Talk with a model in its chat template (SmolLM2/ChatML, Qwen3, Llama-3): one line per user turn on "
              "stdin; the reply streams, then a stats line (stderr). /reset clears the conversation, /exit ends it.");
  c->add_option("--model", o.model, "A .gguf file or an HF model directory (with tokenizer.json and a chat "
                                    "template)")->required();
  c->add_option("--backend", o.backend, "reference (scalar CPU, greedy; slow, default) or cuda (the GPU engine)");
  c->add_option("--dtype", o.dtype, "Weight and activation dtype: fp32 (default), bf16 or fp16");
  c->add_option("--system", o.system, "A system message (else the template's default, if it has one)");
  c->add_option("--max-new-tokens", o.max_new_tokens, "Most tokens per reply (default 512)");
  c->add_option("--ctx", o.ctx, "Context in tokens (default 2048, at most the model's); older turns are dropped "
                                "when the conversation outgrows it");
  c->add_option("--temperature", o.temperature, "Sampling temperature (cuda backend; 0 = greedy, default)");
  c->add_option("--top-k", o.top_k, "Keep the k most likely tokens (cuda backend; 0 = off, default)");
  c->add_option("--top-p", o.top_p, "Nucleus sampling mass (cuda backend; 1 = off, default)");
  c->add_option("--seed", o.seed, "Sampling seed (cuda backend)");
  c->add_flag("--no-think", o.no_think, "Qwen3: answer without a thinking block (enable_thinking = false)");
  c->add_option("--attention", o.attention, "cuda backend: attention kernels: auto (default), flash or simple");
  return c;
}

int run_chat(const ChatCmdOptions& o) {
  const DType dt = dtype_arg("--dtype", o.dtype);
  const Tokenizer tok = Tokenizer::load(o.model);
  const ChatSetup chat = chat_setup(tok);
  SamplerConfig sampler;
  sampler.temperature = o.temperature;
  sampler.top_k = o.top_k;
  sampler.top_p = o.top_p;
  sampler.seed = o.seed;
  if (o.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  TextBackendOptions bo;
  bo.backend = o.backend;
  bo.dtype = dt;
  bo.context = o.ctx;
  bo.attention = o.attention;
  auto backend = make_text_backend(o.model, bo);
  ChatOptions copt;
  copt.enable_thinking = !o.no_think;
  const bool tty = isatty(STDIN_FILENO) != 0;
  std::fprintf(stderr, "chat: %s template, %s\nchat: /reset clears the conversation, /exit (or end of input) ends "
                       "it\n", chat_format_name(chat.format), backend->describe().c_str());
  std::vector<ChatMessage> history;
  if (!o.system.empty()) history.push_back({"system", o.system});
  std::string line;
  int turn = 0;
  while (true) {
    if (tty) {
      std::fputs("you> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.resize(o.system.empty() ? 0 : 1);
      std::fprintf(stderr, "chat: conversation cleared\n");
      continue;
    }
    if (line.empty()) continue;
    history.push_back({"user", line});
    std::vector<int32_t> ids = chat_prompt_ids(tok, chat, history, copt);
    // Drop the oldest turns (never the system message) until the prompt leaves room for a reply.
    while (static_cast<int64_t>(ids.size()) + o.max_new_tokens > backend->context()) {
      const size_t first = (!history.empty() && history[0].role == "system") ? 1 : 0;
      if (history.size() - first <= 1) {
        throw UsageError("chat: this message alone (" + std::to_string(ids.size()) + " tokens) + --max-new-tokens " +
                         std::to_string(o.max_new_tokens) + " exceeds the context of " +
                         std::to_string(backend->context()) + " tokens (--ctx)");
      }
      history.erase(history.begin() + static_cast<std::ptrdiff_t>(first),
                    history.begin() + static_cast<std::ptrdiff_t>(std::min(first + 2, history.size() - 1)));
      ids = chat_prompt_ids(tok, chat, history, copt);
      std::fprintf(stderr, "chat: dropped the oldest turn to fit the context\n");
    }
    if (tty) std::fputs("assistant> ", stdout);
    StreamDecoder sd(tok, /*skip_special=*/true);
    std::vector<int32_t> reply;
    const TextGenStats st = backend->generate(ids, o.max_new_tokens, sampler, chat.stop_ids, [&](int32_t t) {
      reply.push_back(t);
      if (!chat.is_stop(t)) {
        std::fputs(sd.push(t).c_str(), stdout);
        std::fflush(stdout);
      }
    });
    std::fputs(sd.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (!reply.empty() && chat.is_stop(reply.back())) reply.pop_back();
    history.push_back({"assistant", tok.decode(reply, true)});
    ++turn;
    std::fprintf(stderr, "[turn %d: %lld tokens%s, prompt %lld tokens, time to first token %.1f ms, %.1f tokens/s; "
                         "context %lld/%d]\n",
                 turn, static_cast<long long>(st.new_tokens), st.stopped ? "" : " (hit --max-new-tokens)",
                 static_cast<long long>(st.prompt_tokens), st.ttft_ms, st.decode_tok_s,
                 static_cast<long long>(st.prompt_tokens + st.new_tokens), backend->context());
  }
  return 0;
}

// ---------------------------------------------------------------- perplexity

CLI::App* add_perplexity_command(CLI::App& app, PerplexityOptions& o) {
  CLI::App* c = app.add_subcommand(
      "perplexity", "Perplexity of the model over a text file: the text's tokens (no BOS) in consecutive windows "
                    "of --ctx tokens, each from an empty cache, every token after a window's first predicted "
                    "from the ones before it; ppl = exp(mean negative log-likelihood).");
  c->add_option("--model", o.model, "A .gguf file or an HF model directory with tokenizer.json")->required();
  c->add_option("--text", o.text, "A UTF-8 text file")->required();
  c->add_option("--ctx", o.ctx, "Window length in tokens (default 512)");
  c->add_option("--max-tokens", o.max_tokens, "Use only the text's first N tokens (default: all)");
  c->add_option("--backend", o.backend, "reference (scalar CPU; slow, default) or cuda (the GPU engine)");
  c->add_option("--dtype", o.dtype, "Weight and activation dtype: fp32 (default), bf16 or fp16");
  c->add_option("--json", o.json, "Also write the result as JSON to this file");
  c->add_option("--attention", o.attention, "cuda backend: attention kernels: auto (default), flash or simple");
  return c;
}

int run_perplexity(const PerplexityOptions& o) {
  using Clock = std::chrono::steady_clock;
  const DType dt = dtype_arg("--dtype", o.dtype);
  if (o.max_tokens < 0) throw UsageError("--max-tokens: must be positive");
  const Tokenizer tok = Tokenizer::load(o.model);
  const std::string text = read_text_file(o.text);
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, false);
  } catch (const UsageError& e) {
    throw BadInput(o.text, "text", e.what());
  }
  if (o.max_tokens > 0 && static_cast<int64_t>(ids.size()) > o.max_tokens) ids.resize(static_cast<size_t>(o.max_tokens));
  const auto windows = perplexity_windows(static_cast<int64_t>(ids.size()), o.ctx);
  if (windows.empty()) throw BadInput(o.text, "text", "fewer than 2 tokens: nothing to predict");
  TextBackendOptions bo;
  bo.backend = o.backend;
  bo.dtype = dt;
  bo.context = o.ctx;
  bo.scoring = true;
  bo.attention = o.attention;
  auto backend = make_text_backend(o.model, bo);
  if (backend->context() < o.ctx) {
    throw UsageError("--ctx " + std::to_string(o.ctx) + " is past the model's context of " +
                     std::to_string(backend->context()) + " tokens");
  }
  std::fprintf(stderr, "perplexity: %s: %zu bytes, %zu tokens, %zu windows of <= %d; %s\n", o.text.c_str(),
               text.size(), ids.size(), windows.size(), o.ctx, backend->describe().c_str());
  PerplexityResult r;
  r.n_tokens = static_cast<int64_t>(ids.size());
  r.ctx = o.ctx;
  const int64_t V = backend->config().vocab;
  const auto t0 = Clock::now();
  auto last_print = t0;
  for (size_t w = 0; w < windows.size(); ++w) {
    const auto [b, e] = windows[w];
    const std::vector<int32_t> win(ids.begin() + b, ids.begin() + e);
    const std::vector<float> logits = backend->score(win);
    const auto [nll, n] = window_nll(logits.data(), e - b, V, win.data());
    r.nll_sum += nll;
    r.n_predicted += n;
    ++r.n_windows;
    const auto now = Clock::now();
    if (w + 1 == windows.size() || std::chrono::duration<double>(now - last_print).count() > 2.0) {
      std::fprintf(stderr, "perplexity: window %zu/%zu, %lld tokens predicted, ppl so far %.4f (%.1f s)\n", w + 1,
                   windows.size(), static_cast<long long>(r.n_predicted), r.ppl(),
                   std::chrono::duration<double>(now - t0).count());
      last_print = now;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double bits_per_byte = r.nll_sum / std::log(2.0) / static_cast<double>(text.size());
  std::printf("perplexity: %.4f (mean NLL %.6f nats/token over %lld predicted tokens in %lld windows of ctx %d; "
              "%lld tokens of %s; backend %s; %.2f s)\n",
              r.ppl(), r.mean_nll(), static_cast<long long>(r.n_predicted), static_cast<long long>(r.n_windows), o.ctx,
              static_cast<long long>(r.n_tokens), o.text.c_str(), o.backend.c_str(), secs);
  if (!o.json.empty()) {
    nlohmann::json j;
    j["model"] = o.model;
    j["text_file"] = o.text;
    j["n_bytes"] = text.size();
    j["n_tokens"] = r.n_tokens;
    j["ctx"] = o.ctx;
    j["n_windows"] = r.n_windows;
    j["n_predicted"] = r.n_predicted;
    j["nll_sum"] = r.nll_sum;
    j["mean_nll"] = r.mean_nll();
    j["ppl"] = r.ppl();
    j["bits_per_byte"] = o.max_tokens > 0 ? nullptr : nlohmann::json(bits_per_byte);
    j["backend"] = o.backend;
    j["dtype"] = dtype_name(dt);
    j["seconds"] = secs;
    write_text_file(o.json, j.dump(1) + "\n");
  }
  return 0;
}

}  // namespace minfer::cli
