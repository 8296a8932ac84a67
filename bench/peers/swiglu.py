"""bench/peers/swiglu.py: PyTorch peer for the swiglu sweep, variant "torch".
R = rows, I = inter. gate_up (R, 2I) = [gate | up]; out = F.silu(g) * u on the two column views
(no copies). Reference: float64 of the same rounded inputs, rounded once to the storage dtype.
"""
import sys

import torch
import torch.nn.functional as F

import peer_common as pc


def build(case, gen):
    ax, dt = case["axes"], pc.DTYPES[case["dtype"]]
    rows, inter = ax["rows"], ax["inter"]
    gate_up = pc.random_input((rows, 2 * inter), dt, gen)  # (R, 2I)
    g, u = gate_up[:, :inter], gate_up[:, inter:]          # (R, I) views

    def fn():
        return F.silu(g) * u

    g64, u64 = g.double(), u.double()
    ref = (g64 * torch.sigmoid(g64) * u64).to(dt)
    return fn, ref


if __name__ == "__main__":
    sys.exit(pc.main(__doc__, "torch", build))
