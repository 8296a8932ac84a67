#!/usr/bin/env python3
"""tools/ncu_step.py: the per-kernel breakdown of one decode step from an ncu CSV.

Input: what `ncu --csv --metrics gpu__time_duration.sum [--graph-profiling node] PROGRAM` printed
(log lines before the CSV header are skipped). The step is the last run of launches that starts at
a kernel whose name matches --step-start (default: the embedding kernel, the first launch of every
engine step). Kernels are grouped by short name (the function, without namespace, template
arguments or parameters) and grid size, so GEMVs of different shapes stay apart.
Writes --out (one row per group: kernel, grid, launches, us, pct, us_per_launch) and prints it as a
table. Each kernel was timed alone by ncu (caches flushed unless told otherwise), so the sum is the
step's serial cost, not its time in a CUDA graph.
Usage: tools/ncu_step.py NCU_CSV --out SUMMARY_CSV [--launches LAUNCHES_CSV] [--step-start REGEX]
Exit codes: 0 ok, 2 bad input (the file and what is wrong named).
"""
import argparse
import csv
import io
import re
import sys

METRIC = "gpu__time_duration.sum"
UNIT_US = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def fail(msg):
    print(f"ncu_step: {msg}", file=sys.stderr)
    sys.exit(2)


def short_name(name):
    """'void minfer::(anonymous namespace)::gemv_kernel<__nv_bfloat16, 1, 0>(GemvArgs)' -> 'gemv_kernel'."""
    depth, out = 0, []
    for ch in name:  # drop template arguments and parameter lists
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    base = "".join(out).strip().split()[-1] if "".join(out).strip() else name
    return base.split("::")[-1] or name


def read_launches(path):
    try:
        with open(path, newline="", errors="replace") as f:
            text = f.read()
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror})")
    start = text.find('"ID"')
    if start < 0:
        fail(f"{path}: no ncu CSV header (a line starting with \"ID\")")
    rows = list(csv.DictReader(io.StringIO(text[start:])))
    need = {"ID", "Kernel Name", "Grid Size", "Block Size", "Metric Name", "Metric Unit", "Metric Value"}
    if rows and not need <= set(rows[0]):
        fail(f"{path}: columns {sorted(need - set(rows[0]))} missing")
    out = []
    for r in rows:
        if r["Metric Name"] != METRIC:
            continue
        unit = UNIT_US.get(r["Metric Unit"])
        if unit is None:
            fail(f"{path}: launch {r['ID']}: unit '{r['Metric Unit']}' of {METRIC} not known")
        try:
            us = float(r["Metric Value"].replace(",", "")) * unit
        except ValueError:
            fail(f"{path}: launch {r['ID']}: {METRIC} value '{r['Metric Value']}' is not a number")
        out.append({"kernel": short_name(r["Kernel Name"]), "grid": r["Grid Size"], "block": r["Block Size"], "us": us})
    if not out:
        fail(f"{path}: no {METRIC} rows (run ncu with --metrics {METRIC})")
    return out


def last_step(launches, pattern, path):
    rx = re.compile(pattern)
    starts = [i for i, l in enumerate(launches) if rx.search(l["kernel"])]
    if not starts:
        fail(f"{path}: no launch matches --step-start '{pattern}'")
    return launches[starts[-1]:]


def summarize(step):
    groups = {}
    for l in step:
        key = (l["kernel"], l["grid"])
        g = groups.setdefault(key, {"kernel": l["kernel"], "grid": l["grid"], "launches": 0, "us": 0.0})
        g["launches"] += 1
        g["us"] += l["us"]
    total = sum(g["us"] for g in groups.values())
    rows = sorted(groups.values(), key=lambda g: -g["us"])
    for g in rows:
        g["pct"] = 100.0 * g["us"] / total if total > 0 else 0.0
        g["us_per_launch"] = g["us"] / g["launches"]
    return rows, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ncu_csv")
    ap.add_argument("--out", required=True, help="summary CSV to write")
    ap.add_argument("--launches", help="also write the step's launches in order to this CSV")
    ap.add_argument("--step-start", default="embedding", help="regex of the kernel that opens a step")
    a = ap.parse_args()
    step = last_step(read_launches(a.ncu_csv), a.step_start, a.ncu_csv)
    rows, total = summarize(step)
    cols = ["kernel", "grid", "launches", "us", "pct", "us_per_launch"]
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.3f}" if isinstance(r[k], float) else r[k]) for k in cols})
    if a.launches:
        with open(a.launches, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["index", "kernel", "grid", "block", "us"])
            w.writeheader()
            for i, l in enumerate(step):
                w.writerow({"index": i, **{k: l[k] for k in ("kernel", "grid", "block")}, "us": f"{l['us']:.3f}"})
    print(f"{'kernel':<22} {'grid':<16} {'launches':>8} {'us':>10} {'%':>6} {'us/launch':>10}")
    for r in rows:
        print(f"{r['kernel']:<22} {r['grid']:<16} {r['launches']:>8} {r['us']:>10.1f} {r['pct']:>6.1f} "
              f"{r['us_per_launch']:>10.2f}")
    print(f"{'total':<22} {'':<16} {len(step):>8} {total:>10.1f} {100.0:>6.1f}")


if __name__ == "__main__":
    main()
