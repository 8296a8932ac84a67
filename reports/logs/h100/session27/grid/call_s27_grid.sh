#!/usr/bin/env bash
# Session 27: the e2e grid at one commit (issue 3), with torch-graph in the same run. One bench_all per
# (model, batch pair) so that a run stopped by the time limit keeps the chunks it finished (bench_all
# writes an e2e CSV at its end); a chunk starts only while more than MIN_LEFT seconds are left.
# Run: scripts/device_call.sh $OUT 575 bash .carry/call_s27_grid.sh @RUN LIMIT_S MODEL:BATCHES ...
#   e.g. ... 560 qwen3-0.6b:1,4 qwen3-0.6b:16,32
O=$1; LIMIT=$2; shift 2
B=build/dev
if [ "$(cat $B/COMMIT 2>/dev/null)" != "$(tar -xJOf .carry/bins.tar.xz ./COMMIT 2>/dev/null)" ]; then
  rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins.tar.xz
fi
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for mb in "$@"; do
  m=${mb%%:*}; bs=${mb##*:}
  left=$(( LIMIT - ($(date +%s) - T0) ))
  [ $left -gt ${MIN_LEFT:-60} ] || { echo "$m batch $bs: not started ($left s left)"; continue; }
  re="/$m/batch=(${bs//,/|})/"
  cases=(); while read -r c; do cases+=(--case "$c"); done < <($B/bench/bench_all --sweep e2e --dtype bf16 --list | grep -E "$re")
  tag=${m}_b${bs//,/_}
  timeout $left $B/bench/bench_all --sweep e2e --dtype bf16 --peers auto "${cases[@]}" --csv $O/e2e_$tag.csv > $O/e2e_grid_$tag.log 2>&1
  echo "$tag (${#cases[@]} args) rc=$? at $(( $(date +%s) - T0 )) s"; tail -1 $O/e2e_grid_$tag.log
done
