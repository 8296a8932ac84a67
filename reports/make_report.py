#!/usr/bin/env python3
"""reports/make_report.py: reports/REPORT.md and PNG plots from the measured CSVs (DESIGN.md 6).

Reads reports/data/<gpu>/*.csv: bench CSVs (bench_all: a median_us column) and validate CSVs
(validate_all: a pass column). Per GPU: the commits its rows come from, each with its date where git
knows it (so that old rows show their age). Per GPU and sweep it writes: the ceilings measured in the run, best
and median SOL% of ours per dtype, speed ratios against each peer measured in the same run (same
file and commit: peer median_us / ours, so > 1 means ours is faster), the labelled real shapes,
and the validation pass counts. Plots: plots/<gpu>_<sweep>.png, achieved GB/s against bytes moved
per launch with the measured copy ceiling drawn in. Only these files feed the report.
End to end (bench_all --sweep e2e): per model and (batch, prompt) the time to first token, prefill
tokens/s and MFU, decode ms/step, tokens/s and SOL% (weights + KV bytes per step over the copy
ceiling), peak memory, and the torch-graph peer's decode step beside ours; skipped cases with their
reason. Whole-model validation (validate_all --sweep model): worst rel_err and greedy agreement per
model and dtype from the summary rows. Beside the e2e table, the per-kernel split of traced decode steps
from reports/data/<gpu>/timeline/ (minfer generate --timeline-csv), where present.
Attention sweeps, against the targets the project set itself (TARGETS below): prefill, per dtype and
(head_dim, causal), median TFLOP/s of ours and of each SDPA backend over cases of at least 512 tokens
and how many of those cases ours is at least as fast as torch-flash; decode, per dtype and cache
layout, the speed against the fastest PyTorch backend of each case and, where the KV bytes read are
256 MiB or more, how many cases reach 75% of the measured copy bandwidth.
"""
import argparse
import math
import os
import re
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

NON_AXES = {
    "sweep", "variant", "dtype", "label", "median_us", "p10_us", "p90_us", "tflops", "gbps", "sol_pct",
    "peak_mem_mib", "rel_err", "max_abs", "max_rel", "worst_index", "nonfinite", "pass", "copy_gbps", "copy_same_gbps",
    "gemm_tflops", "gpu", "cuda", "commit", "repro", "status", "source",
}
DTYPE_ORDER = ["fp32", "fp16", "bf16"]
# The attention issue's targets: prefill at least as fast as torch-flash from PREFILL_MIN_LEN tokens;
# decode at least as fast as the best PyTorch backend, and DECODE_MIN_SOL% of copy bandwidth where a
# launch reads DECODE_BIG_BYTES or more of KV cache.
PREFILL_MIN_LEN = 512
DECODE_MIN_SOL = 75.0
DECODE_BIG_BYTES = 256 * 2**20
# The dense-engine issue's targets: batch-1 bf16 decode at least this SOL% (of the weight + KV floor) per
# model, and ahead of torch-graph.
E2E_MIN_SOL = {"qwen3-0.6b": 50.0, "llama-3.1-8b": 80.0}


AXIS_ORDER = {}  # sweep -> its axis columns in the order its CSVs list them

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def commit_label(commit):
    """`commit (YYYY-MM-DD)`, the commit's date in this repository (a '+...' suffix, as in 'abc1234+dirty',
    looked up without it), so that a reader sees how old a GPU's rows are; the commit alone where git or the
    commit is not there."""
    c = str(commit)
    base = c.split("+")[0]
    if re.fullmatch(r"[0-9a-f]{7,40}", base):
        try:
            r = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%cs", base, "--"], capture_output=True,
                               text=True, timeout=20)
            if r.returncode == 0 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.stdout.strip()):
                return f"{c} ({r.stdout.strip()})"
        except (OSError, subprocess.SubprocessError):
            pass
    return c


def switches_of(repro):
    """The MINFER_ switches a row's repro opens with (bench_all and validate_all put the ones set there):
    'MINFER_A=x MINFER_B=y', '' where none."""
    words = []
    for w in str(repro).split():
        if not re.fullmatch(r"MINFER_[A-Z0-9_]+=\S*", w):
            break
        words.append(w)
    return " ".join(words)


def switches_line(b):
    """A line naming the switches some rows were measured under (each set and its row count), or []."""
    if "repro" not in b.columns:
        return []
    sets = b["repro"].map(switches_of)
    counts = sets[sets != ""].value_counts()
    if counts.empty:
        return []
    named = "; ".join(f"`{k}` ({v} rows)" for k, v in sorted(counts.items()))
    return [f"Rows measured under environment switches (their repro names them; the others at the defaults): {named}.", ""]


def load(data_dir):
    """(bench frame, validate frame) over every <gpu>/*.csv; column `source` names the file."""
    bench, val = [], []
    for gpu in sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else []:
        folder = os.path.join(data_dir, gpu)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".csv"):
                continue
            df = pd.read_csv(os.path.join(folder, name), dtype={"commit": str})
            if "sweep" not in df.columns:
                continue  # not a bench/validate sweep CSV
            for sweep in df["sweep"].dropna().unique() if "sweep" in df.columns else []:
                AXIS_ORDER.setdefault(sweep, [c for c in df.columns if c not in NON_AXES])
            df["source"] = f"{gpu}/{name}"
            if "gpu" not in df.columns:
                df["gpu"] = gpu
            (val if "pass" in df.columns else bench).append(df)
    cat = lambda frames: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # noqa: E731
    return cat(bench), cat(val)


def axes_of(df, sweep):
    order = AXIS_ORDER.get(sweep, [c for c in df.columns if c not in NON_AXES])
    return [c for c in order if c in df.columns and df[c].notna().any()]


def case_key(df, axes):
    """One string per row naming its case (dtype + axes), for pairing ours with peers."""
    parts = [df["dtype"].astype(str)] + [c + "=" + df[c].astype("Int64").astype(str) for c in axes]
    key = parts[0]
    for p in parts[1:]:
        key = key + "/" + p
    return key


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def timed(df):
    ok = df["median_us"].notna() & (df["median_us"] > 0)
    if "status" in df.columns:
        ok &= df["status"].fillna("ok") == "ok"
    return df[ok]


def sol_table(ours):
    rows = []
    for dt in DTYPE_ORDER:
        d = ours[ours["dtype"] == dt]
        if d.empty:
            continue
        best = d.loc[d["sol_pct"].idxmax()]
        rows.append([dt, len(d), fmt(best["sol_pct"]), fmt(d["sol_pct"].median()), fmt(best["gbps"], 4),
                     best["case"]])
    return md_table(["dtype", "cases timed", "best SOL%", "median SOL%", "best GB/s", "best case"], rows)


def peer_ratios(ours, peers):
    """Rows (dtype, peer, n, geomean, min, max) of peer median / ours over cases in the same file+commit."""
    rows = []
    merged = ours.merge(peers, on=["source", "commit", "case"], suffixes=("", "_peer"))
    for (dt, peer), d in merged.groupby(["dtype", "variant_peer"], sort=False):
        r = d["median_us_peer"] / d["median_us"]
        geo = math.exp(r.apply(math.log).mean())
        rows.append([dt, peer, len(d), fmt(geo), fmt(r.min()), fmt(r.max())])
    rows.sort(key=lambda r: (DTYPE_ORDER.index(r[0]) if r[0] in DTYPE_ORDER else 9, r[1]))
    return rows, merged


def numerics_table(t, tol=1e-3):
    """Rel_err (normwise, against the float64 reference) of every timed variant, ours and the peers', per
    dtype: rows with a value, median, max, and how many are within the gate's tol. The peers compute
    theirs on the sequences they check (bench/peers); a faster peer with a larger error is not the same
    work."""
    if "rel_err" not in t.columns:
        return None
    rows = []
    for (dt, var), d in t.groupby(["dtype", "variant"], sort=False):
        e = pd.to_numeric(d["rel_err"], errors="coerce").dropna()
        if e.empty:
            continue
        rows.append([dt, var, len(e), fmt(e.median(), 2), fmt(e.max(), 2), f"{int((e <= tol).sum())} of {len(e)}"])
    if not rows:
        return None
    rows.sort(key=lambda r: (DTYPE_ORDER.index(r[0]) if r[0] in DTYPE_ORDER else 9, not r[1].startswith("minfer"), r[1]))
    return md_table(["dtype", "variant", "rows", "median rel_err", "max rel_err", f"within {tol:g}"], rows)


def real_shapes(ours, merged, axes):
    lab = ours[ours["label"].fillna("") != ""]
    if lab.empty:
        return ""
    ratio = {}
    for _, m in merged.iterrows():
        ratio.setdefault(m["case"], []).append(f"{m['variant_peer']} {m['median_us_peer'] / m['median_us']:.2f}x")
    rows = []
    same = "copy_same_gbps" in lab.columns
    for _, r in lab.sort_values(["label", "dtype"] + axes).iterrows():
        shape = " ".join(f"{a}={int(r[a])}" for a in axes if pd.notna(r[a]))
        row = [r["label"], r["dtype"], shape, fmt(r["median_us"], 4), fmt(r["gbps"], 4), fmt(r["sol_pct"])]
        if same:  # the copy of the same bytes, timed the same way: the achievable rate at this size
            row.append(fmt(r["gbps"] / r["copy_same_gbps"] * 100) if r.get("copy_same_gbps", 0) > 0 else "-")
        rows.append(row + [", ".join(ratio.get(r["case"], [])) or "-"])
    head = ["model", "dtype", "shape", "median us", "GB/s", "SOL%"] + (["% of same-size copy"] if same else [])
    return md_table(head + ["peer time / ours"], rows)


def prefill_targets(ours, peers):
    """Rows per (dtype, head_dim, causal) over cases with seqlen >= PREFILL_MIN_LEN: cases, median TFLOP/s of
    ours, torch-flash and torch-cudnn, cases where ours >= torch-flash, median speed vs torch-cudnn, and the
    largest rel_err of ours, torch-flash and torch-cudnn (the precision each bought its speed with: the gate
    is 1e-3)."""
    big = ours[ours["seqlen"] >= PREFILL_MIN_LEN]
    if big.empty or peers.empty:
        return []
    m = big.merge(peers, on=["source", "commit", "case"], suffixes=("", "_peer"))
    rows = []
    for (dt, hd, causal), g in big.groupby(["dtype", "head_dim", "causal"], sort=True):
        gm = m[(m["dtype"] == dt) & (m["head_dim"] == hd) & (m["causal"] == causal)]
        fl = gm[gm["variant_peer"] == "torch-flash"]
        cu = gm[gm["variant_peer"] == "torch-cudnn"]
        won = int((fl["median_us_peer"] >= fl["median_us"]).sum())
        rows.append([dt, int(hd), int(causal), len(g), fmt(g["tflops"].median()),
                     fmt(fl["tflops_peer"].median()) if not fl.empty else "-",
                     fmt(cu["tflops_peer"].median()) if not cu.empty else "-",
                     f"{won} of {len(fl)}" if not fl.empty else "-",
                     fmt((cu["median_us_peer"] / cu["median_us"]).median()) if not cu.empty else "-",
                     " / ".join(fmt(x.max(), 2) if not x.empty else "-"
                                for x in (g["rel_err"], fl["rel_err_peer"], cu["rel_err_peer"]))])
    return rows


def fastest_peer(peers):
    """The fastest peer row of each case (same file and commit): source, commit, case, variant, median_us."""
    return peers.loc[peers.groupby(["source", "commit", "case"])["median_us"].idxmin(),
                     ["source", "commit", "case", "variant", "median_us"]]


def decode_targets(ours, peers):
    """Rows per (dtype, paged): cases, median and min speed vs the fastest PyTorch backend of each case,
    cases at >= 1.0x, and over cases reading >= DECODE_BIG_BYTES: count and how many reach DECODE_MIN_SOL."""
    if peers.empty:
        return []
    m = ours.merge(fastest_peer(peers), on=["source", "commit", "case"], suffixes=("", "_best"))
    rows = []
    for (dt, paged), g in ours.groupby(["dtype", "paged"], sort=True):
        gm = m[(m["dtype"] == dt) & (m["paged"] == paged)]
        r = gm["median_us_best"] / gm["median_us"]
        big = g[g["gbps"] * g["median_us"] * 1e3 >= DECODE_BIG_BYTES]
        rows.append([dt, "paged" if int(paged) else "contiguous", len(g),
                     fmt(r.median()) if not r.empty else "-", fmt(r.min()) if not r.empty else "-",
                     f"{int((r >= 1.0).sum())} of {len(r)}", len(big),
                     f"{int((big['sol_pct'] >= DECODE_MIN_SOL).sum())} of {len(big)}" if not big.empty else "-",
                     fmt(big["sol_pct"].median()) if not big.empty else "-"])
    return rows


BEHIND_LIMIT = 12  # cases listed under a target table where a peer is still faster (the slowest first)


def behind_rows(m, peer_col, limit=BEHIND_LIMIT):
    """Rows (case, ours us, peer, peer us, speed, commit) of merged rows m where the peer's median is below ours,
    the lowest speed (peer time / ours) first, at most limit; and how many there are."""
    b = m[m["median_us_" + peer_col] < m["median_us"]].copy()
    b["speed"] = b["median_us_" + peer_col] / b["median_us"]
    b = b.sort_values(["speed", "case"])
    rows = [[r["case"], fmt(r["median_us"], 4), r["variant_" + peer_col], fmt(r["median_us_" + peer_col], 4),
             fmt(r["speed"]), r["commit"]] for _, r in b.head(limit).iterrows()]
    return rows, len(b)


def prefill_behind(ours, peers):
    """Cases of at least PREFILL_MIN_LEN tokens where torch-flash (the target's peer) is faster than ours."""
    big = ours[ours["seqlen"] >= PREFILL_MIN_LEN]
    fl = peers[peers["variant"] == "torch-flash"]
    if big.empty or fl.empty:
        return [], 0, 0
    m = big.merge(fl, on=["source", "commit", "case"], suffixes=("", "_peer"))
    rows, n = behind_rows(m, "peer")
    return rows, n, len(m)


def decode_behind(ours, peers):
    """Decode cases where the fastest PyTorch backend of the case is faster than ours."""
    if peers.empty:
        return [], 0, 0
    m = ours.merge(fastest_peer(peers), on=["source", "commit", "case"], suffixes=("", "_best"))
    rows, n = behind_rows(m, "best")
    return rows, n, len(m)


def behind_table(rows, n, total, intro):
    """The rows of behind_rows under a line: intro, then (n of total cases; the slowest shown where cut)."""
    if not rows:
        return []
    shown = "" if n <= len(rows) else f"; the {len(rows)} slowest"
    return [f"{intro} ({n} of {total}{shown}):", "",
            md_table(["case", "ours us", "peer", "peer us", "speed", "commit"], rows), ""]


def target_tables(sweep, ours, peers):
    if sweep == "attention" and {"seqlen", "head_dim", "causal"} <= set(ours.columns):
        rows = prefill_targets(ours, peers)
        if rows:
            return [f"Against the targets, cases of {PREFILL_MIN_LEN} tokens or more (median TFLOP/s; "
                    "speed = peer time / ours; max rel_err against the double-precision reference, gate 1e-3: "
                    "in bf16 ours keeps P as hi + lo for P V, two MMAs where the peers round P to bf16 once):", "",
                    md_table(["dtype", "head_dim", "causal", "cases", "ours TFLOP/s", "torch-flash TFLOP/s",
                              "torch-cudnn TFLOP/s", "ours >= torch-flash", "median speed vs torch-cudnn",
                              "max rel_err ours / torch-flash / torch-cudnn"], rows), ""] + \
                behind_table(*prefill_behind(ours, peers),
                             f"Cases of {PREFILL_MIN_LEN} tokens or more where torch-flash is faster than ours")
    if sweep == "decode" and "paged" in ours.columns:
        rows = decode_targets(ours, peers)
        if rows:
            return ["Against the targets (speed = time of the fastest PyTorch backend of the case / ours; the SDPA "
                    f"peers read a contiguous cache in paged cases; SOL% target {fmt(DECODE_MIN_SOL)} where a launch "
                    f"reads {DECODE_BIG_BYTES >> 20} MiB or more):", "",
                    md_table(["dtype", "cache", "cases", "median speed", "min speed", "cases >= 1.0x",
                              f"cases >= {DECODE_BIG_BYTES >> 20} MiB", f"of those SOL% >= {fmt(DECODE_MIN_SOL)}",
                              "their median SOL%"], rows), ""] + \
                behind_table(*decode_behind(ours, peers), "Cases where the fastest PyTorch backend is faster than ours")
    return []


def plot_sweep(df, gpu, sweep, path):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (variant, dt), d in df.groupby(["variant", "dtype"]):
        moved = d["gbps"] * d["median_us"] * 1e3  # bytes per launch
        ax.scatter(moved, d["gbps"], s=14, label=f"{variant} {dt}", marker="o" if variant.startswith("minfer") else "x")
    ceil = df["copy_gbps"].median()
    if pd.notna(ceil):
        ax.axhline(ceil, color="k", linestyle="--", linewidth=1, label=f"D2D copy {ceil:.0f} GB/s")
    ax.set_xscale("log")
    ax.set_xlabel("bytes moved per launch")
    ax.set_ylabel("achieved GB/s")
    ax.set_title(f"{sweep} on {gpu}")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def validation_section(val, gpu):
    v = val[(val["gpu"] == gpu) & (val["sweep"] != "model")] if not val.empty else val
    if v.empty:
        return []
    rows = []
    for (sweep, dt), d in v.groupby(["sweep", "dtype"]):
        passed = int((d["pass"] == 1).sum())
        rows.append([sweep, dt, len(d), passed, len(d) - passed, fmt(pd.to_numeric(d["rel_err"], errors="coerce").max())])
    return ["### Validation (validate_all)", "",
            md_table(["sweep", "dtype", "cases", "pass", "fail", "worst rel_err"], rows), ""]


def sweep_section(bench, gpu, sweep, plots_dir, report_dir):
    d = bench[(bench["gpu"] == gpu) & (bench["sweep"] == sweep)].copy()
    axes = axes_of(d, sweep)
    d["case"] = case_key(d, axes)
    t = timed(d)
    ours = t[t["variant"].astype(str).str.startswith("minfer")]
    peers = t[~t["variant"].astype(str).str.startswith("minfer")]
    out = [f"### {sweep}", ""]
    refused = d[d["variant"].astype(str).str.startswith("minfer") & ~d.index.isin(t.index)]
    if not refused.empty:
        out += [f"{len(refused)} case(s) of ours not timed (check failed or error).", ""]
    if ours.empty:
        return out + ["No timed rows of ours.", ""]
    out += ["Best SOL% of ours (achieved over the measured ceiling):", "", sol_table(ours), ""]
    ratio_rows, merged = peer_ratios(ours, peers)
    if ratio_rows:
        out += ["Peers measured in the same run (peer time / ours; > 1: ours is faster):", "",
                md_table(["dtype", "peer", "cases", "geomean", "min", "max"], ratio_rows), ""]
    else:
        out += ["No peer measured in the same run.", ""]
    out += target_tables(sweep, ours, peers)
    num = numerics_table(t)
    if num:
        out += ["Numerics of the timed rows (rel_err against the float64 reference, output rounded as stored; "
                "the gate of ours is 1e-3):", "", num, ""]
    shapes = real_shapes(ours, merged, axes)
    if shapes:
        out += ["Real model shapes:", "", shapes, ""]
    png = os.path.join(plots_dir, f"{gpu}_{sweep}.png")
    plot_sweep(t, gpu, sweep, png)
    out += [f"![{sweep} on {gpu}]({os.path.relpath(png, report_dir)})", ""]
    return out


def e2e_section(bench, gpu):
    d = bench[(bench["gpu"] == gpu) & (bench["sweep"] == "e2e")].copy()
    out = ["### e2e (whole model, bf16)", ""]
    st = d["status"].fillna("").astype(str)
    ok = d[st.str.startswith("ok") & d["median_us"].notna()]
    ours = ok[ok["variant"].astype(str).str.startswith("minfer")]
    peer = ok[~ok["variant"].astype(str).str.startswith("minfer")]
    key = ["model", "batch", "prompt_len"]
    rows = []
    for k, g in ours.groupby(key, sort=False):
        pre, dec = g[g["phase"] == "prefill"], g[g["phase"] == "decode"]
        if pre.empty or dec.empty:
            continue
        p, q = pre.iloc[0], dec.iloc[0]
        pd_ = peer[(peer["model"] == k[0]) & (peer["batch"] == k[1]) & (peer["prompt_len"] == k[2]) &
                   (peer["phase"] == "decode")]
        pms = pd_.iloc[0]["ms_per_step"] if not pd_.empty else float("nan")
        rows.append([k[0], int(k[1]), int(k[2]), fmt(p["median_us"] / 1e3, 4), fmt(p["tok_s"], 4), fmt(p["sol_pct"]),
                     fmt(q["ms_per_step"], 4), fmt(q["tok_s"], 4), fmt(q["sol_pct"]), fmt(q["peak_mem_mib"], 4),
                     fmt(pms, 4), fmt(pms / q["ms_per_step"]) if pd.notna(pms) else "-"])
    targets = e2e_targets(ours, peer)
    if targets:
        out += ["Against the targets (batch-1 decode: SOL% of the weight + KV floor at least the model's target, "
                "and faster than torch-graph):", "",
                md_table(["model", "target SOL%", "prompts", "decode SOL% (min - max)", "prompts >= target",
                          "min torch-graph / ours", "prompts ahead of torch-graph"], targets), ""]
    if rows:
        out += ["TTFT and prefill from one ragged prefill; MFU = prefill FLOPs / TTFT over the measured bf16 GEMM "
                "ceiling; decode SOL% = (weight + KV bytes per step) / step time over the copy ceiling; "
                "torch-graph = PyTorch decode step in one CUDA graph (peer time / ours > 1: ours is faster).", "",
                md_table(["model", "batch", "prompt", "TTFT ms", "prefill tok/s", "MFU%", "decode ms/step",
                          "decode tok/s", "decode SOL%", "peak MiB", "torch-graph ms/step", "peer / ours"], rows), ""]
    else:
        out += ["No timed e2e rows of ours.", ""]
    skipped = d[d["variant"].astype(str).str.startswith("minfer") & ~st.str.startswith("ok")]
    if not skipped.empty:
        reasons = skipped.groupby(["model", "status"]).size().reset_index(name="rows")
        out += ["Not timed:", "", md_table(["model", "reason", "rows"],
                                           [[r["model"], r["status"][:160], int(r["rows"])] for _, r in reasons.iterrows()]), ""]
    return out


def e2e_targets(ours, peer):
    """Rows per model of E2E_MIN_SOL with batch-1 decode rows: its target, the prompts timed, the SOL% range,
    how many meet the target, the smallest torch-graph / ours ratio and how many prompts ours is ahead."""
    rows = []
    for model, target in E2E_MIN_SOL.items():
        dec = ours[(ours["model"] == model) & (ours["batch"] == 1) & (ours["phase"] == "decode")]
        if dec.empty:
            continue
        pg = peer[(peer["model"] == model) & (peer["batch"] == 1) & (peer["phase"] == "decode")]
        m = dec.merge(pg[["prompt_len", "ms_per_step"]], on="prompt_len", how="left", suffixes=("", "_peer"))
        ratio = (m["ms_per_step_peer"] / m["ms_per_step"]).dropna()
        rows.append([model, fmt(target), len(dec), f"{fmt(dec['sol_pct'].min())} - {fmt(dec['sol_pct'].max())}",
                     f"{int((dec['sol_pct'] >= target).sum())} of {len(dec)}",
                     fmt(ratio.min()) if not ratio.empty else "-",
                     f"{int((ratio > 1.0).sum())} of {len(ratio)}" if not ratio.empty else "-"])
    return rows


def model_validation_section(val, gpu):
    v = val[(val["gpu"] == gpu) & (val["sweep"] == "model")] if not val.empty and "phase" in val.columns else None
    if v is None or v.empty:
        return []
    s = v[v["phase"] == "summary"]
    rows = []
    for (model, dt), g in s.groupby(["model", "dtype"]):
        agree = pd.to_numeric(g["token_agree"], errors="coerce")
        rows.append([model, dt, len(g), int((g["pass"] == 1).sum()), fmt(pd.to_numeric(g["rel_err"], errors="coerce").max()),
                     fmt(agree.min()), fmt(pd.to_numeric(g["bound"], errors="coerce").max())])
    return ["### Whole-model logits (validate_all --sweep model)", "",
            md_table(["model", "dtype", "cases", "pass", "worst rel_err", "min greedy agreement", "bound"], rows), ""]


TIMELINE_COLS = {"kernel", "calls", "share_us", "share_pct", "dur_us", "wait_us"}


def timeline_section(data_dir, gpu):
    """Decode steps on the GPU clock: reports/data/<gpu>/timeline/timeline_<model>_p<prompt>.csv.groups.csv
    (minfer generate --timeline-csv: the median traced CUDA-graph step, kernels grouped by name and grid in
    first-start order). Share = how far a kernel moved the step's end past the kernels before it (the
    shares add up to the step); duration includes time spent launched early, waiting on its inputs."""
    folder = os.path.join(data_dir, gpu, "timeline")
    files = sorted(f for f in os.listdir(folder) if f.endswith(".groups.csv")) if os.path.isdir(folder) else []
    if not files:
        return []
    out = ["### Decode step on the GPU clock (CUDA graph, CUPTI)", "",
           "One traced graph step (the median of the traced steps) per model, bf16, batch 1 "
           "(`minfer generate --timeline-csv`). share: how far the kernel moved the step's end past the kernels "
           "before it (the shares add up to the step); duration: start to end, including time launched early "
           "(programmatic dependent launch) while the kernel before it still ran.", ""]
    for name in files:
        path = os.path.join(folder, name)
        df = pd.read_csv(path)
        if not TIMELINE_COLS <= set(df.columns):
            raise ValueError(f"{path}: missing columns {sorted(TIMELINE_COLS - set(df.columns))}")
        tag = name[len("timeline_"):] if name.startswith("timeline_") else name
        tag = tag[: -len(".csv.groups.csv")] if tag.endswith(".csv.groups.csv") else tag[: -len(".groups.csv")]
        step = df["share_us"].sum()
        rows = [[r["kernel"], int(r["calls"]), fmt(r["share_us"], 4), fmt(r["share_pct"]),
                 fmt(r["share_us"] / r["calls"]), fmt(r["dur_us"] / r["calls"])] for _, r in df.iterrows()]
        out += [f"{tag}: step {fmt(step, 4)} us over {int(df['calls'].sum())} kernels", "",
                md_table(["kernel (grid)", "calls", "share us", "share %", "share us / call", "duration us / call"],
                         rows), ""]
    return out


def gpu_section(bench, val, gpu, plots_dir, report_dir, data_dir=None):
    out = [f"## {gpu}", ""]
    b = bench[bench["gpu"] == gpu] if not bench.empty else bench
    if not b.empty:
        cuda = ", ".join(sorted(b["cuda"].astype(str).unique()))
        commits = ", ".join(commit_label(c) for c in sorted(b["commit"].astype(str).unique()))
        out += [f"Ceilings measured in the runs: D2D copy {fmt(b['copy_gbps'].median(), 4)} GB/s, "
                f"cuBLAS bf16 GEMM {fmt(b['gemm_tflops'].median(), 4)} TFLOP/s. CUDA {cuda}; commit {commits}.", ""]
        out += switches_line(b)
        for sweep in sorted(b["sweep"].unique()):
            if sweep == "e2e":
                out += e2e_section(bench, gpu)
                out += timeline_section(data_dir, gpu) if data_dir else []
            else:
                out += sweep_section(bench, gpu, sweep, plots_dir, report_dir)
    return out + validation_section(val, gpu) + model_validation_section(val, gpu)


def tokenizer_section(data_dir):
    """Encoding speed, minfer's tokenizer against HF tokenizers in the same run
    (reports/data/<host>/tokenizer/tokenizer.csv from scripts/bench_tokenizer.sh; a folder of its own, out of
    the sweep CSVs' <gpu>/*.csv that the gate reads), one table per file."""
    lines = []
    for host in sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else []:
        path = os.path.join(data_dir, host, "tokenizer", "tokenizer.csv")
        if not os.path.isfile(path):
            continue
        df = pd.read_csv(path)
        need = {"tokenizer", "text", "impl", "mb_per_s", "tokens", "text_bytes", "cpu_model"}
        if not need <= set(df.columns):
            raise ValueError(f"{path}: missing columns {sorted(need - set(df.columns))}")
        if not lines:
            lines += ["## Tokenizer encoding speed", "",
                      "One thread, warm word caches, the whole text per encode; HF tokenizers timed in the same run "
                      "(scripts/bench_tokenizer.sh). Both give the same token count for every case.", ""]
        lines += [f"### {host}/tokenizer/tokenizer.csv ({df['cpu_model'].iloc[0]})", "",
                  "| tokenizer | text | bytes | tokens | minfer MB/s | HF tokenizers MB/s | ratio |", "|---|---|---|---|---|---|---|"]
        piv = df.pivot_table(index=["tokenizer", "text", "text_bytes", "tokens"], columns="impl", values="mb_per_s")
        for (tok, text, nb, nt), r in piv.iterrows():
            ours, hf = r.get("minfer"), r.get("hf_tokenizers")
            ratio = f"{ours / hf:.2f}x" if pd.notna(ours) and pd.notna(hf) and hf > 0 else "-"
            lines.append(f"| {tok} | {text} | {nb} | {nt} | {ours:.2f} | {hf:.2f} | {ratio} |")
        lines.append("")
    return lines


def build_report(data_dir, out_path, plots_dir):
    bench, val = load(data_dir)
    os.makedirs(plots_dir, exist_ok=True)
    report_dir = os.path.dirname(os.path.abspath(out_path))
    gpus = sorted(set(bench["gpu"].unique() if not bench.empty else []) | set(val["gpu"].unique() if not val.empty else []))
    lines = ["# minfer kernel report", "",
             "Generated by reports/make_report.py from reports/data/<gpu>/*.csv. SOL% is achieved bandwidth "
             "over the D2D copy bandwidth measured in the same run; every speed claim is a ratio against a peer "
             "measured in the same run on the same GPU.", ""]
    if not gpus:
        lines += ["No data found under " + data_dir + ".", ""]
    for gpu in gpus:
        lines += gpu_section(bench, val, gpu, plots_dir, report_dir, data_dir)
    lines += tokenizer_section(data_dir)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    os.replace(tmp, out_path)
    return len(gpus)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(here, "data"), help="folder of <gpu>/*.csv")
    ap.add_argument("--out", default=os.path.join(here, "REPORT.md"), help="report to write")
    ap.add_argument("--plots", default=os.path.join(here, "plots"), help="folder for PNG plots")
    args = ap.parse_args(argv)
    try:
        n = build_report(args.data, args.out, args.plots)
    except (OSError, KeyError, ValueError, pd.errors.ParserError) as e:
        print(f"make_report: bad input: {e}", file=sys.stderr)
        return 2
    print(f"make_report: {n} GPU(s) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
