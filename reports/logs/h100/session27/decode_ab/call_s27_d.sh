#!/usr/bin/env bash
# Session 27, call 3 (warm machine): llama-3.1-8b's traced decode step (p128), then 3 stages and the
# fill split rule against the default on bench/cases/decode_regress.txt, ours only, 2 interleaved rounds.
O=$1
B=build/dev
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
timeout 100 $B/engine/minfer generate --model preset:llama-3.1-8b --backend cuda --dtype bf16 \
  --prompt-tokens "$(seq -s, 11 138)" --max-new-tokens 32 --timeline-csv $O/timeline_llama-3.1-8b_p128.csv \
  > $O/timeline_llama-3.1-8b_p128.log 2>&1
el "timeline llama-3.1-8b p128" $?
ab=(); while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && ab+=(--case "$c"); done < bench/cases/decode_regress.txt
for r in 1 2; do
  for s in DEFAULT=1 MINFER_DECODE_STAGES=3 MINFER_DECODE_SPLITS=fill; do
    [ $(( $(date +%s) - T0 )) -lt 250 ] || break 2
    n=${s%%=*}; n=${n#MINFER_DECODE_}
    timeout 40 env $s $B/bench/bench_all --sweep decode --dtype bf16 --peers off "${ab[@]}" --csv $O/dab_${n}_r$r.csv > $O/dab_${n}_r$r.log 2>&1
    el "decode $s round $r" $?
  done
done
