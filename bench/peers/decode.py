"""bench/peers/decode.py: PyTorch SDPA peers for the decode sweep, variants torch-flash
(SDPBackend.FLASH_ATTENTION) and torch-cudnn (SDPBackend.CUDNN_ATTENTION).
B = batch, L = kv_len (cached keys per sequence), nh/nkv = heads, hd = head_dim. One query token
per sequence attends to all L cached keys: q (B, nh, 1, hd), k/v (B, nkv, L, hd), contiguous.
Ragged batches (ragged=1) get a 'skipped' row (SDPA takes one length per batch); paged cases
(paged=1) are timed over a contiguous cache, since SDPA has no block table: compare those rows with
that in mind. GQA through enable_gqa=True, or K/V expanded to nh heads before timing where a
backend refuses it. Reference: float64, first and last sequence, every head, rounded to the dtype.
"""
import math
import sys

import torch
from torch.nn.attention import SDPBackend

import peer_common as pc

BACKENDS = {"torch-flash": SDPBackend.FLASH_ATTENTION, "torch-cudnn": SDPBackend.CUDNN_ATTENTION}


def make_build(variant):
    backend = BACKENDS[variant]

    def build(case, gen):
        ax, dt = case["axes"], pc.DTYPES[case["dtype"]]
        if ax.get("ragged", 0):
            raise pc.Skip("SDPA peer takes one cache length per batch (ragged=0)")
        b, L, nh, nkv, hd = ax["batch"], ax["kv_len"], ax["heads"], ax["kv_heads"], ax["head_dim"]
        q = pc.random_input((b, nh, 1, hd), dt, gen)   # (B, nh, 1, hd)
        k = pc.random_input((b, nkv, L, hd), dt, gen)  # (B, nkv, L, hd)
        v = pc.random_input((b, nkv, L, hd), dt, gen)  # (B, nkv, L, hd)

        fn = pc.sdpa_fn(q, k, v, backend)
        bs = sorted({0, b - 1})
        refs = []
        for bb in bs:
            kk = k[bb].double().repeat_interleave(nh // nkv, dim=0)  # (nh, L, hd)
            vv = v[bb].double().repeat_interleave(nh // nkv, dim=0)
            s = q[bb].double() @ kk.transpose(1, 2) / math.sqrt(hd)  # (nh, 1, L)
            refs.append((torch.softmax(s, -1) @ vv).to(dt))
        return (lambda: torch.cat([fn()[bb] for bb in bs])), fn, torch.cat(refs)

    return build


if __name__ == "__main__":
    sys.exit(pc.main_variants(__doc__, {name: make_build(name) for name in BACKENDS}))
