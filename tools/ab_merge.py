#!/usr/bin/env python3
"""tools/ab_merge.py: one CSV and a summary from bench_all runs of the same cases under different
environment switches (scripts/ab.sh runs them back to back on one GPU; the switches are listed in
README.md). The first input is the baseline: all of its rows are kept (ours and the peers). Every
later input is labelled by its switch: its rows of ours (variant minfer, minfer-simple, ...) are kept
with the variant renamed VARIANT[LABEL]; its peer rows are dropped (the baseline has them).

Rounds (scripts/ab.sh --rounds N): the baseline and each label may name several CSVs joined by commas,
one per round (the first with the peers); a row of ours then carries the median over the rounds of
its median_us (the lower median for an even count; its other columns are the first round's), so that
a switch is judged against the run-to-run spread, which the summary states for the baseline: the
largest (max - min) / median over its cases, in percent. A peer's row takes the median over the
rounds that have it (ab.sh --peer-rounds all runs the peers in every round of the baseline).

Summary, one line per label and variant of ours: cases matched with the baseline, and the ratio
baseline median_us / labelled median_us (> 1: the switch is faster) as geomean, min and max; a
labelled row whose status is not ok (in any round) counts as failed and is not in the ratios. Where
the baseline has peer rows, also a line per variant of ours (the baseline's, and each label's) against
the fastest peer of each case: fastest peer median_us / ours as geomean, min, max and the cases at or
ahead (ratio >= 1).

Usage: tools/ab_merge.py --out AB.csv BASE.csv[,BASE2.csv ...] [LABEL=RUN.csv[,RUN2.csv ...] ...]
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


def lower_median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


def read_rounds(paths, cols=None, base_path=None):
    """The rows of the first round, with each ok row of ours carrying the median of its median_us over
    the rounds (rows of ours that failed in a later round are marked failed there). Returns (cols,
    rows, spread): spread the largest (max - min) / median of ours over cases, 0 with one round."""
    c0, first = read(paths[0])
    if cols is not None and c0 != cols:
        raise BadInput(f"{paths[0]}: columns differ from the baseline's ({base_path})")
    later = []
    for p in paths[1:]:
        c, rows = read(p)
        if c != c0:
            raise BadInput(f"{p}: columns differ from {paths[0]}'s")
        later.append((p, {(r["variant"], key(r, c0)): r for r in rows}))
    spread = 0.0
    out = []
    for r in first:
        r = dict(r)
        if later and r["status"] == "ok" and r["median_us"]:
            k = (r["variant"], key(r, c0))
            us = [median_us(r, paths[0])]
            mine = ours(r["variant"])
            for p, by_key in later:
                o = by_key.get(k)
                if not mine and (o is None or o["status"] != "ok" or not o["median_us"]):
                    continue  # a peer's row: in the rounds that ran the peers (ab.sh --peer-rounds all)
                if o is None or o["status"] != "ok" or not o["median_us"]:
                    r["status"] = f"failed: round {p}: " + ("missing" if o is None else o["status"])
                    break
                us.append(median_us(o, p))
            else:
                m = lower_median(us)
                r["median_us"] = repr(m)
                if mine:
                    spread = max(spread, (max(us) - min(us)) / m if m > 0 else 0.0)
        out.append(r)
    return c0, out, spread


def fastest_peer(rows, cols):
    """{case key: the least median_us of a peer's ok row} over rows."""
    best = {}
    for r in rows:
        if ours(r["variant"]) or r["status"] != "ok" or not r["median_us"]:
            continue
        k = key(r, cols)
        us = float(r["median_us"])
        best[k] = min(us, best.get(k, us))
    return best


def peer_line(name, rows, variant, peers, cols):
    """'NAME vs the fastest peer: ...' over variant's ok rows with a peer row of the same case, or None."""
    ratios = [peers[key(r, cols)] / float(r["median_us"]) for r in rows
              if r["variant"] == variant and r["status"] == "ok" and r["median_us"] and key(r, cols) in peers]
    if not ratios:
        return None
    g = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    ahead = sum(1 for x in ratios if x >= 1.0)
    return (f"{name} vs the fastest peer: {len(ratios)} cases, speed geomean {g:.3f} (min {min(ratios):.3f}, "
            f"max {max(ratios):.3f}), {ahead} of {len(ratios)} at or ahead")


def merge(base_paths, labelled, out_path):
    base_path = base_paths[0]
    cols, base, spread = read_rounds(base_paths)
    merged = list(base)
    base_us = {}
    for r in base:
        if ours(r["variant"]) and r["status"] == "ok" and r["median_us"]:
            base_us[(r["variant"], key(r, cols))] = median_us(r, base_path)
    lines = []
    if len(base_paths) > 1:
        lines.append(f"baseline: {len(base_paths)} rounds, run-to-run spread up to {100 * spread:.1f}% of a case's median")
    peers = fastest_peer(base, cols)
    for v in sorted({r["variant"] for r in base if ours(r["variant"])}):
        line = peer_line(v, base, v, peers, cols)
        if line:
            lines.append(line)
    for label, paths in labelled:
        path = paths[0]
        _, rows, _ = read_rounds(paths, cols, base_path)
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
            line = peer_line(f"{v}[{label}]", rows, v, peers, cols)
            if line:
                lines.append(line)
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
    ap.add_argument("base", help="the baseline run's CSV (no switch); rounds joined by commas")
    ap.add_argument("runs", nargs="*", help="LABEL=CSV of a run under a switch (LABEL: e.g. MINFER_PDL=0); rounds "
                                            "joined by commas")
    a = ap.parse_args(argv)
    labelled = []
    for spec in a.runs:
        label, sep, path = spec.rpartition("=")
        if not sep or not label or not path:
            print(f"ab_merge: '{spec}' is not LABEL=CSV", file=sys.stderr)
            return 2
        labelled.append((label, path.split(",")))
    try:
        lines = merge(a.base.split(","), labelled, a.out)
    except BadInput as e:
        print(f"ab_merge: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"ab_merge: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
