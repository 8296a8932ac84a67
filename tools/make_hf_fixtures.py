#!/usr/bin/env python3
"""tools/make_hf_fixtures.py: tiny random HF transformers models, one per family, with HF's own logits.

For each family (llama, qwen2, qwen3, qwen3_moe, mixtral, olmoe) this builds a tiny model with
transformers itself (config class + AutoModelForCausalLM.from_config, fp32, eager attention), perturbs
every norm weight and bias away from its init (1s and 0s) with a fixed seed, saves it with
save_pretrained (safetensors) to OUT/<family>/, and writes OUT/<family>/expected.json: a few seeded
token sequences (lengths 1, 5, 19) with HF's fp32 logits at every position, plus the versions used.
tests/cpu/test_hf_fixtures.cpp compares minfer's reference forward against these logits.

Sizes: hidden 64, 2 layers, 4 heads, 2 KV heads (olmoe 4), head_dim 16, vocab 128, intermediate 96,
MoE 4 experts top-2 with expert intermediate 32. Each fixture directory stays well under 2 MB.

Usage: python3 tools/make_hf_fixtures.py --out tests/fixtures [--families llama qwen2 ...]
Runs on CPU (no GPU needed); needs torch and transformers.
"""
import argparse
import json
import os
import shutil
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

FAMILIES = ["llama", "qwen2", "qwen3", "qwen3_moe", "mixtral", "olmoe"]
SEQ_LENGTHS = [1, 5, 19]
VOCAB = 128
SEED = 20261101
MAX_FIXTURE_BYTES = 2 * 1024 * 1024
TF_MAJOR = int(transformers.__version__.split(".")[0])

# Shared by every family. initializer_range is raised from HF's 0.02 so that logits, attention and
# router scores are far from uniform (a weak signal would hide errors under a relative bound).
COMMON = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=VOCAB,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    initializer_range=0.15,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    use_cache=True,
)

MOE = dict(num_experts_per_tok=2)


def rope_kwargs(theta, scaling=None):
    """rope_theta (+ rope_scaling) in the spelling of the installed transformers (5.x: rope_parameters)."""
    if TF_MAJOR >= 5:
        params = {"rope_type": "default", "rope_theta": theta}
        if scaling:
            params.update(scaling)
        return dict(rope_parameters=params)
    out = dict(rope_theta=theta)
    if scaling:
        out["rope_scaling"] = dict(scaling)
    return out


def family_kwargs(family):
    """Config arguments of each family, on top of COMMON."""
    if family == "llama":
        # llama3 scaling with a small original context so that it changes the frequencies of head_dim 16:
        # wavelengths above 32 are divided by 8, those between 8 and 32 are blended.
        scaling = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                       original_max_position_embeddings=32)
        return dict(intermediate_size=96, attention_bias=False, mlp_bias=False, **rope_kwargs(10000.0, scaling))
    if family == "qwen2":
        return dict(intermediate_size=96, tie_word_embeddings=True, use_sliding_window=False,
                    **rope_kwargs(1000000.0))
    if family == "qwen3":
        return dict(intermediate_size=96, attention_bias=False, use_sliding_window=False,
                    **rope_kwargs(1000000.0))
    if family == "qwen3_moe":
        return dict(intermediate_size=96, moe_intermediate_size=32, num_experts=4, decoder_sparse_step=1,
                    mlp_only_layers=[], norm_topk_prob=True, attention_bias=False, use_sliding_window=False,
                    output_router_logits=False, **MOE, **rope_kwargs(1000000.0))
    if family == "mixtral":
        # Mixtral's intermediate_size is the expert FFN width.
        return dict(intermediate_size=32, num_local_experts=4, sliding_window=None, output_router_logits=False,
                    **MOE, **rope_kwargs(1000000.0))
    if family == "olmoe":
        # OLMoE's intermediate_size is the expert FFN width; its q/k norms span the whole projection.
        return dict(intermediate_size=32, num_experts=4, num_key_value_heads=4, norm_topk_prob=False,
                    clip_qkv=None, output_router_logits=False, **MOE, **rope_kwargs(10000.0))
    raise SystemExit(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")


def build_config(family):
    kw = dict(COMMON)
    kw.update(family_kwargs(family))
    cfg = AutoConfig.for_model(family, **kw)
    # The checkpoint's storage dtype, as config.json records it ("dtype" in 5.x, "torch_dtype" before).
    if TF_MAJOR >= 5:
        cfg.dtype = torch.float32
    else:
        cfg.torch_dtype = torch.float32
    return cfg


def perturb_norms_and_biases(model, gen):
    """Moves every norm weight (init 1) and bias (init 0) to seeded random values, so they are tested."""
    touched = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1.0 + 0.25 * torch.randn(p.shape, generator=gen))
                touched.append(name)
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                touched.append(name)
    return touched


def build_model(family):
    torch.manual_seed(SEED + FAMILIES.index(family))
    cfg = build_config(family)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    model = model.to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED + 100 + FAMILIES.index(family))
    touched = perturb_norms_and_biases(model, gen)
    if not touched:
        raise SystemExit(f"{family}: found no norm weights to perturb (parameter names changed?)")
    if family == "qwen2" and not any(n.endswith(".bias") for n in touched):
        raise SystemExit("qwen2: expected q/k/v biases")
    return model


def sequences(family):
    gen = torch.Generator().manual_seed(SEED + 200 + FAMILIES.index(family))
    return [torch.randint(0, VOCAB, (n,), generator=gen) for n in SEQ_LENGTHS]


def logits_of(model, ids):
    """HF's fp32 logits for every position of one sequence: (T, V) as nested lists of Python floats."""
    with torch.no_grad():
        out = model(input_ids=ids[None, :], use_cache=False)
    logits = out.logits[0].to(torch.float32)
    if not torch.isfinite(logits).all():
        raise SystemExit("non-finite logits")
    return [[float(x) for x in row] for row in logits.tolist()]


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def saved_tensor_names(path):
    from safetensors import safe_open

    names = {}
    for f in sorted(os.listdir(path)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(path, f), framework="pt") as st:
                for n in st.keys():
                    names[n] = list(st.get_slice(n).get_shape())
    return names


def make_fixture(family, out_root):
    out = os.path.join(out_root, family)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model = build_model(family)
    model.save_pretrained(out)
    seqs = sequences(family)
    expected = {
        "family": family,
        "model_type": model.config.model_type,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "vocab_size": VOCAB,
        "note": "HF fp32 logits, eager attention, CPU; every position of each sequence run as one forward",
        "sequences": [{"tokens": [int(t) for t in ids.tolist()], "logits": logits_of(model, ids)} for ids in seqs],
    }
    with open(os.path.join(out, "expected.json.tmp"), "w") as f:
        json.dump(expected, f)
    os.replace(os.path.join(out, "expected.json.tmp"), os.path.join(out, "expected.json"))
    check_reload(out, seqs, expected)
    size = dir_bytes(out)
    if size > MAX_FIXTURE_BYTES:
        raise SystemExit(f"{family}: fixture is {size} bytes, over the {MAX_FIXTURE_BYTES} limit")
    print(f"{family}: {out} ({size} bytes), tensors:")
    for name, shape in saved_tensor_names(out).items():
        print(f"  {name} {shape}")
    return size


def check_reload(out, seqs, expected):
    """The saved files alone reproduce the logits (nothing lives only in memory)."""
    again = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", **dtype_kw()).eval()
    for ids, want in zip(seqs, expected["sequences"]):
        got = torch.tensor(logits_of(again, ids), dtype=torch.float64)
        ref = torch.tensor(want["logits"], dtype=torch.float64)
        err = (got - ref).norm() / ref.norm()
        if err > 1e-6:
            raise SystemExit(f"{out}: reloaded model differs from the saved logits (rel err {err:.3g})")


def dtype_kw():
    return {"dtype": torch.float32} if TF_MAJOR >= 5 else {"torch_dtype": torch.float32}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output root, e.g. tests/fixtures")
    ap.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    args = ap.parse_args()
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}", file=sys.stderr)
    for fam in args.families:
        make_fixture(fam, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
