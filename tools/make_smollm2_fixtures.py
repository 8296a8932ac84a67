#!/usr/bin/env python3
"""tools/make_smollm2_fixtures.py: HF transformers' own view of the real model, SmolLM2-135M-Instruct
(Q4_1 GGUF, fetched by scripts/fetch_smollm2.sh), as parity fixtures for minfer.

transformers loads the GGUF itself (its GGUF integration dequantizes every tensor through the `gguf`
package and undoes the llama converter's Q/K permutation), in fp32 with eager attention, and its
tokenizer from the same file. For each prompt (ChatML-formatted through the tokenizer's chat template,
and one plain text) this writes to OUT/expected.json: the prompt ids, HF's fp32 logits at the last
NPOS positions restricted to a fixed index set (every STRIDE-th vocabulary id plus the top 32 of that
position; the full 49152-wide rows would be 190 KB each), and HF's greedy continuation of 32 tokens.
tests/cpu/test_smollm2.cpp checks minfer's reference forward against them (and skips, saying so, when
the model file is not in the cache).

Usage: python3 tools/make_smollm2_fixtures.py --model models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
       [--out tests/fixtures/smollm2]
Runs on CPU; needs torch, transformers, gguf (pip).
"""
import argparse
import json
import os
import sys

import gguf
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

NPOS = 3
STRIDE = 48
TOPK = 32
NEW_TOKENS = 32


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="path of SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default="tests/fixtures/smollm2", help="output folder (default %(default)s)")
    a = ap.parse_args()
    if not os.path.isfile(a.model):
        sys.exit(f"make_smollm2_fixtures.py: {a.model}: no such file (run scripts/fetch_smollm2.sh)")
    d, f = os.path.split(os.path.abspath(a.model))
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    chats = [[{"role": "user", "content": "What is the capital of France?"}],
             [{"role": "user", "content": "Write a haiku about the sea."}]]
    prompts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    prompts.append("The quick brown fox jumps over the lazy dog. In the beginning")
    cases = []
    for text in prompts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
            gen = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                 attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        rows = []
        for pos in range(len(ids) - NPOS, len(ids)):
            row = logits[pos]
            idx = sorted(set(range(0, row.numel(), STRIDE)) | set(torch.topk(row, TOPK).indices.tolist()))
            rows.append({"position": pos, "index": idx, "logits": [float(row[i]) for i in idx],
                         "top": torch.topk(row, TOPK).indices.tolist()})
        cases.append({"text": text, "ids": ids, "positions": rows,
                      "greedy": gen[0, len(ids):].tolist(),
                      "greedy_text": tok.decode(gen[0, len(ids):])})
    os.makedirs(a.out, exist_ok=True)
    out = {"model": os.path.basename(a.model), "transformers": transformers.__version__,
           "torch": torch.__version__, "gguf": getattr(gguf, "__version__", "unknown"),
           "dtype": "float32", "cases": cases}
    path = os.path.join(a.out, "expected.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    os.replace(path + ".tmp", path)
    for c in cases:
        print(f"{len(c['ids'])} ids -> {c['greedy_text']!r}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
