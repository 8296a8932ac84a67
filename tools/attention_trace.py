#!/usr/bin/env python3
"""tools/attention_trace.py: summarises `minfer generate --attention-trace-csv` (each decode-attention
block's globaltimer at seven points, kernels/decode_attention.h) into where a block's time goes.

Records are grouped into launches by their entry times (a new launch where the next entry comes more
than --gap-ns after the previous one). Per block: resident before the wait (entry -> waited, the time
a PDL launch sits on the kernel before it), the fused prologue (waited -> prologue), the first keys'
copies (prologue -> first keys landed in warp 0), the rest of the key loop (-> loop), the block's merge
(-> merge) and the cluster merge (-> end); where a record has the cluster barrier's point (barrier_ns, not
0), the cluster merge also in its two parts: to the barrier's release (the pushes and the wait for the
cluster's last block) and the slice merge after it. Per launch: its span from the first block's wait to the
last block's end. Prints the median (and p10, p90) of each over the launches after --skip, and writes
them as CSV with --out. The grid (distinct block indices over the trace) against the blocks a launch
holds: where a launch holds fewer, its blocks entered in groups more than --gap-ns apart (blocks that did
not all fit on the SMs at once, each group then counted as a launch), which the tool says.
Usage: tools/attention_trace.py TRACE.csv[.gz] [--skip N] [--gap-ns NS] [--out SUMMARY.csv]
Exit status 2 on a missing or malformed file (naming it and the field).
"""
import argparse
import csv
import gzip
import statistics
import sys

COLUMNS = ["record", "bx", "by", "bz", "sm", "entry_ns", "waited_ns", "prologue_ns", "first_keys_ns", "loop_ns",
           "merge_ns", "end_ns"]
OPTIONAL = ["barrier_ns"]  # after the cluster barrier (traces from before it lack the column)


def fail(msg):
    print(f"attention_trace.py: {msg}", file=sys.stderr)
    sys.exit(2)


def read(path):
    try:  # a .gz trace (gpu_run.sh compresses them) is read as it is
        with (gzip.open(path, "rt", newline="") if path.endswith(".gz") else open(path, newline="")) as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else None
    except OSError as e:
        fail(f"{path}: {e.strerror or e}")
    except (UnicodeDecodeError, csv.Error) as e:
        fail(f"{path}: not a CSV trace ({e.__class__.__name__})")
    if header is None:
        fail(f"{path}: no records (was the decode attention the tensor-core kernel?)")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        fail(f"{path}: column '{missing[0]}' missing (expected {', '.join(COLUMNS)})")
    cols = COLUMNS + [c for c in OPTIONAL if c in header]
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append({c: int(r[c]) for c in cols})
        except (TypeError, ValueError):
            bad = next(c for c in cols if not (r.get(c) or "").isdigit())
            fail(f"{path}: line {i}: field '{bad}' is not a whole number: {r.get(bad)!r}")
    return out


def launches(recs, gap_ns):
    recs = sorted(recs, key=lambda r: r["entry_ns"])
    groups, cur = [], []
    for r in recs:
        if cur and r["entry_ns"] - cur[-1]["entry_ns"] > gap_ns:
            groups.append(cur)
            cur = []
        cur.append(r)
    if cur:
        groups.append(cur)
    return groups


def phases(r):
    first = r["first_keys_ns"] if r["first_keys_ns"] else r["prologue_ns"]
    out = {
        "resident_before_wait": r["waited_ns"] - r["entry_ns"],
        "prologue": r["prologue_ns"] - r["waited_ns"],
        "first_keys": first - r["prologue_ns"],
        "key_loop_rest": r["loop_ns"] - first,
        "block_merge": r["merge_ns"] - r["loop_ns"],
        "cluster_merge": r["end_ns"] - r["merge_ns"],
        "block_after_wait": r["end_ns"] - r["waited_ns"],
    }
    if r.get("barrier_ns"):
        out["cluster_barrier"] = r["barrier_ns"] - r["merge_ns"]
        out["cluster_slice"] = r["end_ns"] - r["barrier_ns"]
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--skip", type=int, default=28, help="launches to leave out first (default 28: a step's layers)")
    ap.add_argument("--gap-ns", type=int, default=5000, help="entry gap that starts a new launch (default 5000)")
    ap.add_argument("--out", help="write the summary as CSV here")
    a = ap.parse_args()
    groups = launches(read(a.trace), a.gap_ns)
    if len(groups) <= a.skip:
        fail(f"{a.trace}: {len(groups)} launches, none left after --skip {a.skip}")
    used = groups[a.skip:]
    per = {}
    for g in used:
        ph = [phases(r) for r in g]
        for k in dict.fromkeys(k for p in ph for k in p):  # every phase some block of the launch has
            per.setdefault(k, []).append(statistics.median(p[k] for p in ph if k in p))
        per.setdefault("launch_span", []).append(max(r["end_ns"] for r in g) - min(r["waited_ns"] for r in g))
        per.setdefault("wait_release_spread", []).append(max(r["waited_ns"] for r in g) - min(r["waited_ns"] for r in g))
    blocks = statistics.median(len(g) for g in used)
    grid = len({(r["bx"], r["by"], r["bz"]) for g in used for r in g})
    print(f"{a.trace}: {len(groups)} launches ({len(used)} after --skip {a.skip}), median {blocks:g} blocks a launch"
          f" of a {grid}-block grid")
    if blocks < grid:
        print(f"note: a launch holds {blocks:g} of the grid's {grid} blocks: the blocks entered in groups more than"
              f" {a.gap_ns} ns apart (not all fit on the SMs at once), each group counted here as a launch")
    print(f"{'phase':24s} {'median_ns':>10s} {'p10_ns':>8s} {'p90_ns':>8s}  (per launch: the median over its blocks)")
    rows = []
    for k, xs in per.items():
        rows.append((k, statistics.median(xs), pct(xs, 0.1), pct(xs, 0.9)))
        print(f"{k:24s} {rows[-1][1]:10.0f} {rows[-1][2]:8.0f} {rows[-1][3]:8.0f}")
    if a.out:
        with open(a.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["phase", "median_ns", "p10_ns", "p90_ns", "launches", "blocks_per_launch", "grid_blocks"])
            for k, m, lo, hi in rows:
                w.writerow([k, f"{m:.0f}", lo, hi, len(used), f"{blocks:g}", grid])
    return 0


if __name__ == "__main__":
    sys.exit(main())
