#!/usr/bin/env python3
"""tools/ab_merge.py: one CSV and a summary from bench_all runs of the same cases under different
environment switches (scripts/ab.sh runs them back to back on one GPU; the switches are listed in
README.md). The first input is the baseline: all of its rows are kept (ours and the peers). Every
later input is labelled by its switch: its rows of ours (variant minfer, minfer-simple, ...) are kept
with the variant renamed VARIANT[LABEL]; its peer rows are dropped (the baseline has them).

Summary, one line per label and variant of ours: cases matched with the baseline, and the ratio
baseline median_us / labelled median_us (> 1: the switch is faster) as geomean, min and max; a
labelled row whose status is not ok counts as failed and is not in the ratios.

Usage: tools/ab_merge.py --out AB.csv BASE.csv [LABEL=RUN.csv ...]
Exit 0, or 2 on bad input (unreadable file, missing column, differing headers).
Standard library only.
"""
import argparse
import csv
import math
import os
import sys

# Columns that are measurements or provenance, not case axes.
NON_AXES = {
    "sweep", "variant", "label", "median_us", "p10_us", "p90_us", "tflops", "gbps", "sol_pct", "peak_mem_mib",
    "rel_err", "copy_gbps", "copy_same_gbps", "gemm_tflops", "gpu", "cuda", "commit", "repro", "status", "tok_s",
    "ms_per_step",
}
NEEDED = ("sweep", "variant", "median_us", "status")


class BadInput(Exception):
    pass


def read(path):
    try:
        with open(path, newline="") as f:
            r = csv.DictReader(f)
            rows = list(r)
            cols = list(r.fieldnames or [])
    except OSError as e:
        raise BadInput(f"{path}: {e.strerror}")
    for c in NEEDED:
        if c not in cols:
            raise BadInput(f"{path}: missing column '{c}'")
    return cols, rows


def ours(variant):
    return variant.startswith("minfer")


def key(row, cols):
    return tuple(row.get(c, "") for c in cols if c not in NON_AXES)


def median_us(row, path):
    try:
        v = float(row["median_us"])
    except ValueError:
        raise BadInput(f"{path}: median_us '{row['median_us']}' is not a number")
    return v


def merge(base_path, labelled, out_path):
    cols, base = read(base_path)
    merged = list(base)
    base_us = {}
    for r in base:
        if ours(r["variant"]) and r["status"] == "ok" and r["median_us"]:
            base_us[(r["variant"], key(r, cols))] = median_us(r, base_path)
    lines = []
    for label, path in labelled:
        c2, rows = read(path)
        if c2 != cols:
            raise BadInput(f"{path}: columns differ from the baseline's ({base_path})")
        stats = {}
        for r in rows:
            if not ours(r["variant"]):
                continue
            v = r["variant"]
            st = stats.setdefault(v, {"matched": 0, "failed": 0, "ratios": []})
            out = dict(r)
            out["variant"] = f"{v}[{label}]"
            merged.append(out)
            if r["status"] != "ok" or not r["median_us"]:
                st["failed"] += 1
                continue
            b = base_us.get((v, key(r, cols)))
            if b is None:
                continue
            st["matched"] += 1
            st["ratios"].append(b / median_us(r, path))
        for v, st in sorted(stats.items()):
            rs = st["ratios"]
            if rs:
                g = math.exp(sum(math.log(x) for x in rs) / len(rs))
                lines.append(f"{v}[{label}]: {st['matched']} cases vs baseline, speed geomean {g:.3f} "
                             f"(min {min(rs):.3f}, max {max(rs):.3f}), {st['failed']} failed")
            else:
                lines.append(f"{v}[{label}]: no case matched the baseline, {st['failed']} failed")
    tmp = out_path + ".tmp"
    d = os.path.dirname(out_path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in merged:
            w.writerow({c: r.get(c, "") for c in cols})
    os.replace(tmp, out_path)
    return lines


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="merged CSV to write")
    ap.add_argument("base", help="the baseline run's CSV (no switch)")
    ap.add_argument("runs", nargs="*", help="LABEL=CSV of a run under a switch (LABEL: e.g. MINFER_PDL=0)")
    a = ap.parse_args(argv)
    labelled = []
    for spec in a.runs:
        label, sep, path = spec.rpartition("=")
        if not sep or not label or not path:
            print(f"ab_merge: '{spec}' is not LABEL=CSV", file=sys.stderr)
            return 2
        labelled.append((label, path))
    try:
        lines = merge(a.base, labelled, a.out)
    except BadInput as e:
        print(f"ab_merge: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"ab_merge: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
