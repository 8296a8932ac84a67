// engine/cli/text_util.h: pieces the text commands share: reading and writing text files (errors name
// the file), a token's text made printable, and a model's chat template turned into prompt ids and stop ids.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/chat_template.h"
#include "engine/core/tokenizer.h"

namespace minfer::cli {

std::string read_text_file(const std::string& path);                        // BadInput naming the file
void write_text_file(const std::string& path, const std::string& content);  // PATH.tmp, renamed

// Control characters as escapes (\n, \t, \x07), the rest as is (invalid UTF-8 repaired).
std::string printable_piece(const std::string& bytes);

struct ChatSetup {
  ChatFormat format = ChatFormat::ChatML;
  std::vector<int32_t> stop_ids;  // the template's end-of-turn tokens present in the vocabulary
  bool is_stop(int32_t id) const;
};

// The tokenizer's chat template, recognised (BadInput naming the tokenizer's file when it has none or an
// unknown one).
ChatSetup chat_setup(const Tokenizer& tok);
// The rendered conversation with the assistant header appended, as ids (specials parsed, no extra BOS:
// the templates that want one write it themselves).
std::vector<int32_t> chat_prompt_ids(const Tokenizer& tok, const ChatSetup& chat,
                                     const std::vector<ChatMessage>& history, const ChatOptions& opts);

}  // namespace minfer::cli
