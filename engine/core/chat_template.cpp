// engine/core/chat_template.cpp: recognition and C++ rendering of the supported chat templates (see
// chat_template.h). Each render_* function below is a line-by-line transcription of its template's
// system/user/assistant path, with the Jinja it implements quoted above it.
//
// Recognition compares a normalised form of the template text with the supported template's: comments
// dropped; whitespace outside string literals dropped; literals written '...' with their escapes (\n, \t,
// \r, \\, \', \") decoded; whitespace-control dashes dropped; m.role / m.content written m['role'] /
// m['content']; 'a' + 'b' folded into 'ab'. These only remove differences of spelling, provided that no text
// outside the tags reaches the output, which stray_text() checks with Jinja's rules as HF configures them
// (trim_blocks, lstrip_blocks, the source's trailing newline dropped). That check covers the whole template,
// so whitespace that would only show on a path minfer never takes (tools) is refused too: conservative.
#include "engine/core/chat_template.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.h"

namespace minfer {
namespace {

const char* const kSupported =
    "supported: SmolLM2's template (ChatML with its default system prompt), plain ChatML (no default system "
    "prompt), Qwen3's (<|im_start|> with <think>/enable_thinking) and Llama-3.1/3.2/3.3's (<|start_header_id|>, "
    "<|eot_id|>, the 'Cutting Knowledge Date' system header)";

const char* const kSmolLM2System = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// A short, one-line excerpt for messages (cut at a UTF-8 character boundary).
std::string excerpt(const std::string& s, size_t max_chars = 60) {
  size_t cut = std::min(s.size(), max_chars);
  while (cut < s.size() && cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;
  std::string out;
  for (size_t i = 0; i < cut; ++i) {
    if (s[i] == '\n') {
      out += "\\n";
    } else if (s[i] == '\t') {
      out += "\\t";
    } else if (s[i] == '\r') {
      out += "\\r";
    } else {
      out += s[i];
    }
  }
  return "\"" + out + (cut < s.size() ? "...\"" : "\"");
}

// ---- Jinja tags ---------------------------------------------------------------------------------------

// One {{ }}, {% %} or {# #} tag: [begin, end) in the source; kind '{', '%' or '#'; trim_left/right: a '-'
// after the opening / before the closing delimiter (Jinja strips the whitespace on that side).
struct Tag {
  size_t begin, end;
  char kind;
  bool trim_left, trim_right;
};

// Index just past the string literal opening at t[i] (a ' or "), backslash escapes skipped.
size_t skip_literal(const std::string& t, size_t i) {
  const char quote = t[i];
  size_t j = i + 1;
  while (j < t.size() && t[j] != quote) j += t[j] == '\\' ? 2 : 1;
  return j < t.size() ? j + 1 : t.size();
}

// The tags of `t` in order; false if one is unterminated.
bool scan_tags(const std::string& t, std::vector<Tag>& tags) {
  size_t i = 0;
  while ((i = t.find('{', i)) != std::string::npos && i + 1 < t.size()) {
    const char kind = t[i + 1];
    if (kind != '{' && kind != '%' && kind != '#') {
      ++i;
      continue;
    }
    const char close = kind == '{' ? '}' : kind;
    size_t j = i + 2;
    bool closed = false;
    while (j + 1 < t.size()) {
      if (kind != '#' && (t[j] == '\'' || t[j] == '"')) {
        j = skip_literal(t, j);
        continue;
      }
      if (t[j] == close && t[j + 1] == '}') {
        closed = true;
        break;
      }
      ++j;
    }
    if (!closed) return false;
    const bool left = i + 2 < j && t[i + 2] == '-';
    const bool right = j > i + 2 + (left ? 1 : 0) && t[j - 1] == '-';
    tags.push_back(Tag{i, j + 2, kind, left, right});
    i = j + 2;
  }
  return true;
}

// The first text outside the tags that reaches the output, or "" if none does. HF renders with trim_blocks
// (one newline after a %} or #} dropped), lstrip_blocks (spaces and tabs between a line start and {% or {#
// dropped) and keep_trailing_newline off; a '-' on a tag's side strips all whitespace on that side.
std::string stray_text(const std::string& t, const std::vector<Tag>& tags) {
  for (size_t g = 0; g <= tags.size(); ++g) {
    const Tag* prev = g > 0 ? &tags[g - 1] : nullptr;
    const Tag* next = g < tags.size() ? &tags[g] : nullptr;
    size_t a = prev ? prev->end : 0, b = next ? next->begin : t.size();
    if (prev && prev->trim_right) {
      while (a < b && ascii_space(t[a])) ++a;
    } else if (prev && prev->kind != '{') {
      if (b - a >= 2 && t.compare(a, 2, "\r\n") == 0) {
        a += 2;
      } else if (a < b && t[a] == '\n') {
        ++a;
      }
    }
    if (next && next->trim_left) {
      while (b > a && ascii_space(t[b - 1])) --b;
    } else if (next && next->kind != '{') {
      size_t k = b;
      while (k > a && (t[k - 1] == ' ' || t[k - 1] == '\t')) --k;
      if (k == 0 || t[k - 1] == '\n') b = k;
    }
    if (!next) {
      if (b - a >= 2 && t.compare(b - 2, 2, "\r\n") == 0) {
        b -= 2;
      } else if (b > a && t[b - 1] == '\n') {
        --b;
      }
    }
    if (a < b) return t.substr(a, b - a);
  }
  return "";
}

// Tag code outside string literals: m.role / m.content spelled m['role'] / m['content'].
std::string normalise_code(std::string code) {
  replace_all(code, ".role", "['role']");
  replace_all(code, ".content", "['content']");
  return code;
}

// A string literal's text with its escapes decoded: '\n' written as an escape or as a newline is the same.
std::string unescape(const std::string& body) {
  std::string out;
  for (size_t k = 0; k < body.size(); ++k) {
    if (body[k] != '\\' || k + 1 == body.size()) {
      out += body[k];
      continue;
    }
    const char c = body[++k];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': case '\'': case '"': out += c; break;
      default: out += '\\', out += c;  // kept as written
    }
  }
  return out;
}

// The normalised form described at the top of the file; "" if a tag is unterminated.
std::string normalise(const std::string& t) {
  std::vector<Tag> tags;
  if (!scan_tags(t, tags)) return "";
  std::string out;
  auto text = [&](size_t a, size_t b) {
    for (size_t k = a; k < b; ++k) {
      if (!ascii_space(t[k])) out += t[k];
    }
  };
  size_t pos = 0;
  for (const Tag& tag : tags) {
    text(pos, tag.begin);
    pos = tag.end;
    if (tag.kind == '#') continue;
    out += '{';
    out += tag.kind;
    const size_t stop = tag.end - 2 - (tag.trim_right ? 1 : 0);
    std::string code;
    for (size_t k = tag.begin + 2 + (tag.trim_left ? 1 : 0); k < stop;) {
      if (t[k] == '\'' || t[k] == '"') {
        const size_t e = skip_literal(t, k);
        out += normalise_code(code);
        code.clear();
        out += '\'' + unescape(t.substr(k + 1, e - k - 2)) + '\'';
        k = e;
        continue;
      }
      if (!ascii_space(t[k])) code += t[k];
      ++k;
    }
    out += normalise_code(code);
    out += tag.kind == '{' ? '}' : '%';
    out += '}';
  }
  text(pos, t.size());
  replace_all(out, "'+'", "");
  return out;
}

// A part of a supported template that decides its output: where it must appear in the normalised text.
struct Pin {
  enum Where { Prefix, Anywhere, Suffix } where;
  const char* jinja;
};

// Qwen/Qwen3-0.6B's template (tests/fixtures/chat/templates/qwen3.jinja), every part on the path without tools.
const Pin kQwen3Pins[] = {
    {Pin::Prefix, R"({%- if tools %})"},
    {Pin::Anywhere, R"({%- else %}{%- if messages[0].role == 'system' %})"
                    R"({{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}{%- endif %}{%- endif %})"},
    {Pin::Anywhere, R"({%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %})"
                    R"({%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %})"
                    R"({%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith()"
                    R"('<tool_response>') and message.content.endswith('</tool_response>')) %})"
                    R"({%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}{%- endif %})"
                    R"({%- endfor %})"},
    {Pin::Anywhere, R"({%- for message in messages %})"
                    R"({%- if (message.role == "user") or (message.role == "system" and not loop.first) %})"
                    R"({{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }})"
                    R"({%- elif message.role == "assistant" %}{%- set content = message.content %})"
                    R"({%- set reasoning_content = '' %})"},
    {Pin::Anywhere, R"({%- else %}{%- if '</think>' in message.content %})"
                    R"({%- set content = message.content.split('</think>')[-1].lstrip('\n') %})"
                    R"({%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n'))"
                    R"(.split('<think>')[-1].lstrip('\n') %}{%- endif %}{%- endif %})"},
    {Pin::Anywhere, R"({%- if loop.index0 > ns.last_query_index %})"
                    R"({%- if loop.last or (not loop.last and reasoning_content) %})"
                    R"({{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + )"
                    R"('\n</think>\n\n' + content.lstrip('\n') }}{%- else %})"
                    R"({{- '<|im_start|>' + message.role + '\n' + content }}{%- endif %}{%- else %})"
                    R"({{- '<|im_start|>' + message.role + '\n' + content }}{%- endif %}{%- if message.tool_calls %})"},
    {Pin::Anywhere, R"({%- endif %}{{- '<|im_end|>\n' }}{%- elif message.role == "tool" %})"},
    {Pin::Suffix, R"({%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }})"
                  R"({%- if enable_thinking is defined and enable_thinking is false %})"
                  R"({{- '<think>\n\n</think>\n\n' }}{%- endif %}{%- endif %})"},
};

// meta-llama/Llama-3.1-8B-Instruct's template (llama3.jinja; 3.2's and 3.3's agree on this path).
const Pin kLlama3Pins[] = {
    {Pin::Prefix, R"({{- bos_token }})"},
    {Pin::Anywhere, R"({%- if not date_string is defined %})"},
    {Pin::Anywhere, R"({%- set date_string = "26 Jul 2024" %})"},
    {Pin::Anywhere, R"({%- if not tools is defined %}{%- set tools = none %}{%- endif %})"},
    {Pin::Anywhere, R"({%- if messages[0]['role'] == 'system' %})"
                    R"({%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %})"
                    R"({%- else %}{%- set system_message = "" %}{%- endif %})"
                    R"({{- "<|start_header_id|>system<|end_header_id|>\n\n" }})"},
    {Pin::Anywhere, R"({{- "Cutting Knowledge Date: December 2023\n" }}{{- "Today Date: " + date_string + "\n\n" }})"},
    {Pin::Anywhere, R"({{- system_message }}{{- "<|eot_id|>" }}{%- if tools_in_user_message and not tools is none %})"},
    {Pin::Anywhere, R"({%- for message in messages %})"
                    R"({%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %})"
                    R"({{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n')"
                    R"(+ message['content'] | trim + '<|eot_id|>' }}{%- elif 'tool_calls' in message %})"},
    {Pin::Suffix, R"({%- endfor %}{%- if add_generation_prompt %})"
                  R"({{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %})"},
};

// The two ChatML templates are short: the whole normalised text must match.
const char* const kSmolLM2Template =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %})"
    R"({{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }})"
    R"({% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %})"
    R"({% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";
const char* const kChatMLTemplate =
    R"({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>')"
    R"( + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";

[[noreturn]] void refuse(const std::string& source, const std::string& what) {
  throw BadInput(source, "chat_template", what + "; refusing rather than render a prompt the model does not "
                                                 "expect (" + kSupported + ")");
}

// Checks a template of a recognised family against the supported one; refuses with the first difference.
void verify(const std::string& text, const std::string& norm, const std::string& source, const std::string& looks,
            const Pin* pins, size_t n_pins) {
  for (size_t i = 0; i < n_pins; ++i) {
    const std::string want = normalise(pins[i].jinja);
    const bool ok = pins[i].where == Pin::Prefix   ? starts_with(norm, want)
                    : pins[i].where == Pin::Suffix ? ends_with(norm, want)
                                                   : contains(norm, want);
    if (!ok) {
      const char* where = pins[i].where == Pin::Prefix ? "start with" : pins[i].where == Pin::Suffix ? "end with"
                                                                                                      : "contain";
      refuse(source, looks + ", but it does not " + where + " " + excerpt(pins[i].jinja, 90) + " as that one does");
    }
  }
  std::vector<Tag> tags;
  scan_tags(text, tags);
  const std::string stray = stray_text(text, tags);
  if (!stray.empty()) refuse(source, looks + ", but text outside its tags reaches the output: " + excerpt(stray));
}

// ---- rendering ------------------------------------------------------------------------------------------

// The code point of the well-formed UTF-8 sequence at s[i] and its length; 0 if malformed.
size_t utf8_at(const std::string& s, size_t i, uint32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Python's str.isspace(), which Jinja's trim filter (str.strip()) uses.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Jinja's `| trim`: Python's str.strip() on UTF-8 text (malformed bytes count as non-space).
std::string py_strip(const std::string& s) {
  uint32_t cp = 0;
  size_t a = 0, b = s.size();
  while (a < b) {
    const size_t len = utf8_at(s, a, cp);
    if (len == 0 || !py_space(cp)) break;
    a += len;
  }
  while (b > a) {
    size_t k = b - 1;
    while (k > a && b - k < 4 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
    if (utf8_at(s, k, cp) != b - k || !py_space(cp)) break;
    b = k;
  }
  return s.substr(a, b - a);
}

// Python's lstrip('\n'), rstrip('\n'), strip('\n').
std::string lstrip_nl(const std::string& s) {
  const size_t a = s.find_first_not_of('\n');
  return a == std::string::npos ? "" : s.substr(a);
}
std::string rstrip_nl(const std::string& s) {
  const size_t b = s.find_last_not_of('\n');
  return b == std::string::npos ? "" : s.substr(0, b + 1);
}
std::string strip_nl(const std::string& s) { return rstrip_nl(lstrip_nl(s)); }

// {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}
//   {{ '<|im_start|>system\n<SmolLM2 system prompt><|im_end|>\n' }}{% endif %}
//   {{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}
// {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
// (plain ChatML: the same without the default system prompt)
std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt, bool smollm2) {
  std::string out;
  if (smollm2 && messages[0].role != "system") {
    out += std::string("<|im_start|>system\n") + kSmolLM2System + "<|im_end|>\n";
  }
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_qwen3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                         const ChatOptions& options) {
  const size_t n = messages.size();
  std::string out;
  // {%- if messages[0].role == 'system' %}{{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
  if (messages[0].role == "system") out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  // last_query_index: the last user message that is not a whole <tool_response>...</tool_response>
  // (messages|length - 1 when there is none).
  size_t last_query = n - 1;
  for (size_t i = n; i-- > 0;) {
    const std::string& c = messages[i].content;
    if (messages[i].role == "user" && !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
      last_query = i;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    // {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      // content: after the last '</think>', leading newlines dropped; reasoning_content: before the first
      // '</think>', after the last '<think>' there, trailing and leading newlines dropped.
      std::string content = m.content, reasoning;
      const size_t first_end = m.content.find("</think>");
      if (first_end != std::string::npos) {
        content = lstrip_nl(m.content.substr(m.content.rfind("</think>") + 8));
        const std::string before = rstrip_nl(m.content.substr(0, first_end));
        const size_t open = before.rfind("<think>");
        reasoning = lstrip_nl(open == std::string::npos ? before : before.substr(open + 7));
      }
      // {%- if loop.index0 > ns.last_query_index %}{%- if loop.last or (not loop.last and reasoning_content) %}
      if (i > last_query && (i == n - 1 || !reasoning.empty())) {
        out += "<|im_start|>assistant\n<think>\n" + strip_nl(reasoning) + "\n</think>\n\n" + lstrip_nl(content);
      } else {
        out += "<|im_start|>assistant\n" + content;
      }
      out += "<|im_end|>\n";
    }
  }
  if (add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!options.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          const ChatOptions& options) {
  // {{- bos_token }}, then the system header: the first message's content, trimmed, if it is a system message.
  std::string out = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n";
  out += "Cutting Knowledge Date: December 2023\nToday Date: " + options.date_string + "\n\n";
  size_t first = 0;
  if (messages[0].role == "system") {
    out += py_strip(messages[0].content);
    first = 1;
  }
  out += "<|eot_id|>";
  // {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
  for (size_t i = first; i < messages.size(); ++i) {
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + py_strip(messages[i].content) +
           "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace

const char* chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML_SmolLM2: return "SmolLM2 ChatML";
    case ChatFormat::ChatML: return "ChatML";
    case ChatFormat::Qwen3: return "Qwen3";
    case ChatFormat::Llama3: return "Llama-3";
  }
  return "?";
}

ChatFormat recognise_chat_template(const std::string& jinja_text, const std::string& source_name) {
  bool blank = true;
  for (char c : jinja_text) blank = blank && ascii_space(c);
  if (blank) refuse(source_name, "the chat template is empty");
  const bool chatml = contains(jinja_text, "<|im_start|>") && contains(jinja_text, "<|im_end|>");
  const bool llama3 = contains(jinja_text, "<|start_header_id|>") && contains(jinja_text, "<|end_header_id|>") &&
                      contains(jinja_text, "<|eot_id|>");
  if (chatml && llama3) refuse(source_name, "the template mixes ChatML and Llama-3 markers");
  if (!chatml && !llama3) {
    refuse(source_name, "unknown chat template (neither ChatML's <|im_start|>/<|im_end|> nor Llama-3's "
                        "<|start_header_id|>/<|eot_id|>), starting " + excerpt(jinja_text));
  }
  const std::string norm = normalise(jinja_text);
  if (norm.empty()) refuse(source_name, "the template has an unterminated {{, {% or {# tag");
  if (llama3) {
    if (!contains(jinja_text, "Cutting Knowledge Date")) {
      refuse(source_name, "a Llama-3 template without Llama-3.1's 'Cutting Knowledge Date' system header "
                          "(Llama-3.0's or another fine-tune's)");
    }
    verify(jinja_text, norm, source_name, "the template looks like Llama-3.1's", kLlama3Pins,
           sizeof kLlama3Pins / sizeof kLlama3Pins[0]);
    return ChatFormat::Llama3;
  }
  if (contains(jinja_text, kSmolLM2System)) {
    if (norm != normalise(kSmolLM2Template)) {
      refuse(source_name, "the template has SmolLM2's default system prompt but differs from SmolLM2's template");
    }
    verify(jinja_text, norm, source_name, "the template looks like SmolLM2's", nullptr, 0);
    return ChatFormat::ChatML_SmolLM2;
  }
  if (contains(jinja_text, "<think>") || contains(jinja_text, "enable_thinking")) {
    verify(jinja_text, norm, source_name, "the template looks like a ChatML reasoning template such as Qwen3's",
           kQwen3Pins, sizeof kQwen3Pins / sizeof kQwen3Pins[0]);
    return ChatFormat::Qwen3;
  }
  if (norm != normalise(kChatMLTemplate)) {
    refuse(source_name, "a ChatML template that is neither plain ChatML nor SmolLM2's or Qwen3's (e.g. one with "
                        "its own default system prompt or tool handling)");
  }
  verify(jinja_text, norm, source_name, "the template looks like plain ChatML", nullptr, 0);
  return ChatFormat::ChatML;
}

std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatOptions& options) {
  if (messages.empty()) throw UsageError(std::string("chat: no messages to render (") + chat_format_name(format) + ")");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      throw UsageError("chat: message " + std::to_string(i) + " has role '" + role + "'; the " +
                       chat_format_name(format) + " template is rendered for system, user and assistant messages "
                       "only (no tool calling)");
    }
  }
  switch (format) {
    case ChatFormat::ChatML_SmolLM2: return render_chatml(messages, add_generation_prompt, true);
    case ChatFormat::ChatML: return render_chatml(messages, add_generation_prompt, false);
    case ChatFormat::Qwen3: return render_qwen3(messages, add_generation_prompt, options);
    case ChatFormat::Llama3: return render_llama3(messages, add_generation_prompt, options);
  }
  throw UsageError("chat: unknown chat format");
}

std::vector<std::string> chat_stop_strings(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML: return {"<|im_end|>"};
    case ChatFormat::ChatML_SmolLM2:
    case ChatFormat::Qwen3: return {"<|im_end|>", "<|endoftext|>"};
    case ChatFormat::Llama3: return {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
  }
  return {};
}

}  // namespace minfer
