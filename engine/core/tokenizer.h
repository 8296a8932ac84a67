// engine/core/tokenizer.h: a byte-level BPE tokenizer (GPT-2 family: SmolLM2, Llama-3, Qwen2/Qwen3),
// loaded from GGUF metadata (tokenizer.ggml.*) or from an HF tokenizer.json.
//
// Encoding, the way HF `tokenizers` does it:
//   1. added tokens (specials such as <|im_start|>, and user-defined ones) are cut out of the text
//      first, leftmost-longest (lstrip / rstrip / single_word honoured); with parse_special = false the
//      special ones are treated as plain text;
//   2. each remaining section goes through the pre-tokenizer: a list of regex splits, each keeping both
//      the matches and the text between them as pieces ("Isolated"), applied in order (SmolLM2: digits
//      one by one, then GPT-2's pattern; Llama-3 / Qwen2: their patterns). The regexes are PCRE2 with
//      Unicode properties (\p{L}, \p{N}), linked statically;
//   3. each piece's bytes are mapped to GPT-2's printable byte alphabet and merged by BPE rank
//      (lowest rank first, leftmost on ties); with ignore_merges a piece that is a vocabulary entry as
//      a whole is taken as one token;
//   4. the post-processor's special tokens (a BOS) are added when add_special is true.
// Decoding maps tokens back to bytes; invalid UTF-8 is replaced by U+FFFD per maximal subpart (as
// Rust's from_utf8_lossy does). StreamDecoder emits text as soon as its UTF-8 is complete.
//
// Not supported, refused at load naming the file and the field: models other than BPE (WordPiece,
// Unigram), SentencePiece-style tokenizers (byte_fallback, Metaspace), pre-tokenizers other than
// Split / ByteLevel / Digits / Sequence, normalizers other than none and NFC. NFC (Qwen2/Qwen3) is
// applied to the text between added tokens (engine/core/unicode_nfc.h, Unicode 14 tables); HF tokenizers'
// NFC uses Unicode 9 data, so the two differ only where a character assigned after Unicode 9 meets
// combining marks.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minfer {

class GgufFile;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;      // control token (<|im_start|>): skipped by decode(skip_special = true)
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matched when not inside a word
};

class Tokenizer {
 public:
  // From a GGUF file's tokenizer.ggml.* keys (model "gpt2"; pre-tokenizer from tokenizer.ggml.pre).
  static Tokenizer from_gguf(const GgufFile& f);
  // From an HF tokenizer.json. The chat template, bos and eos come from tokenizer_config.json in the
  // same directory when it exists.
  static Tokenizer from_hf_json(const std::string& path);
  // A model spec: a .gguf file, or an HF model directory holding tokenizer.json. Presets have no
  // tokenizer: throws UsageError saying so.
  static Tokenizer load(const std::string& model_spec);

  struct Impl;  // opaque
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Throws UsageError if text is not valid UTF-8 (naming the byte offset).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;
  // Ids outside the vocabulary throw UsageError.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The bytes one token stands for (an added token: its content). May be a partial UTF-8 sequence.
  std::string token_bytes(int32_t id) const;
  // The token's string as stored in the vocabulary (byte-level alphabet, "Ġthe").
  const std::string& token_string(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view vocab_string) const;  // exact vocabulary string

  int32_t vocab_size() const;  // one past the largest id
  int32_t bos_id() const;      // -1 if none
  int32_t eos_id() const;      // -1 if none
  bool adds_bos() const;       // whether encode(add_special = true) prepends bos
  bool is_special(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const;
  const std::string& chat_template() const;  // "" if the source has none
  const std::string& source() const;         // the file it came from
  std::string describe() const;              // one line: source, vocab, merges, pre-tokenizer, specials

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class StreamDecoder;
};

// Turns a stream of token ids into text pieces, holding back bytes until their UTF-8 is complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);  // the text completed by this token (may be empty)
  std::string flush();           // what is left (incomplete UTF-8 becomes U+FFFD)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

// Length of the longest prefix of s that is complete, valid UTF-8 up to a possibly incomplete (but so
// far valid) final sequence; *incomplete_tail gets the byte count of that tail.
size_t utf8_valid_prefix(std::string_view s, size_t* incomplete_tail);
// s with each maximal invalid UTF-8 subpart replaced by U+FFFD.
std::string utf8_lossy(std::string_view s);

}  // namespace minfer
