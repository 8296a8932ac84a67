#!/usr/bin/env bash
# scripts/regress_e2e.sh: times the same cases with two bench_all binaries (this build and an older
# one, e.g. packed from another commit's build), interleaved for N rounds on one GPU, ours only, and
# prints per case and binary the median over the rounds (e2e: decode ms/step; another sweep: median_us
# of each case) with their ratio new/old: a regression check between commits that ab.sh (one binary
# under environment switches) cannot make.
# Usage: scripts/regress_e2e.sh OUTDIR --old BENCH_ALL --new BENCH_ALL --cases FILE [--rounds N] [--sweep NAME]
#   --sweep: the sweep the cases belong to (default e2e; e.g. decode, attention)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
outdir_first "$@"
OUTDIR=$1; shift
OLD="" NEW="" CASES="" ROUNDS=2 SWEEP=e2e
while [ $# -gt 0 ]; do
  case "$1" in
    --old) OLD=${2:?--old needs a binary}; shift 2 ;;
    --new) NEW=${2:?--new needs a binary}; shift 2 ;;
    --cases) CASES=${2:?--cases needs a file}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --sweep) SWEEP=${2:?--sweep needs a sweep name}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "regress_e2e.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for f in "$OLD" "$NEW"; do [ -x "$f" ] || { echo "regress_e2e.sh: '$f' is not an executable bench_all (--old, --new)" >&2; exit 2; }; done
[ -r "$CASES" ] || { echo "regress_e2e.sh: --cases: cannot read '$CASES'" >&2; exit 2; }
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "regress_e2e.sh: --rounds must be a whole number >= 1, got '$ROUNDS'" >&2; exit 2 ;; esac
case "$SWEEP" in '' | *[!a-z0-9_]*) echo "regress_e2e.sh: --sweep: not a sweep name: '$SWEEP'" >&2; exit 2 ;; esac
mkdir -p "$OUTDIR"
args=()
while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && args+=(--case "$c"); done < "$CASES"
for ((r = 1; r <= ROUNDS; r++)); do
  for which in old new; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    echo "== round $r/$ROUNDS: $which ($bin)"
    "$bin" --sweep "$SWEEP" --peers off "${args[@]}" --csv "$OUTDIR/$which.r$r.csv" > "$OUTDIR/$which.r$r.log" 2>&1 ||
      echo "regress_e2e.sh: $which round $r failed (see $OUTDIR/$which.r$r.log)"
  done
done
python3 - "$OUTDIR" "$ROUNDS" "$SWEEP" <<'PY'
import csv, statistics, sys, os
out, rounds, sweep = sys.argv[1], int(sys.argv[2]), sys.argv[3]
e2e = sweep == "e2e"
unit = "ms/step" if e2e else "us"
ms = {}
for which in ("old", "new"):
    for r in range(1, rounds + 1):
        f = os.path.join(out, f"{which}.r{r}.csv")
        if not os.path.exists(f):
            continue
        for row in csv.DictReader(open(f)):
            if row["status"] != "ok" or row["variant"] != "minfer":
                continue
            if e2e:
                if row["phase"] != "decode":
                    continue
                key, value = f"{row['model']} b{row['batch']} p{row['prompt_len']}", row["ms_per_step"]
            else:  # the case as the row's repro names it
                key, value = row["repro"].split("--case ")[-1].strip(), row["median_us"]
            ms.setdefault(key, {}).setdefault(which, []).append(float(value))
width = max([32] + [len(k) for k in ms])
print(f"{'case':{width}s} {'old ' + unit:>12s} {'new ' + unit:>12s} {'new/old':>8s}")
for key, v in ms.items():
    o = statistics.median(v.get("old", [float("nan")])); n = statistics.median(v.get("new", [float("nan")]))
    print(f"{key:{width}s} {o:12.4f} {n:12.4f} {n / o:8.3f}   (old {v.get('old')}, new {v.get('new')})")
PY
