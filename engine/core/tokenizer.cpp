// engine/core/tokenizer.cpp: see tokenizer.h.
#include "engine/core/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "engine/core/error.h"
#include "engine/core/gguf.h"
#include "engine/core/gguf_model.h"
#include "engine/core/unicode_nfc.h"

namespace minfer {
namespace {

// ---------------------------------------------------------------- UTF-8

// At s[i]: the length of one valid sequence (> 0), or -k for an invalid maximal subpart of k bytes,
// or 0 when the sequence is a valid but incomplete prefix running to the end of s.
int utf8_step(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t d = b(i + k);
    const bool ok = k == 1 ? (d >= lo && d <= hi) : (d >= 0x80 && d <= 0xBF);
    if (!ok) return -k;
  }
  return need + 1;
}

// Decodes the code point of a valid sequence at s[i] of length n.
uint32_t utf8_decode(std::string_view s, size_t i, int n) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[k])); };
  if (n == 1) return b(i);
  if (n == 2) return ((b(i) & 0x1F) << 6) | (b(i + 1) & 0x3F);
  if (n == 3) return ((b(i) & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
  return ((b(i) & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) | (b(i + 3) & 0x3F);
}


constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// ---------------------------------------------------------------- GPT-2 byte alphabet

struct ByteAlphabet {
  std::array<std::string, 256> byte_to_str;        // byte -> the UTF-8 of its printable stand-in
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;  // stand-in code point -> byte
  ByteAlphabet() {
    std::array<bool, 256> direct{};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = direct[b] ? static_cast<uint32_t>(b) : next++;
      utf8_append(byte_to_str[b], cp);
      cp_to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

// ---------------------------------------------------------------- PCRE2

struct Regex {
  std::string pattern;
  pcre2_code* code = nullptr;
  Regex(const std::string& pat, const std::string& file, const std::string& field) : pattern(pat) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(), PCRE2_UTF | PCRE2_UCP, &err, &off,
                         nullptr);
    if (!code) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      throw BadInput(file, field,
                     "regex does not compile at offset " + std::to_string(off) + ": " +
                         reinterpret_cast<const char*>(msg.data()) + " (pattern " + pat + ")");
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code); }
};

// The pre-tokenizer patterns of the byte-level BPE families (public, as published with each model).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// One split of the pre-tokenizer: pieces are the matches and the gaps between them.
struct SplitStep {
  std::unique_ptr<Regex> re;
  std::string name;  // for describe()
};

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Merge {
  int32_t rank;
  int32_t merged;
};

bool is_ws_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

// ---------------------------------------------------------------- public UTF-8 helpers

size_t utf8_valid_prefix(std::string_view s, size_t* incomplete_tail) {
  size_t i = 0;
  while (i < s.size()) {
    const int n = utf8_step(s, i);
    if (n > 0) {
      i += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      if (incomplete_tail) *incomplete_tail = s.size() - i;
      return i;
    }
    break;  // invalid
  }
  if (incomplete_tail) *incomplete_tail = 0;
  return i;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const int n = utf8_step(s, i);
    if (n > 0) {
      out.append(s.substr(i, static_cast<size_t>(n)));
      i += static_cast<size_t>(n);
    } else if (n == 0) {
      out += kReplacement;  // a truncated sequence at the end is one maximal subpart
      break;
    } else {
      out += kReplacement;
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

// ---------------------------------------------------------------- Impl

struct Tokenizer::Impl {
  std::string source;
  std::vector<std::string> vocab;  // id -> vocabulary string ("" for an unused id)
  std::unordered_map<std::string, int32_t> vocab_index;
  std::unordered_map<uint64_t, Merge> merges;
  size_t n_merges = 0;
  std::array<int32_t, 256> byte_id{};  // byte -> id of its one-character token (-1 if absent)
  bool ignore_merges = false;
  bool add_prefix_space = false;
  bool nfc = false;  // normalizer NFC (engine/core/unicode_nfc.h) on the text between added tokens
  std::vector<SplitStep> splits;
  std::vector<AddedToken> added;  // longest content first (matching order)
  std::array<std::vector<uint32_t>, 256> added_by_first;  // first byte -> indices into added, longest first
  std::unordered_map<int32_t, size_t> added_by_id;
  std::vector<int32_t> prefix_ids, suffix_ids;  // post-processor specials around the sequence
  int32_t bos = -1, eos = -1;
  std::string chat_template;
  std::string pre_name;

  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  void finish(const std::string& file) {
    vocab_index.clear();
    vocab_index.reserve(vocab.size() * 2);
    for (size_t i = 0; i < vocab.size(); ++i) {
      if (vocab[i].empty()) continue;
      if (!vocab_index.emplace(vocab[i], static_cast<int32_t>(i)).second) {
        // HF keeps the later id for a duplicated string in added tokens; a duplicate in the base
        // vocabulary is malformed.
        if (!added_by_id.count(static_cast<int32_t>(i))) {
          throw BadInput(file, "vocab", "token '" + vocab[i] + "' appears twice (ids " +
                                             std::to_string(vocab_index[vocab[i]]) + " and " + std::to_string(i) +
                                             ")");
        }
      }
    }
    const ByteAlphabet& a = alphabet();
    for (int b = 0; b < 256; ++b) {
      auto it = vocab_index.find(a.byte_to_str[b]);
      byte_id[b] = it == vocab_index.end() ? -1 : it->second;
    }
    std::stable_sort(added.begin(), added.end(),
                     [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
    added_by_id.clear();
    for (size_t i = 0; i < added.size(); ++i) added_by_id[added[i].id] = i;
    for (auto& v : added_by_first) v.clear();
    for (size_t i = 0; i < added.size(); ++i) {
      if (!added[i].content.empty()) {
        added_by_first[static_cast<unsigned char>(added[i].content[0])].push_back(static_cast<uint32_t>(i));
      }
    }
  }

  // field_prefix names the list ("model.merges", "key 'tokenizer.ggml.merges'"); the index is appended.
  void add_merge(const std::string& file, const std::string& field_prefix, size_t index, const std::string& left,
                 const std::string& right) {
    const std::string field = field_prefix + "[" + std::to_string(index) + "]";
    auto l = vocab_index.find(left), r = vocab_index.find(right);
    if (l == vocab_index.end() || r == vocab_index.end()) {
      throw BadInput(file, field, "'" + left + " " + right + "': a part is not in the vocabulary");
    }
    auto m = vocab_index.find(left + right);
    if (m == vocab_index.end()) {
      throw BadInput(file, field, "'" + left + " " + right + "': the merged token is not in the vocabulary");
    }
    // The first occurrence of a pair keeps its rank (a later duplicate would never apply).
    merges.emplace(pair_key(l->second, r->second), Merge{static_cast<int32_t>(index), m->second});
    ++n_merges;
  }

  // BPE over one piece already in the byte alphabet (as ids of single bytes).
  void bpe(const std::string& piece, std::vector<int32_t>& out) const {
    if (ignore_merges) {
      auto it = vocab_index.find(byte_level(piece));
      if (it != vocab_index.end()) {
        out.push_back(it->second);
        return;
      }
    }
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = cache.find(piece);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> sym;
    sym.reserve(piece.size());
    for (unsigned char c : piece) {
      if (byte_id[c] >= 0) sym.push_back(byte_id[c]);  // an absent byte token is dropped, as HF does
    }
    const size_t n = sym.size();
    std::vector<int32_t> result;
    if (n <= 1) {
      result = sym;
    } else {
      // Doubly linked symbols and a heap of candidate merges ordered by (rank, position).
      std::vector<int32_t> prev(n), next(n);
      std::vector<char> alive(n, 1);
      for (size_t i = 0; i < n; ++i) {
        prev[i] = static_cast<int32_t>(i) - 1;
        next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
      }
      struct Cand {
        int32_t rank, pos, left_id, right_id;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
      };
      std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
      auto push = [&](int32_t i) {
        const int32_t j = next[i];
        if (i < 0 || j < 0) return;
        auto it = merges.find(pair_key(sym[i], sym[j]));
        if (it != merges.end()) heap.push(Cand{it->second.rank, i, sym[i], sym[j]});
      };
      for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
      while (!heap.empty()) {
        const Cand c = heap.top();
        heap.pop();
        const int32_t i = c.pos;
        if (!alive[i]) continue;
        const int32_t j = next[i];
        if (j < 0 || sym[i] != c.left_id || sym[j] != c.right_id) continue;  // stale
        sym[i] = merges.at(pair_key(sym[i], sym[j])).merged;
        alive[j] = 0;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        if (prev[i] >= 0) push(prev[i]);
        push(i);
      }
      for (int32_t i = 0; i >= 0; i = next[i]) result.push_back(sym[i]);
    }
    out.insert(out.end(), result.begin(), result.end());
    if (piece.size() <= 256) {
      std::lock_guard<std::mutex> lock(cache_mu);
      if (cache.size() > 200000) cache.clear();
      cache.emplace(piece, std::move(result));
    }
  }

  static std::string byte_level(std::string_view piece) {
    const ByteAlphabet& a = alphabet();
    std::string s;
    s.reserve(piece.size() * 2);
    for (unsigned char c : piece) s += a.byte_to_str[c];
    return s;
  }

  // Applies the split steps to one section of text (no added tokens inside) and BPE to every piece.
  void encode_section(std::string_view text, std::vector<int32_t>& out, pcre2_match_data* md) const {
    std::string normalized;
    if (nfc) {
      normalized = minfer::nfc(text);
      text = normalized;
    }
    std::string prefixed;
    if (add_prefix_space && !text.empty() && text.front() != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    std::vector<std::string_view> pieces{text}, nextp;
    for (const SplitStep& st : splits) {
      nextp.clear();
      for (std::string_view p : pieces) {
        size_t pos = 0, last = 0;
        while (pos <= p.size()) {
          const int rc = pcre2_match(st.re->code, reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), pos,
                                     PCRE2_NO_UTF_CHECK, md, nullptr);
          if (rc == PCRE2_ERROR_NOMATCH) break;
          if (rc < 0) throw std::runtime_error("tokenizer: pcre2_match failed with code " + std::to_string(rc));
          const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
          size_t s = ov[0], e = ov[1];
          if (e == s) {  // an empty match: step one character on
            if (s >= p.size()) break;
            const int n = utf8_step(p, s);
            pos = s + static_cast<size_t>(n > 0 ? n : 1);
            continue;
          }
          if (s > last) nextp.push_back(p.substr(last, s - last));
          nextp.push_back(p.substr(s, e - s));
          last = pos = e;
        }
        if (last < p.size()) nextp.push_back(p.substr(last));
      }
      pieces.swap(nextp);
    }
    std::string buf;
    for (std::string_view p : pieces) {
      buf.assign(p);
      bpe(buf, out);
    }
  }

  static bool is_word_char_before(std::string_view text, size_t pos) {
    if (pos == 0) return false;
    const unsigned char c = static_cast<unsigned char>(text[pos - 1]);
    return std::isalnum(c) || c == '_' || c >= 0x80;
  }
  static bool is_word_char_at(std::string_view text, size_t pos) {
    if (pos >= text.size()) return false;
    const unsigned char c = static_cast<unsigned char>(text[pos]);
    return std::isalnum(c) || c == '_' || c >= 0x80;
  }

  // Finds the leftmost (then longest) added-token match at or after `from`; returns added index or -1.
  int find_added(std::string_view text, size_t from, bool parse_special, size_t* mstart, size_t* mend) const {
    for (size_t pos = from; pos < text.size(); ++pos) {
      for (uint32_t k : added_by_first[static_cast<unsigned char>(text[pos])]) {
        const AddedToken& t = added[k];
        if (t.special && !parse_special) continue;
        if (text.compare(pos, t.content.size(), t.content) != 0) continue;
        size_t s = pos, e = pos + t.content.size();
        if (t.single_word && (is_word_char_before(text, s) || is_word_char_at(text, e))) continue;
        if (t.lstrip) {
          while (s > from && is_ws_byte(text[s - 1])) --s;
        }
        if (t.rstrip) {
          while (e < text.size() && is_ws_byte(text[e])) ++e;
        }
        *mstart = s;
        *mend = e;
        return static_cast<int>(k);
      }
    }
    return -1;
  }
};

// ---------------------------------------------------------------- loading

namespace {

std::vector<SplitStep> splits_for_gguf_pre(const std::string& pre, const std::string& file) {
  std::vector<SplitStep> s;
  auto add = [&](const char* pat, const char* name) {
    s.push_back(SplitStep{std::make_unique<Regex>(pat, file, "tokenizer.ggml.pre"), name});
  };
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") {
    add(R"(\p{N})", "digits");
    add(kGpt2Pattern, "gpt2");
  } else if (pre == "gpt2" || pre == "gpt-2" || pre == "mpt" || pre == "olmo") {
    add(kGpt2Pattern, "gpt2");
  } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3") {
    add(kLlama3Pattern, "llama3");
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen") {
    add(kQwen2Pattern, "qwen2");
  } else {
    throw BadInput(file, "tokenizer.ggml.pre",
                   "pre-tokenizer '" + pre +
                       "' is not supported (supported: smollm, starcoder, refact, codeshell, gpt2, mpt, olmo, "
                       "llama-bpe, llama3, falcon3, qwen2, deepseek-r1-qwen)");
  }
  return s;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const GgufFile& f) {
  const std::string& file = f.path();
  auto im = std::make_unique<Impl>();
  im->source = file;
  if (!f.has("tokenizer.ggml.model")) {
    throw BadInput(file, "key 'tokenizer.ggml.model'", "absent: the file carries no tokenizer");
  }
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2") {
    throw BadInput(file, "key 'tokenizer.ggml.model'",
                   "'" + model + "' is not supported (only byte-level BPE, 'gpt2', is)");
  }
  const auto& toks = f.get_string_array_view("tokenizer.ggml.tokens");
  im->vocab.assign(toks.begin(), toks.end());
  std::vector<int32_t> types;
  if (f.has("tokenizer.ggml.token_type")) {
    types = f.get_i32_array("tokenizer.ggml.token_type");
    if (types.size() != toks.size()) {
      throw BadInput(file, "key 'tokenizer.ggml.token_type'",
                     std::to_string(types.size()) + " entries for " + std::to_string(toks.size()) + " tokens");
    }
  }
  for (size_t i = 0; i < types.size(); ++i) {
    // 3 = control (special), 4 = user defined (an added token matched in text, not special).
    if (types[i] == 3 || types[i] == 4) {
      AddedToken t;
      t.id = static_cast<int32_t>(i);
      t.content = im->vocab[i];
      t.special = types[i] == 3;
      im->added.push_back(std::move(t));
    }
  }
  im->pre_name = f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "gpt2";
  im->splits = splits_for_gguf_pre(im->pre_name, file);
  im->finish(file);
  if (f.has("tokenizer.ggml.merges")) {
    const auto& m = f.get_string_array_view("tokenizer.ggml.merges");
    im->merges.reserve(m.size() * 2);
    for (size_t i = 0; i < m.size(); ++i) {
      const size_t sp = m[i].find(' ');
      if (sp == std::string_view::npos || sp == 0 || sp + 1 >= m[i].size()) {
        throw BadInput(file, "key 'tokenizer.ggml.merges'[" + std::to_string(i) + "]",
                       "'" + std::string(m[i]) + "' is not two tokens separated by one space");
      }
      im->add_merge(file, "key 'tokenizer.ggml.merges'", i, std::string(m[i].substr(0, sp)),
                    std::string(m[i].substr(sp + 1)));
    }
  }
  const auto id_key = [&](const char* key) -> int32_t {
    if (!f.has(key)) return -1;
    const uint32_t v = f.get_u32(key);
    if (v >= im->vocab.size()) {
      throw BadInput(file, std::string("key '") + key + "'",
                     std::to_string(v) + " is past the vocabulary (" + std::to_string(im->vocab.size()) + ")");
    }
    return static_cast<int32_t>(v);
  };
  im->bos = id_key("tokenizer.ggml.bos_token_id");
  im->eos = id_key("tokenizer.ggml.eos_token_id");
  const bool add_bos = f.has("tokenizer.ggml.add_bos_token") ? f.get_bool("tokenizer.ggml.add_bos_token") : false;
  if (add_bos && im->bos >= 0) im->prefix_ids.push_back(im->bos);
  if (f.has("tokenizer.ggml.add_eos_token") && f.get_bool("tokenizer.ggml.add_eos_token") && im->eos >= 0) {
    im->suffix_ids.push_back(im->eos);
  }
  if (f.has("tokenizer.ggml.add_space_prefix")) im->add_prefix_space = f.get_bool("tokenizer.ggml.add_space_prefix");
  if (f.has("tokenizer.chat_template")) im->chat_template = f.get_string("tokenizer.chat_template");
  return Tokenizer(std::move(im));
}

namespace {

using json = nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput(path, "file", "cannot be opened");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw BadInput(path, "json", std::string("not valid JSON: ") + e.what());
  }
}

std::string jstr(const json& j, const std::string& file, const std::string& field) {
  if (!j.is_string()) throw BadInput(file, field, "expected a string, got " + std::string(j.type_name()));
  return j.get<std::string>();
}

// Adds the split steps one HF pre-tokenizer node asks for.
void add_hf_pretokenizer(const json& node, const std::string& file, const std::string& field, Tokenizer::Impl& im,
                         bool* saw_byte_level) {
  if (node.is_null()) return;
  if (!node.is_object() || !node.contains("type")) throw BadInput(file, field, "expected an object with a type");
  const std::string type = jstr(node["type"], file, field + ".type");
  if (type == "Sequence") {
    const json& list = node.value("pretokenizers", json::array());
    for (size_t i = 0; i < list.size(); ++i) {
      add_hf_pretokenizer(list[i], file, field + ".pretokenizers[" + std::to_string(i) + "]", im, saw_byte_level);
    }
  } else if (type == "ByteLevel") {
    *saw_byte_level = true;
    if (node.value("add_prefix_space", false)) {
      // Applied to the whole section before any split; HF applies it to each piece at this step, which is
      // the same only when ByteLevel comes first.
      if (!im.splits.empty()) {
        throw BadInput(file, field + ".add_prefix_space", "true after another pre-tokenizer is not supported");
      }
      im.add_prefix_space = true;
    }
    if (node.value("use_regex", true)) {
      im.splits.push_back(SplitStep{std::make_unique<Regex>(kGpt2Pattern, file, field), "gpt2"});
    }
  } else if (type == "Digits") {
    const bool individual = node.value("individual_digits", false);
    im.splits.push_back(SplitStep{std::make_unique<Regex>(individual ? R"(\p{N})" : R"(\p{N}+)", file, field),
                                  individual ? "digits" : "digit-runs"});
  } else if (type == "Split") {
    const json& pat = node.value("pattern", json::object());
    std::string re;
    if (pat.contains("Regex")) {
      re = jstr(pat["Regex"], file, field + ".pattern.Regex");
    } else if (pat.contains("String")) {
      // A literal string: quote it for PCRE2.
      re = "\\Q" + jstr(pat["String"], file, field + ".pattern.String") + "\\E";
    } else {
      throw BadInput(file, field + ".pattern", "expected Regex or String");
    }
    const std::string behavior = node.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated") {
      throw BadInput(file, field + ".behavior", "'" + behavior + "' is not supported (only Isolated)");
    }
    if (node.value("invert", false)) throw BadInput(file, field + ".invert", "true is not supported");
    im.splits.push_back(SplitStep{std::make_unique<Regex>(re, file, field + ".pattern"), "split"});
  } else {
    throw BadInput(file, field + ".type",
                   "pre-tokenizer '" + type + "' is not supported (supported: ByteLevel, Split, Digits, Sequence)");
  }
}

void add_hf_postprocessor(const json& node, const std::string& file, const std::string& field,
                          Tokenizer::Impl& im) {
  if (node.is_null()) return;
  const std::string type = jstr(node.value("type", json()), file, field + ".type");
  if (type == "Sequence") {
    const json& list = node.value("processors", json::array());
    for (size_t i = 0; i < list.size(); ++i) {
      add_hf_postprocessor(list[i], file, field + ".processors[" + std::to_string(i) + "]", im);
    }
  } else if (type == "ByteLevel") {
    // offsets only
  } else if (type == "TemplateProcessing") {
    const json& single = node.value("single", json::array());
    bool seen_a = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const json& item = single[i];
      const std::string f = field + ".single[" + std::to_string(i) + "]";
      if (item.contains("Sequence")) {
        if (seen_a) throw BadInput(file, f, "more than one sequence in the single template");
        seen_a = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = jstr(item["SpecialToken"].value("id", json()), file, f + ".SpecialToken.id");
        const json& st = node.value("special_tokens", json::object());
        if (!st.contains(name)) throw BadInput(file, f, "special token '" + name + "' not in special_tokens");
        const json& ids = st[name].value("ids", json::array());
        for (const json& id : ids) (seen_a ? im.suffix_ids : im.prefix_ids).push_back(id.get<int32_t>());
      } else {
        throw BadInput(file, f, "expected Sequence or SpecialToken");
      }
    }
  } else {
    throw BadInput(file, field + ".type",
                   "post-processor '" + type + "' is not supported (supported: TemplateProcessing, ByteLevel)");
  }
}

std::optional<std::string> token_content(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(const std::string& path) {
  const json j = read_json(path);
  auto im = std::make_unique<Impl>();
  im->source = path;
  if (!j.is_object() || !j.contains("model")) throw BadInput(path, "model", "absent");
  const json& model = j["model"];
  const std::string mtype = model.contains("type") ? jstr(model["type"], path, "model.type") : "BPE";
  if (mtype != "BPE") throw BadInput(path, "model.type", "'" + mtype + "' is not supported (only BPE)");
  if (model.value("byte_fallback", false)) {
    throw BadInput(path, "model.byte_fallback", "SentencePiece-style byte fallback is not supported");
  }
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(k) && !model[k].is_null() && model[k] != "") {
      throw BadInput(path, std::string("model.") + k, "is not supported");
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    throw BadInput(path, "model.dropout", "BPE dropout is not supported");
  }
  im->ignore_merges = model.value("ignore_merges", false);
  const json& vocab = model.value("vocab", json::object());
  if (!vocab.is_object() || vocab.empty()) throw BadInput(path, "model.vocab", "absent or empty");
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (1 << 26)) {
      throw BadInput(path, "model.vocab['" + it.key() + "']", "expected an id in [0, 2^26]");
    }
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  const json& added = j.value("added_tokens", json::array());
  for (const json& a : added) max_id = std::max(max_id, a.value("id", int64_t(-1)));
  im->vocab.assign(static_cast<size_t>(max_id + 1), std::string());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    std::string& slot = im->vocab[static_cast<size_t>(it.value().get<int64_t>())];
    if (!slot.empty()) throw BadInput(path, "model.vocab['" + it.key() + "']", "id used twice");
    slot = it.key();
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const json& a = added[i];
    const std::string f = "added_tokens[" + std::to_string(i) + "]";
    AddedToken t;
    t.id = a.value("id", -1);
    if (t.id < 0) throw BadInput(path, f + ".id", "absent or negative");
    t.content = jstr(a.value("content", json()), path, f + ".content");
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.single_word = a.value("single_word", false);
    im->vocab[static_cast<size_t>(t.id)] = t.content;
    im->added.push_back(std::move(t));
  }
  const json& norm = j.value("normalizer", json());
  if (!norm.is_null()) {
    const std::string nt = jstr(norm.value("type", json()), path, "normalizer.type");
    if (nt != "NFC") {
      throw BadInput(path, "normalizer.type", "'" + nt + "' is not supported (supported: none, NFC)");
    }
    im->nfc = true;
  }
  bool byte_level = false;
  add_hf_pretokenizer(j.value("pre_tokenizer", json()), path, "pre_tokenizer", *im, &byte_level);
  const json& dec = j.value("decoder", json());
  if (!dec.is_null() && dec.value("type", std::string()) == "ByteLevel") byte_level = true;
  if (!byte_level) {
    throw BadInput(path, "pre_tokenizer", "no ByteLevel step: only byte-level BPE tokenizers are supported");
  }
  im->pre_name = "tokenizer.json";
  // Added tokens beat base-vocabulary duplicates: mark them before finish() checks for duplicates.
  for (const AddedToken& t : im->added) im->added_by_id[t.id] = 0;
  im->finish(path);
  const json& merges = model.value("merges", json::array());
  im->merges.reserve(merges.size() * 2);
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size()) {
        throw BadInput(path, "model.merges[" + std::to_string(i) + "]", "'" + s + "' is not two tokens");
      }
      im->add_merge(path, "model.merges", i, s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      im->add_merge(path, "model.merges", i, m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw BadInput(path, "model.merges[" + std::to_string(i) + "]", "expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  add_hf_postprocessor(j.value("post_processor", json()), path, "post_processor", *im);
  for (int32_t id : im->prefix_ids) {
    if (id < 0 || id >= static_cast<int32_t>(im->vocab.size())) {
      throw BadInput(path, "post_processor", "special token id " + std::to_string(id) + " is past the vocabulary");
    }
  }
  // tokenizer_config.json beside it: bos, eos, chat template.
  const std::filesystem::path cfg_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    const json cfg = read_json(cfg_path.string());
    auto id_of = [&](const char* key) -> int32_t {
      auto c = token_content(cfg, key);
      if (!c) return -1;
      auto it = im->vocab_index.find(*c);
      if (it == im->vocab_index.end()) {
        throw BadInput(cfg_path.string(), key, "'" + *c + "' is not a token of " + path);
      }
      return it->second;
    };
    im->bos = id_of("bos_token");
    im->eos = id_of("eos_token");
    if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) {
      im->chat_template = cfg["chat_template"].get<std::string>();
    }
  }
  const std::filesystem::path jinja = std::filesystem::path(path).parent_path() / "chat_template.jinja";
  if (im->chat_template.empty() && std::filesystem::exists(jinja)) {
    std::ifstream in(jinja, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    im->chat_template = ss.str();
  }
  if (im->bos < 0 && !im->prefix_ids.empty()) im->bos = im->prefix_ids.front();
  return Tokenizer(std::move(im));
}

Tokenizer Tokenizer::load(const std::string& spec) {
  if (spec.rfind("preset:", 0) == 0) {
    throw UsageError("model '" + spec + "' is a random-weight preset and has no tokenizer: give token ids "
                     "(--prompt-tokens) or a real model (a .gguf file or an HF directory with tokenizer.json)");
  }
  if (is_gguf_path(spec)) {
    GgufFile f(spec);
    return from_gguf(f);
  }
  const std::filesystem::path p = std::filesystem::path(spec) / "tokenizer.json";
  if (!std::filesystem::exists(p)) {
    throw BadInput(spec, "tokenizer.json", "absent: the model directory has no tokenizer");
  }
  return from_hf_json(p.string());
}

// ---------------------------------------------------------------- encode / decode

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  size_t tail = 0;
  const size_t ok = utf8_valid_prefix(text, &tail);
  if (ok != text.size() || tail != 0) {
    throw UsageError("text is not valid UTF-8 at byte " + std::to_string(ok));
  }
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special) out.insert(out.end(), im.prefix_ids.begin(), im.prefix_ids.end());
  pcre2_match_data* md = nullptr;
  if (!im.splits.empty()) md = pcre2_match_data_create(8, nullptr);
  struct Free {
    pcre2_match_data* m;
    ~Free() { pcre2_match_data_free(m); }
  } guard{md};
  size_t pos = 0;
  while (pos < text.size()) {
    size_t ms = 0, me = 0;
    const int k = im.added.empty() ? -1 : im.find_added(text, pos, parse_special, &ms, &me);
    const size_t end = k < 0 ? text.size() : ms;
    if (end > pos) im.encode_section(text.substr(pos, end - pos), out, md);
    if (k < 0) break;
    out.push_back(im.added[static_cast<size_t>(k)].id);
    pos = me;
  }
  if (add_special) out.insert(out.end(), im.suffix_ids.begin(), im.suffix_ids.end());
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const std::string& s = token_string(id);
  if (impl_->added_by_id.count(id)) return s;
  // Each character of the byte alphabet stands for one byte; a token with any other character is taken
  // as its own UTF-8 (as HF's ByteLevel decoder does).
  const ByteAlphabet& a = alphabet();
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const int n = utf8_step(s, i);
    if (n <= 0) return s;
    auto it = a.cp_to_byte.find(utf8_decode(s, i, n));
    if (it == a.cp_to_byte.end()) return s;
    out += static_cast<char>(it->second);
    i += static_cast<size_t>(n);
  }
  return out;
}

const std::string& Tokenizer::token_string(int32_t id) const {
  if (id < 0 || id >= vocab_size() || impl_->vocab[static_cast<size_t>(id)].empty()) {
    throw UsageError("token id " + std::to_string(id) + " is not in the vocabulary of " + impl_->source +
                     " (size " + std::to_string(vocab_size()) + ")");
  }
  return impl_->vocab[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return utf8_lossy(bytes);
}

std::optional<int32_t> Tokenizer::find_token(std::string_view s) const {
  auto it = impl_->vocab_index.find(std::string(s));
  if (it == impl_->vocab_index.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->vocab.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::adds_bos() const { return !impl_->prefix_ids.empty(); }
bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
const std::string& Tokenizer::source() const { return impl_->source; }

std::string Tokenizer::describe() const {
  const Impl& im = *impl_;
  std::ostringstream o;
  o << im.source << ": byte-level BPE, " << im.vocab.size() << " tokens, " << im.n_merges << " merges, pre-tokenizer "
    << im.pre_name << " [";
  for (size_t i = 0; i < im.splits.size(); ++i) o << (i ? ", " : "") << im.splits[i].name;
  o << "], " << im.added.size() << " added tokens";
  if (im.bos >= 0) o << ", bos " << im.bos << (im.prefix_ids.empty() ? " (not added)" : " (added)");
  if (im.eos >= 0) o << ", eos " << im.eos;
  if (im.ignore_merges) o << ", ignore_merges";
  if (im.nfc) o << ", NFC";
  return o.str();
}

// ---------------------------------------------------------------- StreamDecoder

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return {};
  pending_ += tok_.token_bytes(id);
  size_t tail = 0;
  const size_t ok = utf8_valid_prefix(pending_, &tail);
  if (ok + tail == pending_.size()) {
    std::string out = pending_.substr(0, ok);
    pending_.erase(0, ok);
    return out;
  }
  // Invalid bytes inside: emit everything up to the incomplete tail, repaired.
  size_t keep = 0;
  for (size_t k = 1; k <= 3 && k <= pending_.size(); ++k) {
    size_t t = 0;
    const std::string_view last = std::string_view(pending_).substr(pending_.size() - k);
    if (utf8_valid_prefix(last, &t) == 0 && t == k) keep = k;
  }
  std::string out = utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace minfer
