// tests/fuzz/fuzz_tokenizer.cpp: libFuzzer target for the tokenizer (engine/core/tokenizer.h) on the
// fixture tokenizers (tests/fixtures/tokenizer/{llama3,gpt2,qwen2}). Any input: encode either refuses it
// (UsageError: not valid UTF-8) or returns ids that decode back to the input exactly (llama3: no
// normalizer; gpt2 after its prefix space) or to its NFC form (qwen2), with every id in the vocabulary.
// The stream decoder's pieces join to the same text. Nothing else may throw, crash or leak.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/core/error.h"
#include "engine/core/tokenizer.h"
#include "engine/core/unicode_nfc.h"

namespace {

const minfer::Tokenizer& tok(const char* name) {
  static const std::string dir = std::string(MINFER_SOURCE_DIR) + "/tests/fixtures/tokenizer/";
  static const minfer::Tokenizer llama3 = minfer::Tokenizer::from_hf_json(dir + "llama3/tokenizer.json");
  static const minfer::Tokenizer qwen2 = minfer::Tokenizer::from_hf_json(dir + "qwen2/tokenizer.json");
  return std::string(name) == "llama3" ? llama3 : qwen2;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const char* name : {"llama3", "qwen2"}) {
    const minfer::Tokenizer& t = tok(name);
    std::vector<int32_t> ids;
    try {
      ids = t.encode(text, false);
    } catch (const minfer::UsageError&) {
      size_t tail = 0;
      check(minfer::utf8_valid_prefix(text, &tail) != text.size() || tail != 0);  // refused only if invalid
      return 0;
    }
    for (int32_t id : ids) check(id >= 0 && id < t.vocab_size());
    const std::string want = std::string(name) == "qwen2" ? minfer::nfc(text) : text;
    check(t.decode(ids) == want);
    minfer::StreamDecoder sd(t);
    std::string joined;
    for (int32_t id : ids) joined += sd.push(id);
    joined += sd.flush();
    check(joined == want);
  }
  return 0;
}
