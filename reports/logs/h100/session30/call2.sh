#!/usr/bin/env bash
# Second device call (session 28): bench/cases/prefill_noncausal512.txt (96 bf16 non-causal cases >= 512 rows) with the
# peers in the same run, at .carry/bins_new.tar.xz (unpacked in build/dev by call_next.sh), under ENV
# (DEFAULT=1 or MINFER_PREFILL_RESCALE_SLACK=8).
# Run: scripts/device_call.sh $OUT 460 bash .carry/call2.sh @RUN ENV
O=$1; S=${2:-DEFAULT=1}
B=build/f16v
if [ "$(cat $B/COMMIT 2>/dev/null)" != "$(tar -xJOf .carry/bins_f16v.tar.xz ./COMMIT)" ]; then rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins_f16v.tar.xz; fi
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "env: $S; commit $(cat $B/COMMIT)"
ab=(); while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && ab+=(--case "$c"); done < bench/cases/prefill_noncausal512.txt
T0=$(date +%s)
timeout 440 env $S LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH $B/bench/bench_all --sweep attention --dtype bf16 --peers auto "${ab[@]}" \
  --csv $O/attention_nc512.csv > $O/attention_nc512.log 2>&1
echo "bench rc=$? after $(( $(date +%s) - T0 )) s"; tail -5 $O/attention_nc512.log
