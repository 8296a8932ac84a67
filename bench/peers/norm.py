"""bench/peers/norm.py: PyTorch peer for the norm sweep, variant "torch".
R = rows, H = hidden. Without residual: F.rms_norm(x, (H,), w, eps). With residual: s = x + r
(rounded to the storage dtype, as ours), then F.rms_norm(s); the sum is part of the timed work.
Reference: float64 of the same rounded inputs, rounded once to the storage dtype.
"""
import sys

import torch
import torch.nn.functional as F

import peer_common as pc

EPS = 1e-6  # kernels/rmsnorm.h default


def build(case, gen):
    ax, dt = case["axes"], pc.DTYPES[case["dtype"]]
    rows, hidden, residual = ax["rows"], ax["hidden"], ax["residual"]
    x = pc.random_input((rows, hidden), dt, gen)        # (R, H)
    w = pc.random_input((hidden,), dt, gen)             # (H)
    r = pc.random_input((rows, hidden), dt, gen) if residual else None  # (R, H)

    def fn():
        s = x + r if residual else x
        return F.rms_norm(s, (hidden,), w, EPS)

    s64 = (x + r).double() if residual else x.double()
    if residual:
        s64 = s64.to(dt).double()  # ours normalises the rounded sum
    ref = (s64 * torch.rsqrt(s64.pow(2).mean(-1, keepdim=True) + EPS) * w.double()).to(dt)
    return fn, ref


if __name__ == "__main__":
    sys.exit(pc.main(__doc__, "torch", build))
