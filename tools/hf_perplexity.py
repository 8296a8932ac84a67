#!/usr/bin/env python3
"""tools/hf_perplexity.py: perplexity of a GGUF model under HF transformers (fp32, CPU, eager attention)
over a text file: the reference that `minfer perplexity` (CPU reference and GPU engine) is compared with.

transformers loads the GGUF itself (dequantizing every tensor to fp32 through the `gguf` package) and
its tokenizer from the same file, as tools/make_smollm2_fixtures.py does.

Tokenization (--tokenization): transformers' GGUF loader builds a byte-level BPE tokenizer whose
pre-tokenizer is plain GPT-2 ByteLevel; it ignores the file's `tokenizer.ggml.pre`. For SmolLM2 that
is "smollm", whose own pipeline (SmolLM2's tokenizer.json: Sequence[Digits(individual_digits=true),
ByteLevel]; llama.cpp's "smollm" pre-type) first cuts every digit out on its own. The two agree on
plain words but not around numbers after whitespace: "\n  12 And" is "\n ", " ", "1", "2", " And"
under the loader and "\n  ", "1", "2", " And" under the model's pipeline. --tokenization model (the
default) restores the model's pipeline (Digits(individual_digits=true) ahead of the loader's
ByteLevel, when `tokenizer.ggml.pre` is one of DIGIT_SPLIT_PRE); --tokenization hf-gguf uses the
loader's tokenizer unchanged. minfer's tokenizer (engine/core/tokenizer) follows the model's pipeline.

Definition (minfer's C++ side implements exactly this):
  1. text   = the file's bytes, decoded as UTF-8 (no normalization, no stripping).
  2. ids    = tokenizer(text, add_special_tokens=False)["input_ids"]: no BOS, no EOS (the tokenizer
     as chosen by --tokenization, above).
  3. If --max-tokens M is given, ids = ids[:M]. n_tokens = len(ids).
  4. Windows: ids is cut into consecutive, non-overlapping windows of --ctx C tokens,
     ids[0:C], ids[C:2C], ...; the last window may be shorter; a window of fewer than 2 tokens is
     dropped. Each window is a separate forward pass from an empty cache (positions 0..len-1); no
     context is carried from one window into the next.
  5. In a window w[0..L-1], every token after the first is predicted from the tokens before it in the
     same window: nll_j = -log softmax(logits(w[0..j-1]))[w[j]] for j = 1..L-1 (natural log, the
     softmax over the full vocabulary, from fp32 logits). w[0] is not predicted.
  6. n_predicted = sum over kept windows of (L - 1); nll_sum = the sum of all nll_j (accumulated in
     float64); mean_nll = nll_sum / n_predicted; ppl = exp(mean_nll).
  7. bits_per_byte = nll_sum / (ln 2 * n_bytes), where n_bytes is the UTF-8 length of the text that
     the n_tokens ids cover (the sum of their tokens' byte lengths; the whole file when nothing was
     cut by --max-tokens). (The first token of each window is covered but not predicted; the figure
     is still over all covered bytes.)
  token_ids_sha256 = sha256 of the ids (after step 3) written as decimal numbers joined by "," (no
  spaces, no trailing comma), UTF-8.

Usage: python3 tools/hf_perplexity.py --model-dir models/smollm2 --gguf SmolLM2-135M-Instruct.Q4_1.gguf
       --text tests/fixtures/text/ruth_kjv.txt [--ctx 512] [--max-tokens N] [--ids] [--json OUT]
   or, for tests/fixtures/smollm2/perplexity.json (the list of the fixed configurations in FIXTURE_RUNS):
       python3 tools/hf_perplexity.py --model-dir models/smollm2 --gguf SmolLM2-135M-Instruct.Q4_1.gguf
       --text tests/fixtures/text/ruth_kjv.txt --fixture --json tests/fixtures/smollm2/perplexity.json
Runs on CPU; needs torch, transformers, gguf (pip).
"""
import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import shlex
import sys

import gguf
import torch
import transformers
from tokenizers import pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

# (ctx, max_tokens or None for the whole text, include the ids in the entry, tokenization)
FIXTURE_RUNS = [(128, 256, True, "model"), (512, None, False, "model"), (1024, None, False, "model"),
                (128, 256, True, "hf-gguf"), (512, None, False, "hf-gguf"), (1024, None, False, "hf-gguf")]
# `tokenizer.ggml.pre` values whose pipeline splits digits one by one before the GPT-2 regex (llama.cpp).
DIGIT_SPLIT_PRE = ("smollm", "starcoder", "refact", "codeshell")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_pre(path):
    """The GGUF's tokenizer.ggml.pre string, or "" when it has none."""
    f = gguf.GGUFReader(path).fields.get("tokenizer.ggml.pre")
    return bytes(f.parts[f.data[0]]).decode() if f is not None else ""


def ids_of(tok, text, tokenization, pre):
    """The text's ids under the loader's tokenizer, or with the model's digit split put back in."""
    bt = tok.backend_tokenizer
    saved = bt.pre_tokenizer
    if tokenization == "model" and pre in DIGIT_SPLIT_PRE:
        bt.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), saved])
    try:
        return tok(text, add_special_tokens=False)["input_ids"]
    finally:
        bt.pre_tokenizer = saved


def covered_bytes(tok, text, ids):
    """UTF-8 length of the text the ids cover; checks that they decode back to that prefix."""
    prefix = tok.decode(ids, clean_up_tokenization_spaces=False)
    if not text.startswith(prefix):
        sys.exit("hf_perplexity.py: the tokens do not decode back to a prefix of the text; "
                 "the byte count would be wrong")
    return len(prefix.encode("utf-8"))


def perplexity(model, tok, path, text, all_ids, ctx, max_tokens, with_ids):
    ids = all_ids if max_tokens is None else all_ids[:max_tokens]
    nll_sum = 0.0
    n_predicted = 0
    n_windows = 0
    for start in range(0, len(ids), ctx):
        w = ids[start:start + ctx]
        if len(w) < 2:
            continue
        with torch.no_grad():
            logits = model(torch.tensor([w])).logits[0].float()
        logp = torch.log_softmax(logits[:-1], dim=-1)
        target = torch.tensor(w[1:])
        nll = -logp.gather(1, target[:, None])[:, 0]
        nll_sum += float(nll.double().sum())
        n_predicted += len(w) - 1
        n_windows += 1
    if n_predicted == 0:
        sys.exit(f"hf_perplexity.py: {path}: nothing to predict ({len(ids)} tokens)")
    n_bytes = covered_bytes(tok, text, ids)
    mean = nll_sum / n_predicted
    r = {"text_file": path, "text_sha256": sha256_file(path), "n_bytes": n_bytes,
         "file_bytes": os.path.getsize(path), "n_tokens": len(ids), "ctx": ctx,
         "max_tokens": max_tokens, "n_windows": n_windows, "n_predicted": n_predicted,
         "nll_sum": nll_sum, "mean_nll": mean, "ppl": math.exp(mean),
         "bits_per_byte": nll_sum / (math.log(2) * n_bytes),
         "token_ids_sha256": hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest(),
         "first_ids": ids[:16]}
    if with_ids:
        r["ids"] = ids
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True, help="folder holding the .gguf")
    ap.add_argument("--gguf", required=True, help="file name of the .gguf inside --model-dir")
    ap.add_argument("--text", required=True, help="the text file (UTF-8)")
    ap.add_argument("--ctx", type=int, default=512, help="window length in tokens (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=None, help="use only the first N tokens (default: all)")
    ap.add_argument("--tokenization", choices=("model", "hf-gguf"), default="model",
                    help="the model's own pre-tokenizer (default) or transformers' GGUF loader's as it is")
    ap.add_argument("--ids", action="store_true", help="include the full list of token ids in the JSON")
    ap.add_argument("--fixture", action="store_true",
                    help="run every configuration in FIXTURE_RUNS (ignores --ctx, --max-tokens, --ids, --tokenization) "
                         "and write a JSON list of their results")
    ap.add_argument("--json", metavar="OUT", help="write the result(s) here")
    a = ap.parse_args()
    path = os.path.join(a.model_dir, a.gguf)
    if not os.path.isfile(path):
        sys.exit(f"hf_perplexity.py: {path}: no such file (run scripts/fetch_smollm2.sh)")
    if a.ctx < 2:
        sys.exit("hf_perplexity.py: --ctx must be at least 2")
    if a.max_tokens is not None and a.max_tokens < 2:
        sys.exit("hf_perplexity.py: --max-tokens must be at least 2")
    with open(a.text, "rb") as fh:
        text = fh.read().decode("utf-8")
    d = os.path.abspath(a.model_dir)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=a.gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=a.gguf, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    pre = gguf_pre(path)
    runs = FIXTURE_RUNS if a.fixture else [(a.ctx, a.max_tokens, a.ids, a.tokenization)]
    all_ids = {t: ids_of(tok, text, t, pre) for t in sorted({r[3] for r in runs})}
    common = {"generated_by": "python3 " + " ".join(shlex.quote(x) for x in sys.argv),
              "definition": "tools/hf_perplexity.py (docstring)", "model": a.gguf, "model_sha256": sha256_file(path), "dtype": "float32",
              "attn_implementation": "eager", "transformers_version": transformers.__version__,
              "torch_version": torch.__version__, "gguf_version": importlib.metadata.version("gguf"), "gguf_tokenizer_pre": pre}
    results = []
    for ctx, max_tokens, with_ids, tokenization in runs:
        r = perplexity(model, tok, a.text, text, all_ids[tokenization], ctx, max_tokens, with_ids)
        r["tokenization"] = tokenization
        r["digit_split"] = tokenization == "model" and pre in DIGIT_SPLIT_PRE
        r.update(common)
        if "ids" in r:
            r["ids"] = r.pop("ids")  # last, after the short fields
        results.append(r)
        print(f"{os.path.basename(a.text)} [{tokenization}]: {r['n_tokens']} tokens ({r['n_bytes']} bytes), ctx {ctx}, "
              f"{r['n_windows']} windows, {r['n_predicted']} predicted: mean nll {r['mean_nll']:.6f}, "
              f"ppl {r['ppl']:.6f}, {r['bits_per_byte']:.6f} bits/byte")
    if a.json:
        out = results if a.fixture else results[0]
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json + ".tmp", "w") as fh:
            json.dump(out, fh, indent=1)
            fh.write("\n")
        os.replace(a.json + ".tmp", a.json)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
