// engine/core/chat_template.h: chat prompts rendered the way a model's own chat template renders them.
// minfer runs no Jinja: it recognises which known template a model ships (the text of `tokenizer.chat_template`
// in GGUF metadata, or `chat_template` in tokenizer_config.json) and renders that template's output in C++.
// Supported templates:
//   ChatML_SmolLM2  SmolLM2-Instruct's: ChatML plus a default system prompt when the first message is not system
//   ChatML          plain ChatML, no default system prompt
//   Qwen3           Qwen3's (hybrid thinking): enable_thinking, reasoning stripped from earlier assistant turns
//   Llama3          Llama-3.1/3.2/3.3-Instruct's: BOS text, a system header with the knowledge/today dates
// Any other template is refused (BadInput, exit 2) rather than rendered differently from what the model expects.
// Parity: for system/user/assistant messages the output equals HF transformers'
// tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...) byte for byte
// (tests/cpu/test_chat_template.cpp; fixtures from tools/make_chat_fixtures.py).
// Not supported: tool calling (no tools, tool/ipython roles or tool_calls), a message's separate
// reasoning_content field, continue_final_message, multimodal content; message content is plain UTF-8 text.
// The Llama-3 rendering starts with the text "<|begin_of_text|>" as HF's does: tokenise it without adding
// another BOS. Llama-3.2's template defaults its date to today (strftime_now) where 3.1/3.3 use "26 Jul 2024";
// minfer always prints ChatOptions::date_string, so pass today's date for a 3.2 model to match HF exactly.
#pragma once
#include <string>
#include <vector>

namespace minfer {

enum class ChatFormat { ChatML_SmolLM2, ChatML, Qwen3, Llama3 };

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatOptions {
  // Qwen3: false appends an empty "<think>\n\n</think>\n\n" to the generation prompt (the template's
  // enable_thinking=False); true (the template's default) leaves the model to think.
  bool enable_thinking = true;
  // Llama3: the "Today Date: " line of the system header (the template's date_string; default as in 3.1/3.3).
  std::string date_string = "26 Jul 2024";
};

// "SmolLM2 ChatML", "ChatML", "Qwen3", "Llama-3".
const char* chat_format_name(ChatFormat format);

// Recognises a template by its markers: <|im_start|>/<|im_end|> make it ChatML, then SmolLM2's default system
// prompt ("You are a helpful AI assistant named SmolLM, trained by Hugging Face") SmolLM2's, and <think> or
// enable_thinking Qwen3's; <|start_header_id|>, <|end_header_id|> and <|eot_id|> make it Llama-3. Within a
// family the parts of the template that decide the output must then match the supported template (comparing
// with whitespace, quote style, m.role/m['role'] and adjacent string concatenation normalised, and checking
// that no text outside {{ }} / {% %} reaches the output). `source_name` (a file name) is only for messages.
// Throws BadInput(source_name, "chat_template", ...) for an empty template, a template of no supported family,
// or one of a supported family that differs from the supported template (e.g. Qwen2.5's, QwQ's, Llama-3.0's);
// the message says which and lists the supported templates.
ChatFormat recognise_chat_template(const std::string& jinja_text, const std::string& source_name);

// The prompt text for `messages`, ending with the assistant header when add_generation_prompt is set.
// Throws UsageError (exit 2) for an empty message list or a role other than system/user/assistant (naming it).
std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatOptions& options = {});

// Texts of the tokens that end the assistant's turn, end-of-turn first: generation stops at any of them.
//   ChatML: <|im_end|>; SmolLM2, Qwen3: <|im_end|>, <|endoftext|>; Llama3: <|eot_id|>, <|eom_id|>, <|end_of_text|>
std::vector<std::string> chat_stop_strings(ChatFormat format);

}  // namespace minfer
