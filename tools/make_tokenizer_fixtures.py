#!/usr/bin/env python3
"""tools/make_tokenizer_fixtures.py: HF `tokenizers` encodings that minfer's byte-level BPE tokenizer
(engine/core/tokenizer) must reproduce id for id (tests/cpu/test_tokenizer.cpp).

Writes to OUT (default tests/fixtures/tokenizer):
  cases.json            the texts: multilingual, emoji, code, whitespace runs, Unicode spaces,
                        contractions, numbers, special tokens inside text, ...
  <name>/tokenizer.json three small tokenizers trained here with `tokenizers` (BPE on a fixed corpus),
                        one per pre-tokenizer family: llama3 (Split with Llama-3's regex + ByteLevel
                        without regex, ignore_merges, a BOS template), qwen2 (Qwen2's regex, NFC, merges
                        saved as pairs), gpt2 (ByteLevel with its own regex and add_prefix_space, an
                        lstrip/rstrip added token and a single_word one)
  <name>/expected.json  for every case: ids with and without the post-processor's specials, the
                        decoded text with and without special tokens
  smollm2/expected.json the real model's tokenizer (--gguf SmolLM2-135M-Instruct.Q4_1.gguf): its
                        vocabulary and merges from the GGUF under SmolLM2's own pipeline (digits split
                        one by one, then GPT-2's ByteLevel regex), and, for comparison, what
                        transformers' GGUF loader builds from the same file ("hf_gguf_ids", which has
                        no digit split)
Nothing of the model is written (ids only).

Usage: python3 tools/make_tokenizer_fixtures.py [--gguf models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf]
       [--out tests/fixtures/tokenizer]
Needs: tokenizers, transformers, gguf (pip).
"""
import argparse
import json
import os
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CASES = [
    ("empty", ""),
    ("space", " "),
    ("ascii", "Hello world! The quick brown fox jumps over the lazy dog."),
    ("leading_space", " Hello world"),
    ("contractions", "I'm sure they'll say it's fine; DON'T you think? We'VE seen y'all's 'quotes'."),
    ("numbers", "In 2024, 1234567 people paid $3.14159 each: 1,000,000 total (0x1F, 1e-3, 007)."),
    ("whitespace_runs", "a  b   c    d\t\te\n\nf\n\n\n  g \n h   \n\n\ti\r\nj\r\n\r\n   "),
    ("trailing_spaces", "trailing   "),
    ("only_newlines", "\n\n\n"),
    ("tabs_code", "def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n\treturn -x\n"),
    ("python", "class Foo(Bar):\n    def __init__(self, a: int = 3) -> None:\n        self.a = [i for i in range(a)]\n"),
    ("cpp", "template <typename T>\nstd::vector<T> f(const T* p, size_t n) {\n  return {p, p + n};  // copy\n}\n"),
    ("json", '{"key": [1, 2.5, "x\\ny"], "nested": {"a": null, "b": true}}'),
    ("url", "See https://example.com/path?q=1&r=two#frag or mailto:someone@example.org."),
    ("german", "Größenwahn über Ärger: Straße, Fußgänger, Mädchen."),
    ("french", "Ça m'étonne qu'il ait été là-bas à Noël, où l'œuvre était exposée."),
    ("russian", "Привет, мир! Съешь же ещё этих мягких французских булок."),
    ("greek", "Γειά σου Κόσμε· ξεσκεπάζω την ψυχοφθόρα βδελυγμία."),
    ("chinese", "我能吞下玻璃而不伤身体。你好，世界！2024年"),
    ("japanese", "私はガラスを食べられます。それは私を傷つけません。カタカナとひらがな"),
    ("korean", "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요."),
    ("arabic", "أنا قادر على أكل الزجاج و هذا لا يؤلمني. ١٢٣"),
    ("hebrew", "אני יכול לאכול זכוכית וזה לא מזיק לי."),
    ("hindi", "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती. १२३"),
    ("thai", "ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ"),
    ("vietnamese", "Tôi có thể ăn thủy tinh mà không hại gì."),
    ("emoji", "I ❤️ 🍕! 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 😀😃😄 ✔"),
    ("symbols", "∀x∈ℝ: x² ≥ 0 → √(x²) = |x|; ½ ≠ ⅓; ©®™ §¶ «»‹› — – …"),
    ("unicode_spaces", "a\u00a0b\u3000c\u2003d\u2028e\u2029f\u0085g\u180eh\u200bi\u202fj\u205fk"),
    ("nfd", "Cafe\u0301 vs Caf\u00e9, n\u0303 vs \u00f1"),
    ("mixed_scripts", "abcАБВ123αβγ中文ｆｕｌｌｗｉｄｔｈ"),
    ("long_word", "supercalifragilisticexpialidocious" * 8),
    ("repeated_char", "a" * 300 + " " + "=" * 100 + "!" * 50),
    ("punct_runs", "Wait... what?!?! (yes) [no] {maybe} <html> </html> --- ___ *** ### @@ $$ %% ^^ && ||"),
    ("apostrophes", "rock'n'roll 'tis ’curly’ ‘quotes’ “double” don't DON'T Don'T"),
    ("special_chatml", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"),
    ("special_adjacent", "x<|im_end|>y<|im_start|><|im_end|>z"),
    ("special_partial", "<|im_start <|im_end| <|im_start|"),
    ("special_llama3", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"),
    ("special_spaces", "a <|endoftext|> b  <|endoftext|>  c"),
    ("added_flags", "Fill the <mask> here and<mask>there, [WORD] x[WORD]y [WORD]"),
    ("control_chars", "bell\x07 null-ish \x01\x02 esc\x1b[0m del\x7f"),
]

CORPUS_EXTRA = """The Zen of Python, by Tim Peters. Beautiful is better than ugly. Explicit is better than implicit.
Simple is better than complex. Complex is better than complicated. Flat is better than nested.
Sparse is better than dense. Readability counts. Special cases aren't special enough to break the rules.
Although practicality beats purity. Errors should never pass silently. Unless explicitly silenced.
In the face of ambiguity, refuse the temptation to guess. There should be one-- and preferably only one
--obvious way to do it. Now is better than never. Namespaces are one honking great idea -- let's do more!
"""


def corpus():
    texts = [t for _, t in CASES] * 3 + [CORPUS_EXTRA] * 5
    for n in range(0, 2000, 7):
        texts.append(f"item {n}: value {n * 37 % 1000}, ratio {n / 7:.3f}")
    return texts


def train(pre, specials, *, vocab_size=1200, normalizer=None, post=None, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                             special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=tr)
    if post is not None:
        tok.post_processor = post(tok)
    return tok


def build_llama3():
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    post = lambda t: processors.Sequence([  # noqa: E731
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])])
    return train(pre, specials, post=post, ignore_merges=True), {"bos_token": "<|begin_of_text|>",
                                                                   "eos_token": "<|eot_id|>"}


def build_qwen2():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    return train(pre, specials, normalizer=normalizers.NFC()), {"eos_token": "<|im_end|>"}


def build_gpt2():
    specials = ["<|endoftext|>"]
    pre = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok = train(pre, specials)
    tok.add_tokens([tokenizers.AddedToken("<mask>", lstrip=True, rstrip=True, special=False, normalized=False),
                    tokenizers.AddedToken("[WORD]", single_word=True, special=False, normalized=False)])
    return tok, {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}


def expected_for(tok, texts):
    rows = []
    for name, text in texts:
        with_sp = tok.encode(text, add_special_tokens=True).ids
        without = tok.encode(text, add_special_tokens=False).ids
        rows.append({"name": name, "ids": with_sp, "ids_no_special": without,
                     "decoded": tok.decode(with_sp, skip_special_tokens=False),
                     "decoded_skip_special": tok.decode(with_sp, skip_special_tokens=True)})
    return rows


def smollm2_tokenizer(gguf_path):
    """SmolLM2's own tokenizer pipeline over the GGUF's vocabulary and merges, as an HF Tokenizer."""
    import gguf
    r = gguf.GGUFReader(gguf_path)

    def field(k):
        f = r.fields[k]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    tokens = field("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges")]
    ttype = r.fields["tokenizer.ggml.token_type"]
    types = [int(ttype.parts[i][0]) for i in ttype.data]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([tokenizers.AddedToken(tokens[i], special=True, normalized=False)
                            for i, t in enumerate(types) if t == 3])
    return tok


def smollm2(gguf_path):
    from transformers import AutoTokenizer
    tok = smollm2_tokenizer(gguf_path)
    d, f = os.path.split(os.path.abspath(gguf_path))
    hf = AutoTokenizer.from_pretrained(d, gguf_file=f)
    rows = expected_for(tok, CASES)
    n_same = 0
    for row, (_, text) in zip(rows, CASES):
        row["hf_gguf_ids"] = hf(text, add_special_tokens=False)["input_ids"]
        n_same += row["hf_gguf_ids"] == row["ids_no_special"]
    return rows, n_same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default="models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    help="SmolLM2 GGUF for the real-model fixtures (skipped if absent)")
    ap.add_argument("--out", default="tests/fixtures/tokenizer", help="output folder (default %(default)s)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    meta = {"tokenizers_version": tokenizers.__version__, "generated_by": "python3 tools/make_tokenizer_fixtures.py"}
    with open(os.path.join(a.out, "cases.json"), "w", encoding="utf-8") as fh:
        json.dump({**meta, "cases": [{"name": n, "text": t} for n, t in CASES]}, fh, ensure_ascii=False, indent=1)
    for name, build in (("llama3", build_llama3), ("qwen2", build_qwen2), ("gpt2", build_gpt2)):
        tok, cfg = build()
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as fh:
            json.dump(cfg, fh, indent=1)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # what the test will read
        with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as fh:
            json.dump({**meta, "vocab_size": tok.get_vocab_size(), "cases": expected_for(tok, CASES)}, fh,
                      ensure_ascii=False)
        print(f"{name}: vocab {tok.get_vocab_size()}", file=sys.stderr)
    if os.path.isfile(a.gguf):
        rows, n_same = smollm2(a.gguf)
        d = os.path.join(a.out, "smollm2")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as fh:
            json.dump({**meta, "model": os.path.basename(a.gguf),
                       "pipeline": "Digits(individual_digits) + ByteLevel(use_regex) over the GGUF's vocab and merges",
                       "hf_gguf_same_cases": n_same, "cases": rows}, fh, ensure_ascii=False)
        print(f"smollm2: transformers' GGUF tokenizer agrees on {n_same}/{len(rows)} cases", file=sys.stderr)
    else:
        print(f"{a.gguf}: absent, smollm2 fixtures not written (run scripts/fetch_smollm2.sh)", file=sys.stderr)


if __name__ == "__main__":
    main()
