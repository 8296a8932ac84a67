// tests/cpu/test_tokenizer.cpp: minfer's byte-level BPE tokenizer (engine/core/tokenizer) against HF
// `tokenizers`, id for id, on the fixtures of tools/make_tokenizer_fixtures.py: three small tokenizers
// trained with `tokenizers` (Llama-3, Qwen2 and GPT-2 pre-tokenizers, loaded from tokenizer.json) and the
// real SmolLM2 tokenizer (loaded from the GGUF; skipped like test_smollm2 when the model is absent), over
// 42 texts (multilingual, emoji, code, whitespace runs, Unicode spaces, special tokens in text, ...).
// Also: streaming decode, UTF-8 repair, the GGUF path on a tokenizer written here, and refusals.
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <iterator>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/chat_template.h"
#include "engine/core/error.h"
#include "engine/core/gguf.h"
#include "engine/core/tokenizer.h"
#include "engine/core/unicode_nfc.h"
#include "tests/cpu/model_cache.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kDir = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "tokenizer";

json read(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in) << p;
  return json::parse(in);
}

std::string texts_of(const json& cases, const std::string& name) {
  for (const auto& c : cases["cases"]) {
    if (c["name"] == name) return c["text"].get<std::string>();
  }
  ADD_FAILURE() << "no case " << name;
  return {};
}

// Every expected case: encode with and without specials, decode with and without skipping them, and the
// stream decoder's pieces joined. Returns the number of cases checked.
int check_all(const Tokenizer& tok, const json& expected, bool with_special_ids) {
  const json cases = read(kDir / "cases.json");
  int n = 0;
  for (const auto& e : expected["cases"]) {
    const std::string name = e["name"].get<std::string>();
    SCOPED_TRACE(name);
    const std::string text = texts_of(cases, name);
    const auto want_plain = e["ids_no_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text, false), want_plain);
    const auto want = e["ids"].get<std::vector<int32_t>>();
    if (with_special_ids) {
      EXPECT_EQ(tok.encode(text, true), want);
    }
    EXPECT_EQ(tok.decode(want), e["decoded"].get<std::string>());
    EXPECT_EQ(tok.decode(want, true), e["decoded_skip_special"].get<std::string>());
    StreamDecoder sd(tok);
    std::string streamed;
    for (int32_t id : want) streamed += sd.push(id);
    streamed += sd.flush();
    EXPECT_EQ(streamed, e["decoded"].get<std::string>());
    ++n;
  }
  return n;
}

TEST(Tokenizer, Llama3StyleMatchesHfTokenizers) {
  const Tokenizer tok = Tokenizer::from_hf_json((kDir / "llama3" / "tokenizer.json").string());
  const json e = read(kDir / "llama3" / "expected.json");
  EXPECT_EQ(tok.vocab_size(), e["vocab_size"].get<int>());
  EXPECT_TRUE(tok.adds_bos());
  EXPECT_EQ(tok.bos_id(), *tok.find_token("<|begin_of_text|>"));
  EXPECT_EQ(tok.eos_id(), *tok.find_token("<|eot_id|>"));
  EXPECT_EQ(check_all(tok, e, true), 42);
}

TEST(Tokenizer, Qwen2StyleMatchesHfTokenizers) {
  const Tokenizer tok = Tokenizer::from_hf_json((kDir / "qwen2" / "tokenizer.json").string());
  const json e = read(kDir / "qwen2" / "expected.json");
  EXPECT_FALSE(tok.adds_bos());
  EXPECT_EQ(check_all(tok, e, true), 42);
}

TEST(Tokenizer, Gpt2StyleWithAddedTokenFlagsMatchesHfTokenizers) {
  const Tokenizer tok = Tokenizer::from_hf_json((kDir / "gpt2" / "tokenizer.json").string());
  const json e = read(kDir / "gpt2" / "expected.json");
  EXPECT_EQ(check_all(tok, e, true), 42);
}

TEST(Tokenizer, SmolLM2FromGgufMatchesHfTokenizers) {
  MINFER_REQUIRE_SMOLLM2(model);
  GgufFile f(model.string());
  const Tokenizer tok = Tokenizer::from_gguf(f);
  EXPECT_EQ(tok.vocab_size(), 49152);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_FALSE(tok.adds_bos());
  EXPECT_TRUE(tok.is_special(2));
  EXPECT_FALSE(tok.is_special(100));
  EXPECT_NE(tok.chat_template().find("<|im_start|>"), std::string::npos);
  const json e = read(kDir / "smollm2" / "expected.json");
  EXPECT_EQ(check_all(tok, e, true), 42);
  // The prompt test_smollm2 feeds the model, as transformers tokenized it.
  const std::vector<int32_t> want = {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198};
  EXPECT_EQ(tok.encode("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
            want);
  // parse_special = false: the markers are plain text.
  const auto plain = tok.encode("<|im_end|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok.decode(plain), "<|im_end|>");
}

// The GGUF path without the real model: the llama3 fixture's vocabulary and merges written as GGUF
// metadata the way llama.cpp's converter does (pre "llama-bpe", token types 3 for the specials).
TEST(Tokenizer, GgufMetadataGivesTheSameTokenizerAsTokenizerJson) {
  const json tj = read(kDir / "llama3" / "tokenizer.json");
  const int n = static_cast<int>(read(kDir / "llama3" / "expected.json")["vocab_size"].get<int>());
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int32_t> types(static_cast<size_t>(n), 1);
  for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it) {
    tokens[it.value().get<size_t>()] = it.key();
  }
  for (const auto& a : tj["added_tokens"]) {
    tokens[a["id"].get<size_t>()] = a["content"].get<std::string>();
    types[a["id"].get<size_t>()] = 3;
  }
  std::vector<std::string> merges;
  for (const auto& m : tj["model"]["merges"]) {
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  const fs::path p = fs::temp_directory_path() / ("minfer_tok_" + std::to_string(::getpid()) + ".gguf");
  {
    GgufWriter w;
    w.add("general.architecture", GgufWriter::Value::str("llama"));
    w.add("tokenizer.ggml.model", GgufWriter::Value::str("gpt2"));
    w.add("tokenizer.ggml.pre", GgufWriter::Value::str("llama-bpe"));
    w.add("tokenizer.ggml.tokens", GgufWriter::Value::str_array(tokens));
    w.add("tokenizer.ggml.token_type", GgufWriter::Value::i32_array(types));
    w.add("tokenizer.ggml.merges", GgufWriter::Value::str_array(merges));
    w.add("tokenizer.ggml.bos_token_id", GgufWriter::Value::u32(static_cast<uint32_t>(tj["added_tokens"][0]["id"])));
    w.add("tokenizer.ggml.add_bos_token", GgufWriter::Value::boolean(true));
    w.write(p.string());
  }
  GgufFile f(p.string());
  const Tokenizer tok = Tokenizer::from_gguf(f);
  fs::remove(p);
  EXPECT_TRUE(tok.adds_bos());
  EXPECT_EQ(check_all(tok, read(kDir / "llama3" / "expected.json"), true), 42);
}

// decode(encode(s)) == s for any valid UTF-8 (NFC(s) under an NFC normalizer): random strings mixing the
// fixture texts' characters, whitespace, digits and special-token text.
TEST(Tokenizer, DecodeOfEncodeGivesTheTextBack) {
  const json cases = read(kDir / "cases.json");
  std::vector<std::string> chars;  // every code point of the fixture texts, as UTF-8
  for (const auto& c : cases["cases"]) {
    const std::string t = c["text"].get<std::string>();
    for (size_t i = 0; i < t.size();) {
      size_t n = 1;
      while (i + n < t.size() && (static_cast<unsigned char>(t[i + n]) & 0xC0) == 0x80) ++n;
      chars.push_back(t.substr(i, n));
      i += n;
    }
  }
  for (const char* extra : {"<|im_start|>", "<|eot_id|>", "<|begin_of_text|>", "  ", "\n\n", "\r\n", "\t", "0"}) {
    chars.push_back(extra);
  }
  const Tokenizer llama3 = Tokenizer::from_hf_json((kDir / "llama3" / "tokenizer.json").string());
  const Tokenizer qwen2 = Tokenizer::from_hf_json((kDir / "qwen2" / "tokenizer.json").string());
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    std::string s;
    const int len = static_cast<int>(next() % 40);
    for (int k = 0; k < len; ++k) s += chars[next() % chars.size()];
    SCOPED_TRACE(s);
    ASSERT_EQ(llama3.decode(llama3.encode(s, false)), s);
    ASSERT_EQ(llama3.decode(llama3.encode(s, true)), "<|begin_of_text|>" + s);
    ASSERT_EQ(qwen2.decode(qwen2.encode(s, false)), nfc(s));
  }
}

// An HF model directory: tokenizer.json beside tokenizer_config.json, which gives bos, eos and the chat template
// (here Llama-3.1's, from tests/fixtures/chat); Tokenizer::load finds both.
TEST(Tokenizer, HfDirectoryGivesBosEosAndChatTemplate) {
  const fs::path dir = fs::temp_directory_path() / ("minfer_tokdir_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kDir / "llama3" / "tokenizer.json", dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  std::ifstream tin(fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "chat" / "templates" / "llama3.jinja");
  const std::string tmpl((std::istreambuf_iterator<char>(tin)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(tmpl.empty());
  std::ofstream(dir / "tokenizer_config.json")
      << json{{"bos_token", "<|begin_of_text|>"}, {"eos_token", {{"content", "<|eot_id|>"}}}, {"chat_template", tmpl}}
             .dump();
  const Tokenizer tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok.chat_template(), tmpl);
  EXPECT_EQ(tok.bos_id(), *tok.find_token("<|begin_of_text|>"));
  EXPECT_EQ(tok.eos_id(), *tok.find_token("<|eot_id|>"));
  EXPECT_EQ(recognise_chat_template(tok.chat_template(), tok.source()), ChatFormat::Llama3);
  // An eos the vocabulary lacks is refused naming tokenizer_config.json and the key.
  std::ofstream(dir / "tokenizer_config.json") << json{{"eos_token", "<|no_such_token|>"}}.dump();
  try {
    (void)Tokenizer::load(dir.string());
    ADD_FAILURE() << "accepted";
  } catch (const BadInput& e) {
    EXPECT_NE(e.file().find("tokenizer_config.json"), std::string::npos);
    EXPECT_EQ(e.field(), "eos_token");
  }
  fs::remove_all(dir);
}

TEST(Tokenizer, Utf8RepairFollowsMaximalSubparts) {
  EXPECT_EQ(utf8_lossy("abc"), "abc");
  EXPECT_EQ(utf8_lossy("a\xC3"), "a\xEF\xBF\xBD");             // truncated at the end
  EXPECT_EQ(utf8_lossy("\xE2\x82x"), "\xEF\xBF\xBDx");         // one subpart for the valid prefix
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // one per invalid lead byte
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  size_t tail = 0;
  EXPECT_EQ(utf8_valid_prefix("ab\xF0\x9F\x98", &tail), 2u);
  EXPECT_EQ(tail, 3u);
}

TEST(Tokenizer, StreamDecoderHoldsBackIncompleteCharacters) {
  const Tokenizer tok = Tokenizer::from_hf_json((kDir / "llama3" / "tokenizer.json").string());
  // An emoji is four bytes; in this small vocabulary it is several tokens, and only the last completes it.
  const std::string pizza = "\xF0\x9F\x8D\x95";
  const auto all = tok.encode("x" + pizza + "y", false);
  StreamDecoder sd(tok);
  std::string out;
  bool held_back = false;
  for (int32_t id : all) {
    const std::string piece = sd.push(id);
    size_t t = 0;
    EXPECT_EQ(utf8_valid_prefix(piece, &t), piece.size());
    EXPECT_EQ(t, 0u);
    if (piece.empty()) held_back = true;
    out += piece;
  }
  out += sd.flush();
  EXPECT_EQ(out, "x" + pizza + "y");
  ASSERT_GT(all.size(), 3u);
  EXPECT_TRUE(held_back);
}

TEST(Tokenizer, RefusesInvalidUtf8AndUnknownIds) {
  const Tokenizer tok = Tokenizer::from_hf_json((kDir / "qwen2" / "tokenizer.json").string());
  try {
    tok.encode("ok\xC3(");
    FAIL() << "no throw";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok.decode({tok.vocab_size()}), UsageError);
  EXPECT_THROW(tok.decode({-1}), UsageError);
}

// A tokenizer.json edited to be wrong in one field; the error names the file and that field.
void expect_refused(const std::string& what, const std::function<void(json&)>& edit, const std::string& field) {
  SCOPED_TRACE(what);
  json j = read(kDir / "gpt2" / "tokenizer.json");
  edit(j);
  const fs::path dir = fs::temp_directory_path() / ("minfer_tokbad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / "tokenizer.json";
  std::ofstream(p) << j.dump();
  try {
    (void)Tokenizer::from_hf_json(p.string());
    ADD_FAILURE() << "accepted";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_EQ(e.file(), p.string());
    EXPECT_NE(e.field().find(field), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Tokenizer, RefusesWhatItDoesNotSupportNamingTheField) {
  expect_refused("wordpiece", [](json& j) { j["model"]["type"] = "WordPiece"; }, "model.type");
  expect_refused("byte fallback", [](json& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback");
  expect_refused("metaspace", [](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, "pre_tokenizer.type");
  expect_refused("normalizer", [](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }, "normalizer.type");
  expect_refused("merge part", [](json& j) { j["model"]["merges"][3] = json::array({"\xC4\xA0zzzz", "q"}); },
                 "model.merges[3]");
  expect_refused("bad regex",
                 [](json& j) {
                   j["pre_tokenizer"] = {{"type", "Split"},
                                         {"pattern", {{"Regex", "(unclosed"}}},
                                         {"behavior", "Isolated"}};
                 },
                 "pre_tokenizer.pattern");
  expect_refused("split behavior",
                 [](json& j) {
                   j["pre_tokenizer"] = {{"type", "Sequence"},
                                         {"pretokenizers",
                                          {{{"type", "Split"},
                                            {"pattern", {{"Regex", "\\s"}}},
                                            {"behavior", "MergedWithNext"}},
                                           {{"type", "ByteLevel"}}}}};
                 },
                 "pre_tokenizer.pretokenizers[0].behavior");
  expect_refused("vocab id", [](json& j) { j["model"]["vocab"]["\xC4\xA0the"] = -4; }, "model.vocab");
}

TEST(Tokenizer, GgufRefusalsNameTheKey) {
  const fs::path p = fs::temp_directory_path() / ("minfer_tokgg_" + std::to_string(::getpid()) + ".gguf");
  auto write = [&](const std::string& model, const std::string& pre) {
    GgufWriter w;
    w.add("tokenizer.ggml.model", GgufWriter::Value::str(model));
    w.add("tokenizer.ggml.pre", GgufWriter::Value::str(pre));
    w.add("tokenizer.ggml.tokens", GgufWriter::Value::str_array({"a", "b", "ab"}));
    w.add("tokenizer.ggml.merges", GgufWriter::Value::str_array({"a b"}));
    w.write(p.string());
  };
  auto field_of = [&]() -> std::string {
    try {
      GgufFile f(p.string());
      (void)Tokenizer::from_gguf(f);
    } catch (const BadInput& e) {
      return e.field();
    }
    return "accepted";
  };
  write("llama", "default");
  EXPECT_EQ(field_of(), "key 'tokenizer.ggml.model'");
  write("gpt2", "no-such-pre");
  EXPECT_EQ(field_of(), "tokenizer.ggml.pre");
  write("gpt2", "gpt2");
  EXPECT_EQ(field_of(), "accepted");
  fs::remove(p);
  EXPECT_THROW(Tokenizer::load("preset:small"), UsageError);
}

}  // namespace
}  // namespace minfer
