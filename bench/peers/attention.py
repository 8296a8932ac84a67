"""bench/peers/attention.py: PyTorch SDPA peers for the attention (prefill) sweep, in two variants:
torch-flash (SDPBackend.FLASH_ATTENTION, FlashAttention-2) and torch-cudnn (SDPBackend.CUDNN_ATTENTION).
B = batch, S = seqlen, nh/nkv = heads, hd = head_dim. Uniform batches only (ragged=0, prefix=0): SDPA
takes dense (B, nh, S, hd) tensors; ragged or chunked cases get a 'skipped' row. GQA through
enable_gqa=True; where a backend refuses it, K and V are expanded to nh heads before timing (the
row's status says so). Reference: float64 softmax(q k^T / sqrt(hd)) v on a sample of (batch, head,
query row) triples (first and last batch and head, up to 64 rows each), rounded to the storage dtype.
"""
import math
import sys

import torch
from torch.nn.attention import SDPBackend

import peer_common as pc

BACKENDS = {"torch-flash": SDPBackend.FLASH_ATTENTION, "torch-cudnn": SDPBackend.CUDNN_ATTENTION}


def sampled_reference(q, k, v, causal, dt, rows=64):
    """Float64 reference for sampled (b, h, rows); returns (index tuple, ref) for comparing."""
    b_n, nh, s_q, hd = q.shape
    nkv, s_k = k.shape[1], k.shape[2]
    bs = sorted({0, b_n - 1})
    hs = sorted({0, nh - 1})
    step = max(1, s_q // rows)
    qi = torch.arange(0, s_q, step, device=q.device)
    if qi[-1].item() != s_q - 1:
        qi = torch.cat([qi, torch.tensor([s_q - 1], device=q.device)])
    refs = []
    for b in bs:
        for h in hs:
            kv_h = h // (nh // nkv)
            qq = q[b, h, qi].double()                       # (r, hd)
            kk, vv = k[b, kv_h].double(), v[b, kv_h].double()  # (S_k, hd)
            s = qq @ kk.T / math.sqrt(hd)                    # (r, S_k)
            if causal:
                pos = qi.unsqueeze(1) + (s_k - s_q)
                s = s.masked_fill(torch.arange(s_k, device=q.device).unsqueeze(0) > pos, float("-inf"))
            refs.append((torch.softmax(s, -1) @ vv).to(dt))
    return (bs, hs, qi), refs


def make_build(variant):
    backend = BACKENDS[variant]

    def build(case, gen):
        ax, dt = case["axes"], pc.DTYPES[case["dtype"]]
        if ax.get("ragged", 0) or ax.get("prefix", 0):
            raise pc.Skip("SDPA peer takes uniform batches only (ragged=0, prefix=0)")
        b, s, nh, nkv, hd = ax["batch"], ax["seqlen"], ax["heads"], ax["kv_heads"], ax["head_dim"]
        causal = bool(ax["causal"])
        q = pc.random_input((b, nh, s, hd), dt, gen)   # (B, nh, S, hd)
        k = pc.random_input((b, nkv, s, hd), dt, gen)  # (B, nkv, S, hd)
        v = pc.random_input((b, nkv, s, hd), dt, gen)  # (B, nkv, S, hd)

        fn = pc.sdpa_fn(q, k, v, backend, is_causal=causal)
        (bs, hs, qi), refs = sampled_reference(q, k, v, causal, dt)

        def sampled_out():
            out = fn()
            return torch.cat([out[bb, hh, qi] for bb in bs for hh in hs])

        return sampled_out, fn, torch.cat(refs)

    return build


if __name__ == "__main__":
    sys.exit(pc.main_variants(__doc__, {name: make_build(name) for name in BACKENDS}))
