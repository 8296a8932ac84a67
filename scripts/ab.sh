#!/usr/bin/env bash
# scripts/ab.sh: A/B timing of environment switches (README.md lists them) on one GPU, back to back:
# bench_all over the same cases once as built (with the PyTorch peers) and once per setting (ours
# only; each switch is read once per process, so every setting is its own process), merged by
# tools/ab_merge.py into one CSV with the variant of ours renamed minfer[SETTING], and a summary of
# the speed of each setting against the baseline (baseline time / setting time).
# Usage: scripts/ab.sh OUTDIR --sweep S [--dtype D] [--case ID]... [--cases FILE]... [--quick]
#        [--peers on|off|auto] [--build DIR] [--rounds N] [--peer-rounds first|all] SETTING [SETTING ...]
#   SETTING: VAR=VAL, or several joined by commas (VAR=VAL,VAR2=VAL2: applied together; a value may
#   hold commas: a comma starts a new item only where VAR= follows it)
#   --cases FILE: a case id a line (empty lines and lines starting with # skipped); may be given more than once
#   --rounds N: the baseline and the settings N times, interleaved (peers in the first round only);
#   each row of ours then carries the median over the rounds, and the summary states the baseline's
#   run-to-run spread (tools/ab_merge.py). Default 1.
#   --peer-rounds all: the peers in every round's baseline run (each peer row then the median over the
#   rounds, as ours), for a ratio to the peers that is judged against the same spread; default first.
# Writes OUTDIR/ab_<sweep>.csv (merged), OUTDIR/ab_<sweep>.<n>.csv (run n; 0 the baseline; round r > 1:
# ab_<sweep>.<n>.r<r>.csv), and the matching .log files; exits non-zero if a run failed (the others
# still run).
# Example: scripts/ab.sh out/ab --sweep attention --dtype bf16 --cases cases.txt MINFER_PREFILL=v1 MINFER_PREFILL_PV=f16
set -u -o pipefail

. "$(dirname "$0")/lib.sh"
outdir_first "$@"
OUTDIR=$1; shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/gpu
SWEEP=""
PEERS=auto
ROUNDS=1
PEER_ROUNDS=first
ARGS=()
SETTINGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sweep) SWEEP=${2:?--sweep needs a name}; shift 2 ;;
    --dtype) ARGS+=(--dtype "${2:?--dtype needs a dtype}"); shift 2 ;;
    --case) ARGS+=(--case "${2:?--case needs an id}"); shift 2 ;;
    --cases)
      [ -r "${2:-}" ] || { echo "ab.sh: --cases: cannot read '${2:-}'" >&2; exit 2; }
      while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && ARGS+=(--case "$c"); done < "$2"
      shift 2 ;;
    --quick) ARGS+=(--quick); shift ;;
    --peers) PEERS=${2:?--peers needs on, off or auto}; shift 2 ;;
    --build) BUILD=${2:?--build needs a folder}; shift 2 ;;
    --rounds)
      ROUNDS=${2:-}
      [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: --rounds: a positive count, got '$ROUNDS'" >&2; exit 2; }
      shift 2 ;;
    --peer-rounds)
      PEER_ROUNDS=${2:-}
      [[ "$PEER_ROUNDS" =~ ^(first|all)$ ]] || { echo "ab.sh: --peer-rounds: first or all, got '$PEER_ROUNDS'" >&2; exit 2; }
      shift 2 ;;
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

# The file stem of run N in round R: ab_<sweep>.N, with .rR past the first round.
stem() { if [ "$2" -eq 1 ]; then echo "$OUTDIR/ab_$SWEEP.$1"; else echo "$OUTDIR/ab_$SWEEP.$1.r$2"; fi; }

# run N R PEERS [VAR=VAL ...]: bench_all under those variables -> stem.csv
run() {
  local n=$1 round=$2 peers=$3 f
  shift 3
  f=$(stem "$n" "$round")
  echo "== ab.sh: round $round/$ROUNDS, run $n ${*:-(baseline)}" >&2
  if ! env "$@" "$BUILD/bench/bench_all" --sweep "$SWEEP" --peers "$peers" "${ARGS[@]}" \
      --csv "$f.csv" > "$f.log" 2>&1; then
    echo "ab.sh: run $n of round $round failed (see $f.log)" >&2
    RC=1
  fi
}

# split_setting SETTING -> vars: its VAR=VAL items; a comma starts a new item only where VAR= follows it,
# so that a value may hold commas (MINFER_NORM_IN_SPLITS=1,4,0,4,MINFER_NORM_IN=1: two items).
split_setting() {
  local p cur="" parts=()
  vars=()
  IFS=, read -r -a parts <<< "$1"
  for p in "${parts[@]}"; do
    if [ -z "$cur" ]; then cur=$p
    elif [[ "$p" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then vars+=("$cur"); cur=$p
    else cur="$cur,$p"; fi
  done
  [ -z "$cur" ] || vars+=("$cur")
}

for ((r = 1; r <= ROUNDS; r++)); do
  if [ "$r" -eq 1 ] || [ "$PEER_ROUNDS" = all ]; then run 0 "$r" "$PEERS"; else run 0 "$r" off; fi
  i=1
  for s in "${SETTINGS[@]}"; do
    split_setting "$s"
    run "$i" "$r" off "${vars[@]}"
    i=$((i + 1))
  done
done
# files N: the CSVs run N wrote, one per round, joined by commas (rounds without a CSV left out)
files() {
  local r f out=""
  for ((r = 1; r <= ROUNDS; r++)); do
    f="$(stem "$1" "$r").csv"
    [ -f "$f" ] && out="${out:+$out,}$f"
  done
  echo "$out"
}
BASE=$(files 0)
[ -f "$OUTDIR/ab_$SWEEP.0.csv" ] || { echo "ab.sh: the baseline run wrote no CSV" >&2; exit 1; }
MERGE=()
i=1
for s in "${SETTINGS[@]}"; do
  f=$(files "$i")
  [ -n "$f" ] && MERGE+=("$s=$f")
  i=$((i + 1))
done
python3 "$ROOT/tools/ab_merge.py" --out "$OUTDIR/ab_$SWEEP.csv" "$BASE" "${MERGE[@]}" || RC=1
exit $RC
