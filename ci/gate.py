#!/usr/bin/env python3
"""ci/gate.py: the CI gate over validate_all and bench_all CSVs (DESIGN.md sections 4 and 6).

Numerics: every validate row (a CSV with a `pass` column) must have pass == 1 and rel_err <= 1e-3,
or <= the row's own `bound` column where it carries one (bf16 whole-model rows: a written, measured
bound); a NaN or missing rel_err fails. Every bench row of ours (variant minfer*) must have status
"ok" (bench refuses to time a variant whose check failed) or "skipped: <reason>" (a case the engine
does not run, e.g. MoE or past memory, said so).
Performance: a bench row of ours whose (gpu, sweep, variant, dtype, axes) also appears in
ci/baselines/<gpu>/*.csv fails when its median_us is more than --threshold (10%) above the
baseline's. Rows with no baseline are counted, not failed.

Exit 0 pass, 1 a gate failed, 2 bad input (unreadable file, missing column, unparsable number).
Standard library only, so it runs on any CI machine.
"""
import argparse
import csv
import math
import os
import sys

TOL = 1e-3
# Columns that are not axes of a case; every other column is an axis (part of the case key).
NON_AXES = {
    "sweep", "variant", "dtype", "label", "median_us", "p10_us", "p90_us", "tflops", "gbps", "sol_pct",
    "peak_mem_mib", "rel_err", "max_abs", "max_rel", "worst_index", "nonfinite", "pass", "copy_gbps", "copy_same_gbps",
    "gemm_tflops", "gpu", "cuda", "commit", "repro", "status",
    # whole-model rows: measurements and bounds, not case axes (model, batch, prompt_len, phase stay axes)
    "tok_s", "ms_per_step", "token_agree", "tokens", "bound", "agree_bound", "error", "step",
}
NEEDED = {"sweep", "variant", "dtype", "gpu"}


class BadInput(Exception):
    """A file or field that cannot be read: exit 2."""


def read_rows(path):
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise BadInput(f"{path}: header: file is empty")
            missing = NEEDED - set(reader.fieldnames)
            if missing:
                raise BadInput(f"{path}: header: missing column(s) {', '.join(sorted(missing))}")
            return list(reader.fieldnames), list(reader)
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror}") from e
    except csv.Error as e:
        raise BadInput(f"{path}: malformed CSV: {e}") from e


def number(path, line, row, col):
    """The float in row[col]; 'nan'/'inf' allowed, empty or garbage is bad input."""
    text = (row.get(col) or "").strip()
    try:
        return float(text)
    except ValueError:
        raise BadInput(f"{path}: line {line}: {col}: not a number: {text!r}") from None


def case_key(row):
    axes = tuple(sorted((k, v) for k, v in row.items() if k not in NON_AXES and k and v not in ("", None)))
    return (row["sweep"], row["variant"], row["dtype"]) + axes


def describe(row):
    axes = ",".join(f"{k}={v}" for k, v in case_key(row)[3:])
    return f"{row['sweep']}/{row['variant']}/{row['dtype']}/{axes}"


def check_numerics(path, header, rows):
    """Failure messages for the numeric gate over one file."""
    fails = []
    is_validate = "pass" in header
    for i, row in enumerate(rows, start=2):
        if is_validate:
            if "rel_err" not in header:
                raise BadInput(f"{path}: header: missing column rel_err")
            err = number(path, i, row, "rel_err")
            ok = (row.get("pass") or "").strip() == "1"
            # A row may carry its own written, measured bound (bf16 whole-model runs); else 1e-3.
            bound = number(path, i, row, "bound") if (row.get("bound") or "").strip() else TOL
            if not ok or not err <= bound:
                fails.append(f"{path}:{i}: numerics: {describe(row)} rel_err={err:.3e} pass={row.get('pass')}")
        elif (row["variant"].startswith("minfer") and "status" in header and row.get("status") != "ok"
              and not (row.get("status") or "").startswith("skipped:")):
            fails.append(f"{path}:{i}: numerics: {describe(row)} not timed: {row.get('status')}")
    return fails


def load_baselines(root, gpu, cache):
    """(case key -> median_us) from root/<gpu>/*.csv, read once per gpu."""
    if gpu in cache:
        return cache[gpu]
    table = {}
    folder = os.path.join(root, gpu)
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".csv"):
                continue
            path = os.path.join(folder, name)
            header, rows = read_rows(path)
            if "median_us" not in header:
                continue
            for i, row in enumerate(rows, start=2):
                if (row.get("median_us") or "").strip():
                    table[case_key(row)] = number(path, i, row, "median_us")
    cache[gpu] = table
    return table


def check_perf(path, header, rows, root, threshold, cache):
    """(failure messages, rows compared) for the regression check over one bench file."""
    if "median_us" not in header:
        return [], 0
    fails, compared = [], 0
    for i, row in enumerate(rows, start=2):
        if not row["variant"].startswith("minfer") or not (row.get("median_us") or "").strip():
            continue
        base = load_baselines(root, row["gpu"], cache).get(case_key(row))
        if base is None or not math.isfinite(base) or base <= 0:
            continue
        now = number(path, i, row, "median_us")
        compared += 1
        if now > base * (1.0 + threshold):
            fails.append(f"{path}:{i}: perf: {describe(row)} median {now:.4g} us vs baseline {base:.4g} us "
                         f"(+{(now / base - 1) * 100:.1f}% > {threshold * 100:.0f}%)")
    return fails, compared


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="validate_all / bench_all CSVs")
    ap.add_argument("--baselines", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "baselines"),
                    help="folder of <gpu>/*.csv baselines (default: ci/baselines)")
    ap.add_argument("--threshold", type=float, default=0.10, help="allowed slowdown fraction (default 0.10)")
    args = ap.parse_args(argv)
    fails, rows_seen, compared, cache = [], 0, 0, {}
    try:
        for path in args.csv:
            header, rows = read_rows(path)
            rows_seen += len(rows)
            fails += check_numerics(path, header, rows)
            f, n = check_perf(path, header, rows, args.baselines, args.threshold, cache)
            fails += f
            compared += n
    except BadInput as e:
        print(f"gate: bad input: {e}", file=sys.stderr)
        return 2
    for msg in fails:
        print(msg)
    print(f"gate: {rows_seen} rows in {len(args.csv)} file(s), {compared} compared with baselines, "
          f"{len(fails)} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
