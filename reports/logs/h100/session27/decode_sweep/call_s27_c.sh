#!/usr/bin/env bash
# Session 27, call 2 (on the warm machine of the grid call): the traced CUDA-graph decode step of
# qwen3-0.6b (p128, p2048) and llama-3.1-8b (p128), then the whole decode sweep in bf16 with the peers.
O=$1
B=build/dev
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
for mp in qwen3-0.6b:128 qwen3-0.6b:2048 llama-3.1-8b:128; do
  m=${mp%%:*}; p=${mp##*:}
  timeout 40 $B/engine/minfer generate --model preset:$m --backend cuda --dtype bf16 \
    --prompt-tokens "$(seq -s, 11 $((10 + p)))" --max-new-tokens 32 --timeline-csv $O/timeline_${m}_p$p.csv \
    > $O/timeline_${m}_p$p.log 2>&1
  el "timeline $m p$p" $?
done
timeout $(( 465 - ($(date +%s) - T0) )) $B/bench/bench_all --sweep decode --dtype bf16 --peers auto --csv $O/decode.csv > $O/decode.log 2>&1
el "decode sweep" $?; tail -2 $O/decode.log
