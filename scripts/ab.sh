#!/usr/bin/env bash
# scripts/ab.sh: A/B timing of environment switches (README.md lists them) on one GPU, back to back:
# bench_all over the same cases once as built (with the PyTorch peers) and once per setting (ours
# only; each switch is read once per process, so every setting is its own process), merged by
# tools/ab_merge.py into one CSV with the variant of ours renamed minfer[SETTING], and a summary of
# the speed of each setting against the baseline (baseline time / setting time).
# Usage: scripts/ab.sh OUTDIR --sweep S [--dtype D] [--case ID]... [--cases FILE] [--quick]
#        [--peers on|off|auto] [--build DIR] SETTING [SETTING ...]
#   SETTING: VAR=VAL, or several joined by commas (VAR=VAL,VAR2=VAL2: applied together)
# Writes OUTDIR/ab_<sweep>.csv (merged), OUTDIR/ab_<sweep>.<n>.csv (run n; 0 the baseline), and
# OUTDIR/ab_<sweep>.<n>.log; exits non-zero if a run failed (the others still run).
# Example: scripts/ab.sh out/ab --sweep attention --dtype bf16 --cases cases.txt MINFER_PREFILL=v1 MINFER_PREFILL_PV=f16
set -u -o pipefail

. "$(dirname "$0")/lib.sh"
outdir_first "$@"
OUTDIR=$1; shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/gpu
SWEEP=""
PEERS=auto
ARGS=()
SETTINGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sweep) SWEEP=${2:?--sweep needs a name}; shift 2 ;;
    --dtype) ARGS+=(--dtype "${2:?--dtype needs a dtype}"); shift 2 ;;
    --case) ARGS+=(--case "${2:?--case needs an id}"); shift 2 ;;
    --cases)
      [ -r "${2:-}" ] || { echo "ab.sh: --cases: cannot read '${2:-}'" >&2; exit 2; }
      while read -r c; do [ -n "$c" ] && ARGS+=(--case "$c"); done < "$2"
      shift 2 ;;
    --quick) ARGS+=(--quick); shift ;;
    --peers) PEERS=${2:?--peers needs on, off or auto}; shift 2 ;;
    --build) BUILD=${2:?--build needs a folder}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "ab.sh: unknown option '$1'" >&2; usage ;;
    *=*) SETTINGS+=("$1"); shift ;;
    *) echo "ab.sh: '$1' is not a VAR=VAL setting" >&2; usage ;;
  esac
done
[ -n "$SWEEP" ] || { echo "ab.sh: --sweep is required" >&2; exit 2; }
[ ${#SETTINGS[@]} -gt 0 ] || { echo "ab.sh: give at least one VAR=VAL setting" >&2; exit 2; }
[ -x "$BUILD/bench/bench_all" ] || { echo "ab.sh: no $BUILD/bench/bench_all (build first: scripts/gpu_run.sh OUT --only build)" >&2; exit 2; }
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RC=0

# run N PEERS [VAR=VAL ...]: bench_all under those variables -> ab_<sweep>.N.csv
run() {
  local n=$1 peers=$2; shift 2
  echo "== ab.sh: run $n ${*:-(baseline)}" >&2
  if ! env "$@" "$BUILD/bench/bench_all" --sweep "$SWEEP" --peers "$peers" "${ARGS[@]}" \
      --csv "$OUTDIR/ab_$SWEEP.$n.csv" > "$OUTDIR/ab_$SWEEP.$n.log" 2>&1; then
    echo "ab.sh: run $n failed (see $OUTDIR/ab_$SWEEP.$n.log)" >&2
    RC=1
  fi
}

run 0 "$PEERS"
MERGE=()
i=1
for s in "${SETTINGS[@]}"; do
  IFS=, read -r -a vars <<< "$s"
  run "$i" off "${vars[@]}"
  [ -f "$OUTDIR/ab_$SWEEP.$i.csv" ] && MERGE+=("$s=$OUTDIR/ab_$SWEEP.$i.csv")
  i=$((i + 1))
done
[ -f "$OUTDIR/ab_$SWEEP.0.csv" ] || { echo "ab.sh: the baseline run wrote no CSV" >&2; exit 1; }
python3 "$ROOT/tools/ab_merge.py" --out "$OUTDIR/ab_$SWEEP.csv" "$OUTDIR/ab_$SWEEP.0.csv" "${MERGE[@]}" || RC=1
exit $RC
