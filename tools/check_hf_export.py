#!/usr/bin/env python3
"""tools/check_hf_export.py: checks that directories written by `minfer export` load in HF transformers.

For each DIR: AutoModelForCausalLM.from_pretrained(DIR) (eager attention), then
  - from_pretrained's loading info reports no missing, unexpected or mismatched keys (a missing key
    is a freshly initialised weight; an unexpected one is ignored);
  - saving the loaded model again gives back exactly the file's tensor names and values (so nothing
    was freshly initialised, dropped or altered, whatever layout conversion transformers applies);
  - a forward over a few tokens gives finite logits of shape (T, vocab).
Prints one line per directory and exits non-zero if any directory fails.

Usage: python3 tools/check_hf_export.py DIR [DIR ...]
"""
import json
import os
import sys
import tempfile

import torch
import transformers
from transformers import AutoModelForCausalLM

TF_MAJOR = int(transformers.__version__.split(".")[0])


def load(path):
    kw = {"attn_implementation": "eager", "output_loading_info": True}
    kw["dtype" if TF_MAJOR >= 5 else "torch_dtype"] = "auto"
    model, info = AutoModelForCausalLM.from_pretrained(path, **kw)
    return model.eval(), info


def loading_problems(info):
    problems = []
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        vals = list(info.get(key) or [])
        if vals:
            problems.append(f"{key}: {', '.join(str(v) for v in vals[:6])}{' ...' if len(vals) > 6 else ''}")
    return problems


def file_tensors(path):
    """name -> (file, name) for every tensor of a checkpoint directory (one file or shards)."""
    from safetensors import safe_open

    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        with safe_open(os.path.join(path, fn), framework="pt") as st:
            for n in st.keys():
                out[n] = os.path.join(path, fn)
    return out


def read_tensor(file, name):
    from safetensors import safe_open

    with safe_open(file, framework="pt") as st:
        return st.get_tensor(name)


def roundtrip_problems(model, path):
    """Saves the loaded model again and compares with the file, tensor by tensor.

    transformers converts some layouts on load (per-expert tensors fused into gate_up_proj, Mixtral's
    block_sparse_moe renamed) and converts them back on save, so the state_dict keys cannot be compared
    with the file's names directly. A re-save can: a file tensor the model dropped (unexpected key) is
    absent from it, a weight the file lacked (freshly initialised) is an extra name, and a tensor that
    was mangled on the way differs in value. Tied lm_head.weight is exempt both ways."""
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    orig = {n: f for n, f in file_tensors(path).items() if n not in tied}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        again = {n: f for n, f in file_tensors(tmp).items() if n not in tied}
        problems = []
        dropped = sorted(set(orig) - set(again))
        fresh = sorted(set(again) - set(orig))
        if fresh:
            problems.append(f"model weights not in the file (freshly initialised): {', '.join(fresh[:6])}")
        if dropped:
            problems.append(f"file tensors the model did not use: {', '.join(dropped[:6])}")
        changed = [n for n in sorted(set(orig) & set(again))
                   if not torch.equal(read_tensor(orig[n], n).float(), read_tensor(again[n], n).float())]
        if changed:
            problems.append(f"tensors changed by load + save: {', '.join(changed[:6])}")
    return problems


def forward_check(model):
    vocab = model.config.vocab_size
    ids = torch.tensor([[1 % vocab, 5 % vocab, 17 % vocab, vocab - 1, 3 % vocab]])
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
    if tuple(logits.shape) != (1, ids.shape[1], vocab):
        return f"logits shape {tuple(logits.shape)}, expected {(1, ids.shape[1], vocab)}"
    if not torch.isfinite(logits.float()).all():
        return "non-finite logits"
    if float(logits.float().abs().max()) == 0.0:
        return "logits are all zero"
    return None


def check_dir(path):
    """Returns a list of failure strings (empty: the directory passed)."""
    if not os.path.isdir(path):
        return ["not a directory"]
    try:
        model, info = load(path)
    except Exception as e:  # noqa: BLE001 - any loading failure is a failed check, reported on its line
        return [f"from_pretrained failed: {type(e).__name__}: {e}"]
    problems = loading_problems(info)
    problems += roundtrip_problems(model, path)
    err = forward_check(model)
    if err:
        problems.append(err)
    return problems


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    failed = 0
    for path in argv[1:]:
        problems = check_dir(path)
        if problems:
            failed += 1
            print(f"FAIL {path}: {'; '.join(problems)}")
        else:
            print(f"ok   {path}")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: "
          f"{len(argv) - 1 - failed} ok, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
