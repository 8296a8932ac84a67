#!/usr/bin/env bash
# scripts/regress_e2e.sh: times the same e2e cases with two bench_all binaries (this build and an older
# one, e.g. packed from another commit's build), interleaved for N rounds on one GPU, ours only, and
# prints ms/step per case and binary (the median of the rounds) with their ratio: a regression check
# between commits that ab.sh (one binary under environment switches) cannot make.
# Usage: scripts/regress_e2e.sh OUTDIR --old BENCH_ALL --new BENCH_ALL --cases FILE [--rounds N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
outdir_first "$@"
OUTDIR=$1; shift
OLD="" NEW="" CASES="" ROUNDS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --old) OLD=${2:?--old needs a binary}; shift 2 ;;
    --new) NEW=${2:?--new needs a binary}; shift 2 ;;
    --cases) CASES=${2:?--cases needs a file}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "regress_e2e.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for f in "$OLD" "$NEW"; do [ -x "$f" ] || { echo "regress_e2e.sh: '$f' is not an executable bench_all (--old, --new)" >&2; exit 2; }; done
[ -r "$CASES" ] || { echo "regress_e2e.sh: --cases: cannot read '$CASES'" >&2; exit 2; }
mkdir -p "$OUTDIR"
args=()
while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && args+=(--case "$c"); done < "$CASES"
for ((r = 1; r <= ROUNDS; r++)); do
  for which in old new; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    echo "== round $r/$ROUNDS: $which ($bin)"
    "$bin" --sweep e2e --dtype bf16 --peers off "${args[@]}" --csv "$OUTDIR/$which.r$r.csv" > "$OUTDIR/$which.r$r.log" 2>&1 ||
      echo "regress_e2e.sh: $which round $r failed (see $OUTDIR/$which.r$r.log)"
  done
done
python3 - "$OUTDIR" "$ROUNDS" <<'PY'
import csv, statistics, sys, os
out, rounds = sys.argv[1], int(sys.argv[2])
ms = {}
for which in ("old", "new"):
    for r in range(1, rounds + 1):
        f = os.path.join(out, f"{which}.r{r}.csv")
        if not os.path.exists(f):
            continue
        for row in csv.DictReader(open(f)):
            if row["phase"] == "decode" and row["status"] == "ok" and row["variant"] == "minfer":
                key = f"{row['model']} b{row['batch']} p{row['prompt_len']}"
                ms.setdefault(key, {}).setdefault(which, []).append(float(row["ms_per_step"]))
print(f"{'case':32s} {'old ms/step':>12s} {'new ms/step':>12s} {'new/old':>8s}")
for key, v in ms.items():
    o = statistics.median(v.get("old", [float("nan")])); n = statistics.median(v.get("new", [float("nan")]))
    print(f"{key:32s} {o:12.4f} {n:12.4f} {n / o:8.3f}   (old {v.get('old')}, new {v.get('new')})")
PY
