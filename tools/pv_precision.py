#!/usr/bin/env python3
"""tools/pv_precision.py: emulates the precision of a bf16 prefill attention's P.V product under
several schemes, on the inputs `validate_all --sweep attention` draws (q U(-2, 2), k and v U(-1, 1),
rounded to bf16), and prints the normwise rel_err (validate/compare.h) of each against a float64
reference, both outputs rounded to bf16 as stored. The gate of ours is 1e-3.

Schemes (per key tile: the online softmax of kernels/flash_prefill*.cu in fp32, P <= 1):
  bf16-P        P rounded once to bf16 (what the SDPA peers do)
  hi+lo         P = hi + lo, both bf16, two bf16 MMAs (ours)
  lo-e4m3       hi in bf16, lo = P - hi in fp8 e4m3 (scaled by 2^17: |lo| <= 2^-9) times V in e4m3
                scaled per tile by a power of two (max |V| into [128, 256)); the scales are powers of
                two, so hi.V and lo.V can share one fp32 accumulator held in units of their product
  lo-e5m2       as lo-e4m3, lo in e5m2 (one mantissa bit fewer), V still e4m3 (a mixed MMA)
  fp16-P        P rounded once to fp16, V converted to fp16 (exact for these inputs)
  trunc+lo      as hi+lo with hi = P truncated to bf16 (its top 16 bits: packed by a byte permute, one
                conversion a pair fewer) and lo = P - hi rounded to bf16 (|lo| < 2^-7 P, twice hi+lo's)
  fp16+lo-e4m3  hi = P rounded to fp16 times V in fp16, plus lo = P - hi in e4m3 (scaled by 2^20:
                |lo| <= 2^-12) times V in e4m3 scaled per tile as lo-e4m3 (an fp8 MMA: half a bf16 one's
                tensor time)

Because the reference is rounded too, rel_err grows about as the square root of the error before
rounding (an error flips a rounding with a probability near its size, each flip an ulp).

Needs numpy and ml_dtypes (pip install ml_dtypes). CPU only; a few seconds a case.
"""
import argparse
import sys

import numpy as np

SCHEMES = ["bf16-P", "hi+lo", "lo-e4m3", "lo-e5m2", "fp16-P", "trunc+lo", "fp16+lo-e4m3"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seqlen", type=int, nargs="+", default=[512, 2048, 8192], help="keys (= query rows' span)")
    ap.add_argument("--rows", type=int, default=128, help="query rows emulated (one block's)")
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--tile", type=int, default=64, help="keys a tile (the online softmax's step)")
    ap.add_argument("--trials", type=int, default=3, help="draws a case; the worst is printed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated, of: " + " ".join(SCHEMES))
    a = ap.parse_args(argv)
    try:
        import ml_dtypes
    except ImportError:
        print("pv_precision.py: needs ml_dtypes (pip install ml_dtypes)", file=sys.stderr)
        return 2
    schemes = a.schemes.split(",")
    bad = [s for s in schemes if s not in SCHEMES]
    if bad or a.rows < 1 or a.head_dim < 1 or a.tile < 1 or a.trials < 1 or min(a.seqlen) < 1:
        print(f"pv_precision.py: bad arguments (unknown schemes: {bad})" if bad else "pv_precision.py: sizes must be >= 1",
              file=sys.stderr)
        return 2

    def cast(x, t):
        return x.astype(t).astype(np.float64)

    bf16, f16 = ml_dtypes.bfloat16, np.float16
    fp8 = {"lo-e4m3": ml_dtypes.float8_e4m3fn, "lo-e5m2": ml_dtypes.float8_e5m2}  # (also fp16+lo-e4m3's)
    rng = np.random.default_rng(a.seed)

    def case(n):
        hd, m_rows = a.head_dim, a.rows
        q = cast(rng.uniform(-2, 2, (m_rows, hd)), bf16)
        k = cast(rng.uniform(-1, 1, (n, hd)), bf16)
        v = cast(rng.uniform(-1, 1, (n, hd)), bf16)
        s = (q @ k.T) / np.sqrt(hd)
        e = np.exp(s - s.max(1, keepdims=True))
        ref = cast(e @ v / e.sum(1, keepdims=True), bf16)
        s32 = s.astype(np.float32).astype(np.float64)
        out = {}
        for name in schemes:
            m = np.full((m_rows, 1), -np.inf)
            l = np.zeros((m_rows, 1))
            o = np.zeros((m_rows, hd))
            for t0 in range(0, n, a.tile):
                st, vt = s32[:, t0:t0 + a.tile], v[t0:t0 + a.tile]
                mn = np.maximum(m, st.max(1, keepdims=True))
                c = np.exp(m - mn)
                p = np.exp(st - mn).astype(np.float32).astype(np.float64)
                l, o, m = l * c + p.sum(1, keepdims=True), o * c, mn
                if name == "bf16-P":
                    o += cast(p, bf16) @ vt
                elif name == "hi+lo":
                    hi = cast(p, bf16)
                    o += hi @ vt + cast(p - hi, bf16) @ vt
                elif name in fp8:
                    hi = cast(p, bf16)
                    vmax = np.abs(vt).max()
                    sa = 2.0 ** (7 - np.floor(np.log2(vmax))) if vmax > 0 else 1.0  # max |V| sa in [128, 256)
                    lo8 = cast((p - hi) * 2.0**17, fp8[name])
                    v8 = cast(vt * sa, fp8["lo-e4m3"])  # V keeps e4m3's precision in both
                    o += hi @ vt + (lo8 @ v8) / (2.0**17 * sa)
                elif name == "trunc+lo":
                    hi = (p.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32).astype(np.float64)
                    o += hi @ vt + cast(p - hi, bf16) @ vt
                elif name == "fp16+lo-e4m3":
                    hi = cast(p, f16)
                    vmax = np.abs(vt).max()
                    sa = 2.0 ** (7 - np.floor(np.log2(vmax))) if vmax > 0 else 1.0
                    lo8 = cast((p - hi) * 2.0**20, fp8["lo-e4m3"])
                    o += hi @ cast(vt, f16) + (lo8 @ cast(vt * sa, fp8["lo-e4m3"])) / (2.0**20 * sa)
                else:
                    o += cast(p, f16) @ cast(vt, f16)
            res = cast(o / l, bf16)
            out[name] = np.linalg.norm(res - ref) / np.linalg.norm(ref)
        return out

    print("seqlen," + ",".join(schemes))
    for n in a.seqlen:
        runs = [case(n) for _ in range(a.trials)]
        print(f"{n}," + ",".join(f"{max(r[s] for r in runs):.3g}" for s in schemes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
