// engine/cli/text_util.cpp: see text_util.h.
#include "engine/cli/text_util.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/atomic_file.h"
#include "engine/core/error.h"

namespace minfer::cli {

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw BadInput(path, "file", "no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput(path, "file", "cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text_file(const std::string& path, const std::string& content) { write_file_atomic(path, content); }

std::string printable_piece(const std::string& bytes) {
  const std::string s = utf8_lossy(bytes);
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

bool ChatSetup::is_stop(int32_t id) const { return std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end(); }

ChatSetup chat_setup(const Tokenizer& tok) {
  ChatSetup s;
  s.format = recognise_chat_template(tok.chat_template(), tok.source());
  for (const std::string& text : chat_stop_strings(s.format)) {
    if (auto id = tok.find_token(text)) s.stop_ids.push_back(*id);
  }
  if (s.stop_ids.empty()) {
    throw BadInput(tok.source(), "chat_template",
                   std::string("none of the ") + chat_format_name(s.format) + " end-of-turn tokens is in the vocabulary");
  }
  return s;
}

std::vector<int32_t> chat_prompt_ids(const Tokenizer& tok, const ChatSetup& chat,
                                     const std::vector<ChatMessage>& history, const ChatOptions& opts) {
  return tok.encode(render_chat(chat.format, history, true, opts), /*add_special=*/false, /*parse_special=*/true);
}

}  // namespace minfer::cli
