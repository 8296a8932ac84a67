#!/usr/bin/env python3
"""tools/bench_hf_tokenizer.py: the peer of bench/tokenizer/bench_tokenizer.cpp: HF `tokenizers` encoding
the same texts with the same tokenizers, one thread, warm (a warm-up encode first; HF caches words as
minfer does), the median of --repeats timed encodes of the whole text.

Tokenizers: smollm2 (built from the GGUF exactly as tools/make_tokenizer_fixtures.py builds SmolLM2's own
pipeline; skipped when the model is absent), llama3 and qwen2 (tests/fixtures/tokenizer/<name>/tokenizer.json).
Texts: english (tests/fixtures/text/ruth_kjv.txt), multilingual (cases.json joined), code (the code cases
repeated to ~20 KB) -- the same strings bench_tokenizer.cpp builds.

Usage: python3 tools/bench_hf_tokenizer.py --json OUT [--repeats 7] [--gguf PATH]
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))


def texts():
    with open(os.path.join(ROOT, "tests/fixtures/text/ruth_kjv.txt"), encoding="utf-8", newline="") as f:
        english = f.read()
    with open(os.path.join(ROOT, "tests/fixtures/tokenizer/cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    allt = "".join(c["text"] + "\n" for c in cases)
    code = "".join(c["text"] + "\n" for c in cases if c["name"] in ("python", "cpp", "tabs_code", "json"))
    rep = ""
    while len(rep.encode()) < 20000:
        rep += code
    return {"english": english, "multilingual": allt, "code": rep}


def load(name, gguf):
    if name == "smollm2":
        if not os.path.isfile(gguf):
            return None
        import make_tokenizer_fixtures as m
        return m.smollm2_tokenizer(gguf)
    return Tokenizer.from_file(os.path.join(ROOT, "tests/fixtures/tokenizer", name, "tokenizer.json"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--gguf", default=os.path.join(os.environ.get("MINFER_MODEL_CACHE", os.path.join(ROOT, "models")),
                                                   "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()
    rows = []
    tx = texts()
    for name in ("smollm2", "llama3", "qwen2"):
        tok = load(name, a.gguf)
        if tok is None:
            print(f"{name}: {a.gguf} absent, skipped", file=sys.stderr)
            continue
        for tname, text in tx.items():
            ids = tok.encode(text, add_special_tokens=False).ids  # warm-up
            times = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                tok.encode(text, add_special_tokens=False)
                times.append(time.perf_counter() - t0)
            sec = statistics.median(times)
            nb = len(text.encode("utf-8"))
            rows.append({"tokenizer": name, "text": tname, "text_bytes": nb, "tokens": len(ids),
                         "seconds": sec, "mb_per_s": nb / sec / 1e6, "tokens_per_s": len(ids) / sec})
            print(f"{name}/{tname}: {nb} bytes, {len(ids)} tokens, {nb / sec / 1e6:.2f} MB/s", file=sys.stderr)
    with open(a.json, "w") as f:
        json.dump({"impl": "hf_tokenizers", "tokenizers_version": tokenizers.__version__, "threads": 1,
                   "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
