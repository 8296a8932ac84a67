// tests/cpu/test_chat_template.cpp: chat templates (engine/core/chat_template.h).
// Recognition: each template in tests/fixtures/chat/templates/ is recognised as its format (SmolLM2's from the
// GGUF, plain ChatML in two layouts, Qwen3-0.6B's, Llama-3.1's and 3.2's), also with the one trailing newline
// Jinja drops. Parity: every case of tests/fixtures/chat/expected.json (HF transformers' own rendering,
// tools/make_chat_fixtures.py) renders byte for byte the same. Refusals (BadInput, exit 2, naming the source):
// an empty template, an unknown one, real templates of the right families that render differently (Qwen2.5's
// default system prompt, QwQ's), small edits of the supported templates (a Llama-3.0-style template, Qwen3's
// later "or reasoning_content" variant, text leaking outside the tags); and UsageError (exit 2) for an empty
// message list or a role other than system/user/assistant, naming the role.
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/chat_template.h"
#include "engine/core/error.h"

namespace fs = std::filesystem;
using minfer::BadInput;
using minfer::ChatFormat;
using minfer::ChatMessage;
using minfer::ChatOptions;
using minfer::UsageError;

namespace {

const fs::path kDir = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "chat";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string template_text(const std::string& name) { return read_text(kDir / "templates" / (name + ".jinja")); }

const std::map<std::string, ChatFormat> kExpectedFormat = {
    {"smollm2", ChatFormat::ChatML_SmolLM2}, {"chatml", ChatFormat::ChatML},
    {"chatml_multiline", ChatFormat::ChatML}, {"qwen3", ChatFormat::Qwen3},
    {"llama3", ChatFormat::Llama3},           {"llama3_2", ChatFormat::Llama3},
};

// Replaces exactly one occurrence of `from` (the test fails if there is not exactly one).
std::string edit(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "no " << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << "more than one " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Runs recognise_chat_template expecting a refusal; returns its message.
std::string refusal(const std::string& text, const std::string& source) {
  try {
    const ChatFormat f = minfer::recognise_chat_template(text, source);
    ADD_FAILURE() << source << ": recognised as " << minfer::chat_format_name(f) << ", expected a refusal";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_EQ(e.file(), source);
    EXPECT_EQ(e.field(), "chat_template");
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(source + ": chat_template: ", 0), 0u) << what;
    // Every refusal lists what is supported.
    EXPECT_NE(what.find("SmolLM2"), std::string::npos) << what;
    EXPECT_NE(what.find("Qwen3"), std::string::npos) << what;
    EXPECT_NE(what.find("Llama-3.1"), std::string::npos) << what;
    return what;
  }
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ChatTemplate, RecognisesEachFixtureTemplate) {
  for (const auto& [name, format] : kExpectedFormat) {
    const std::string text = template_text(name);
    ASSERT_FALSE(text.empty()) << name;
    EXPECT_EQ(minfer::recognise_chat_template(text, name + ".jinja"), format) << name;
    // Jinja drops one trailing newline of the source (tokenizer_config.json texts often lack it, files have it).
    if (text.back() != '\n') {
      EXPECT_EQ(minfer::recognise_chat_template(text + "\n", name), format) << name << " + newline";
    }
  }
}

TEST(ChatTemplate, RendersLikeTransformers) {
  const nlohmann::json cases = nlohmann::json::parse(read_text(kDir / "expected.json"));
  ASSERT_TRUE(cases.is_array());
  ASSERT_GE(cases.size(), 200u);
  std::map<std::string, ChatFormat> formats;
  std::set<std::string> seen;
  size_t thinking_off = 0, stripped_think = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json& c = cases[i];
    const std::string name = c.at("template").get<std::string>();
    if (!formats.count(name)) formats[name] = minfer::recognise_chat_template(template_text(name), name);
    seen.insert(name);
    std::vector<ChatMessage> messages;
    for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    ChatOptions options;
    for (const auto& [key, value] : c.at("options").items()) {
      if (key == "enable_thinking") {
        options.enable_thinking = value.get<bool>();
        thinking_off += !options.enable_thinking;
      } else if (key == "date_string") {
        options.date_string = value.get<std::string>();
      } else {
        FAIL() << "case " << i << ": unknown option " << key;
      }
    }
    const std::string want = c.at("rendered");
    if (name == "qwen3" && has(c.at("messages").dump(), "<think>") && !has(want, "2+2=4")) ++stripped_think;
    EXPECT_EQ(minfer::render_chat(formats[name], messages, c.at("add_generation_prompt"), options), want)
        << "case " << i << " (" << name << ", add_generation_prompt " << c.at("add_generation_prompt")
        << ", options " << c.at("options").dump() << "): " << c.at("messages").dump();
  }
  for (const auto& [name, format] : kExpectedFormat) EXPECT_TRUE(seen.count(name)) << "no cases for " << name;
  EXPECT_GT(thinking_off, 0u);
  EXPECT_GT(stripped_think, 0u);  // an earlier assistant turn's reasoning dropped by Qwen3's template
}

// Spot checks written by hand, independent of the fixtures.
TEST(ChatTemplate, HandWrittenRenderings) {
  const std::vector<ChatMessage> user = {{"user", "Hi"}};
  EXPECT_EQ(minfer::render_chat(ChatFormat::ChatML, user, true),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(minfer::render_chat(ChatFormat::ChatML_SmolLM2, user, false),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n");
  ChatOptions no_think;
  no_think.enable_thinking = false;
  EXPECT_EQ(minfer::render_chat(ChatFormat::Qwen3, user, true, no_think),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  ChatOptions date;
  date.date_string = "02 Feb 2026";
  EXPECT_EQ(minfer::render_chat(ChatFormat::Llama3, {{"system", " S "}, {"user", " Hi\n"}}, true, date),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 02 Feb 2026\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, RefusesEmptyAndUnknownTemplates) {
  EXPECT_TRUE(has(refusal("", "empty.gguf"), "empty"));
  EXPECT_TRUE(has(refusal(" \n\t", "blank.json"), "empty"));
  const std::string unknown = refusal("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}",
                                      "tokenizer_config.json");
  EXPECT_TRUE(has(unknown, "unknown chat template")) << unknown;
  EXPECT_TRUE(has(unknown, "[{{ m.role }}]")) << unknown;  // quotes the start of the template
  // Gemma's turn markers: a real family minfer does not render.
  refusal("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n"
          "{% endfor %}", "gemma.gguf");
  refusal("<|im_start|><|im_end|><|start_header_id|><|end_header_id|><|eot_id|>", "mixed.gguf");
  EXPECT_TRUE(has(refusal("{{ '<|im_start|>' + '<|im_end|>' ", "open.gguf"), "unterminated"));
}

TEST(ChatTemplate, RefusesOtherTemplatesOfTheSameFamilies) {
  // Qwen2.5: ChatML with its own default system prompt ("You are Qwen, ...").
  EXPECT_TRUE(has(refusal(template_text("qwen2_5"), "qwen2_5.jinja"), "neither plain ChatML"));
  // QwQ: <think> handling, but no enable_thinking and a different last-turn rule.
  EXPECT_TRUE(has(refusal(template_text("qwq"), "qwq.jinja"), "reasoning template"));
  // Llama-3.0's template: the header tokens without 3.1's system header.
  const std::string llama30 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
      "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
      "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
  EXPECT_TRUE(has(refusal(llama30, "llama3_0.gguf"), "Cutting Knowledge Date"));
}

TEST(ChatTemplate, RefusesEditedSupportedTemplates) {
  const std::string qwen3 = template_text("qwen3");
  // Qwen3's later variant keeps reasoning of every assistant turn that has some: renders differently.
  const std::string keep = refusal(edit(qwen3, "{%- if loop.index0 > ns.last_query_index %}",
                                        "{%- if loop.index0 > ns.last_query_index or reasoning_content %}"),
                                   "qwen3_variant.jinja");
  EXPECT_TRUE(has(keep, "last_query_index")) << keep;
  refusal(edit(qwen3, "'<|im_start|>assistant\\n' }}", "'<|im_start|>assistant\\n<think>\\n' }}"), "q.jinja");
  // A default system prompt (Qwen2.5-style) added to Qwen3's template.
  refusal(edit(qwen3, "    {%- endif %}\n{%- endif %}\n{%- set ns",
               "    {%- else %}{{- '<|im_start|>system\\nBe nice.<|im_end|>\\n' }}{%- endif %}\n{%- endif %}\n"
               "{%- set ns"),
          "q.jinja");

  const std::string llama3 = template_text("llama3");
  refusal(edit(llama3, "\"26 Jul 2024\"", "\"01 Jan 2030\""), "l.jinja");
  refusal(edit(llama3, "message['content'] | trim", "message['content']"), "l.jinja");
  // A stray newline between tags reaches the output.
  EXPECT_TRUE(has(refusal(edit(llama3, "{{- system_message }}\n{{- \"<|eot_id|>\" }}",
                                "{{- system_message }}\n{{ \"<|eot_id|>\" }}"),
                          "l.jinja"),
                  "outside"));
  // ...but the same newline before a {{- tag is stripped, so that edit renders the same and is accepted.
  EXPECT_EQ(minfer::recognise_chat_template(edit(llama3, "{{- system_message }}", "{{ system_message }}\n"), "l"),
            ChatFormat::Llama3);

  const std::string smollm2 = template_text("smollm2");
  // (SmolLM2's literals hold real newlines where the other templates write \n; both mean the same.)
  refusal(edit(smollm2, "'<|im_start|>assistant\n'", "'<|im_start|>assistant\n\n'"), "s.jinja");
  refusal(edit(smollm2, "'<|im_start|>assistant\n'", "'<|im_start|>assistant\\n\\n'"), "s.jinja");
  EXPECT_EQ(minfer::recognise_chat_template(edit(smollm2, "'<|im_start|>assistant\n'", "'<|im_start|>assistant\\n'"),
                                            "s.jinja"),
            ChatFormat::ChatML_SmolLM2);
  refusal(edit(smollm2, "trained by Hugging Face<", "trained by Hugging Face.<"), "s.jinja");
  // After a final {% %} tag Jinja drops one newline (trim_blocks) and then the source's last one, no more.
  EXPECT_EQ(minfer::recognise_chat_template(smollm2 + "\n\n", "s.jinja"), ChatFormat::ChatML_SmolLM2);
  refusal(smollm2 + "\n\n\n", "s.jinja");

  const std::string chatml = template_text("chatml");
  EXPECT_TRUE(has(refusal(edit(chatml, "{% endfor %}", "\n{% endfor %}"), "c.jinja"), "outside"));
  refusal(edit(chatml, "{% endfor %}", "{% endfor %}{{ eos_token }}"), "c.jinja");
  // Spaces before a {% %} tag are dropped only at the start of a line (lstrip_blocks), not after a }} tag.
  EXPECT_TRUE(has(refusal(edit(chatml, "{% endfor %}", "  {% endfor %}"), "c.jinja"), "outside"));
  EXPECT_EQ(minfer::recognise_chat_template("  \t" + chatml, "c.jinja"), ChatFormat::ChatML);
  // ...and a newline after a {% %} tag is dropped (trim_blocks) and changes nothing.
  EXPECT_EQ(minfer::recognise_chat_template(edit(chatml, "{% endfor %}", "{% endfor %}\n"), "c.jinja"),
            ChatFormat::ChatML);
}

TEST(ChatTemplate, RefusesUnsupportedRolesAndEmptyChats) {
  for (ChatFormat f : {ChatFormat::ChatML_SmolLM2, ChatFormat::ChatML, ChatFormat::Qwen3, ChatFormat::Llama3}) {
    for (const std::string& role : std::vector<std::string>{"tool", "ipython", "developer", "User", ""}) {
      try {
        minfer::render_chat(f, {{"user", "Hi"}, {role, "x"}}, true);
        ADD_FAILURE() << minfer::chat_format_name(f) << ": role '" << role << "' accepted";
      } catch (const UsageError& e) {
        EXPECT_EQ(e.exit_code(), 2);
        EXPECT_TRUE(has(e.what(), "role '" + role + "'")) << e.what();
        EXPECT_TRUE(has(e.what(), "message 1")) << e.what();
      }
    }
    try {
      minfer::render_chat(f, {}, true);
      ADD_FAILURE() << minfer::chat_format_name(f) << ": empty chat accepted";
    } catch (const UsageError& e) {
      EXPECT_EQ(e.exit_code(), 2);
      EXPECT_TRUE(has(e.what(), "no messages")) << e.what();
    }
  }
}

TEST(ChatTemplate, StopStringsAndNames) {
  using V = std::vector<std::string>;
  EXPECT_EQ(minfer::chat_stop_strings(ChatFormat::ChatML), V({"<|im_end|>"}));
  EXPECT_EQ(minfer::chat_stop_strings(ChatFormat::ChatML_SmolLM2), V({"<|im_end|>", "<|endoftext|>"}));
  EXPECT_EQ(minfer::chat_stop_strings(ChatFormat::Qwen3), V({"<|im_end|>", "<|endoftext|>"}));
  EXPECT_EQ(minfer::chat_stop_strings(ChatFormat::Llama3), V({"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}));
  std::set<std::string> names;
  for (ChatFormat f : {ChatFormat::ChatML_SmolLM2, ChatFormat::ChatML, ChatFormat::Qwen3, ChatFormat::Llama3}) {
    names.insert(minfer::chat_format_name(f));
  }
  EXPECT_EQ(names.size(), 4u);
  EXPECT_TRUE(names.count("Qwen3"));
  EXPECT_TRUE(names.count("Llama-3"));
}

}  // namespace
