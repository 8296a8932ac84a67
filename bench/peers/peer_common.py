"""bench/peers/peer_common.py: what every PyTorch peer shares. Reads the case list bench_all wrote
(JSON: sweep, seed, l2_bytes, min_time, cases[{id, dtype, label, axes}]), times a callable with CUDA events
and an L2 flush before each sample, GPU work queued ahead so the CPU's dispatch is not timed (warm-up
first; median/p10/p90), checks the peer's output
against a float64 reference of the same rounded inputs, and writes the peer CSV bench_all merges
(case_id, variant, median_us, p10_us, p90_us, rel_err, peak_mem_mib, status).

Tolerance: 1e-3 normwise in fp32. In fp16/bf16 a PyTorch peer rounds intermediates to the storage
dtype (e.g. silu(g) before the multiply), one extra rounding our kernels do not make, so peers are
held to 2 x the dtype's epsilon there; the row always carries the measured rel_err.
"""
import argparse
import csv
import functools
import json
import os
import sys

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COLUMNS = ["case_id", "variant", "median_us", "p10_us", "p90_us", "rel_err", "peak_mem_mib", "status"]


def parse_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cases", required=True, help="case list JSON written by bench_all")
    ap.add_argument("--out", required=True, help="peer CSV to write (PATH.tmp, renamed)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds of measured GPU time per case (default: the case file's min_time, else 0.02)")
    return ap.parse_args()


def load_cases(path):
    with open(path) as f:
        return json.load(f)


def tolerance(dtype_name):
    if dtype_name == "fp32":
        return 1e-3
    return 2.0 * torch.finfo(DTYPES[dtype_name]).eps


def rel_err(out, ref):
    """Normwise relative error in float64; inf when out has a NaN/Inf."""
    out64, ref64 = out.double(), ref.double()
    if not torch.isfinite(out64).all():
        return float("inf")
    den = torch.linalg.vector_norm(ref64).item()
    num = torch.linalg.vector_norm(out64 - ref64).item()
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return num / den


def percentile(sorted_vals, q):
    pos = q * (len(sorted_vals) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


# GPU cycles queued ahead of each timed sample (torch.cuda._sleep, after the flush): about 100 us at
# H100 / H200 clocks. The CPU then enqueues start, fn() and stop while the GPU is still busy, so a
# sample holds the GPU time of fn() alone and not Python's dispatch of it: short SDPA calls can take
# longer to dispatch than to run. H100, two runs of the same case (batch 4 x 512 x 16 heads, head_dim
# 128, non-causal): torch-flash read 35.3 and 58.1 us while ours (42.4) and torch-cudnn (25.2, 25.7)
# held (reports/logs/h100/INDEX.md, ab_attention_v3s.csv).
LEAD_CYCLES = 200_000


@functools.lru_cache(maxsize=None)
def lead_sleep():
    """torch.cuda._sleep if this torch has it and it runs, else None (samples then go without a lead).
    Probed once per process."""
    sleep = getattr(torch.cuda, "_sleep", None)
    if sleep is None:
        return None
    try:
        sleep(1000)
        torch.cuda.synchronize()
    except Exception:  # noqa: BLE001  (a private API: any failure means "not available")
        return None
    return sleep


def time_us(fn, l2_bytes, min_time, min_samples=20, max_samples=5000):
    """Median/p10/p90 in microseconds of fn() timed alone with CUDA events after an L2 flush (and a
    queued lead of LEAD_CYCLES, so that the CPU's dispatch of fn() is not timed)."""
    flush = torch.empty(max(2 * int(l2_bytes), 1 << 20), dtype=torch.uint8, device="cuda")
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    sleep = lead_sleep()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    while len(samples) < max_samples and (len(samples) < min_samples or sum(samples) * 1e-6 < min_time):
        flush.fill_(0x5A)
        if sleep is not None:
            sleep(LEAD_CYCLES)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(start.elapsed_time(stop) * 1e3)
    samples.sort()
    return percentile(samples, 0.5), percentile(samples, 0.1), percentile(samples, 0.9)


def random_input(shape, dtype, gen):
    """Values in [-2, 2), never all zero, already in the storage dtype."""
    return (torch.rand(shape, generator=gen, device="cuda", dtype=torch.float32) * 4 - 2).to(dtype)


class Skip(Exception):
    """Raised by a build for a case the peer cannot express: the row says 'skipped: <reason>'."""


def note(msg):
    """A remark about how the current case was run (printed with the progress line's log)."""
    print(f"  note: {msg}", file=sys.stderr)


def run_cases(spec, variant, build, min_time):
    """build(case, gen) -> (fn, ref) where fn() returns the peer's output and ref is the float64
    reference already rounded to the storage dtype; or (check_fn, fn, ref) when only a sample of the
    output is checked (check_fn() returns the sampled output, fn() is what is timed).
    Returns one peer CSV row per case."""
    rows = []
    gen = torch.Generator(device="cuda")
    for i, case in enumerate(spec["cases"]):
        gen.manual_seed(int(spec.get("seed", 1234)) + i)
        row = {"case_id": case["id"], "variant": variant}
        try:
            torch.cuda.empty_cache()
            built = build(case, gen)
            check_fn, fn, ref = built if len(built) == 3 else (built[0], built[0], built[1])
            err = rel_err(check_fn(), ref)
            del ref
            row["rel_err"] = f"{err:.6g}"
            tol = tolerance(case["dtype"])
            if not err <= tol:
                row["status"] = f"refused: rel_err={err:.3e} > {tol:.1e}"
            else:
                med, p10, p90 = time_us(fn, spec.get("l2_bytes", 64 << 20), min_time)
                row.update(median_us=f"{med:.5g}", p10_us=f"{p10:.5g}", p90_us=f"{p90:.5g}", status="ok")
            # Inputs + one call's output and temporaries, as ours counts (no reference, no flush buffer).
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            out = fn()
            torch.cuda.synchronize()
            row["peak_mem_mib"] = f"{torch.cuda.max_memory_allocated() / 2**20:.5g}"
            del out, fn, check_fn
        except Skip as e:
            row["status"] = f"skipped: {e}"
        except Exception as e:  # one failing case must not lose the others' rows
            row["status"] = f"error: {type(e).__name__}: {e}".replace("\n", " ")
        print(f"[{i + 1}/{len(spec['cases'])}] {variant}:{case['id']} {row.get('status')} "
              f"rel_err={row.get('rel_err', '')} median_us={row.get('median_us', '')}", file=sys.stderr)
        rows.append(row)
    return rows


def sdpa_fn(q, k, v, backend, **kw):
    """A callable running F.scaled_dot_product_attention on one SDPA backend. GQA (fewer K/V heads
    than query heads) goes through enable_gqa=True; where the backend refuses that, K and V are
    expanded to the query heads once, here, outside the timed call."""
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    nh, nkv = q.shape[1], k.shape[1]

    def call(kk, vv, gqa):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, kk, vv, enable_gqa=gqa, **kw)

    try:
        call(k, v, nkv != nh)
        return lambda: call(k, v, nkv != nh)
    except RuntimeError:
        if nkv == nh:
            raise
        ke, ve = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        note("K/V expanded to nh heads (backend refused enable_gqa)")
        return lambda: call(ke, ve, False)


def write_rows(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})
    os.replace(tmp, path)


def library_line():
    """One line naming what the peers' numbers depend on: PyTorch, its CUDA and cuDNN, and the device.
    The peers' kernels come from these libraries, so their times move with them (cuDNN's SDPA decode
    kernel on the H100 measured 116 us in one run and 101 us in a later one at batch 64 x 1024)."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    return f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}, {dev}"


def main(description, variant, build):
    return main_variants(description, {variant: build})


def main_variants(description, builds):
    """Runs every case for each variant in `builds` ({variant: build}) into one peer CSV."""
    args = parse_args(description)
    if not torch.cuda.is_available():
        print(f"{sys.argv[0]}: no CUDA device", file=sys.stderr)
        return 2
    print(f"{sys.argv[0]}: {library_line()}", file=sys.stderr)
    spec = load_cases(args.cases)
    min_time = args.min_time if args.min_time is not None else float(spec.get("min_time", 0.02))
    rows = []
    for variant, build in builds.items():
        rows += run_cases(spec, variant, build, min_time)
    write_rows(args.out, rows)
    return 0
