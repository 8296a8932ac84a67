#!/usr/bin/env bash
# Session 31's first device call. Prebuilt (sm_90a): .carry/bins_7e4acae.tar.xz (main 7e4acae: slack 8 the default) -> build/main
# 1. test_attention (all of it); validate --sweep attention --quick and the 32 TMA-path cases (bench/cases/validate_prefill_tma.txt).
# 2. the whole bf16 attention sweep with torch-flash and torch-cudnn in the same run -> attention_c0.csv, attention_c1.csv
#    (replaces reports/data/h100/attention.csv: every row at one commit).
# Run: scripts/device_call.sh $OUT 580 bash .carry/call_next.sh @RUN   (carry [".carry"], timeout_s 595; ~560 s: 30 + 60 + 90 + 2 x ~170 + test_engine + model)
O=$1
B=build/main
if [ "$(cat $B/COMMIT 2>/dev/null)" != "$(tar -xJOf .carry/bins_7e4acae.tar.xz ./COMMIT)" ]; then rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins_7e4acae.tar.xz; fi
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "commit $(cat $B/COMMIT)"
timeout 120 $B/tests/test_attention > $O/test_attention.log 2>&1
el test_attention $?; tail -1 $O/test_attention.log; grep -E "FAILED" $O/test_attention.log | head
tc=(); while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && tc+=(--case "$c"); done < bench/cases/validate_prefill_tma.txt
timeout 60 $B/validate/validate_all --sweep attention --quick --csv $O/validate_attention_quick.csv > $O/validate_attention_quick.log 2>&1
el "validate quick" $?; tail -1 $O/validate_attention_quick.log
timeout 90 $B/validate/validate_all --sweep attention "${tc[@]}" --csv $O/validate_prefill_tma.csv > $O/validate_prefill_tma.log 2>&1
el "validate tma cases" $?; tail -1 $O/validate_prefill_tma.log
# In two halves (causal 0, then 1), each with its peers: bench_all writes the peers' rows at its end only.
$B/bench/bench_all --sweep attention --dtype bf16 --list 2>/dev/null | grep '^attention/' > $O/cases_all.txt
for c in 0 1; do
  ac=(); while read -r x; do ac+=(--case "$x"); done < <(grep "/causal=$c/" $O/cases_all.txt)
  timeout 230 $B/bench/bench_all --sweep attention --dtype bf16 --peers auto "${ac[@]}" --csv $O/attention_c$c.csv > $O/attention_c$c.log 2>&1
  el "attention sweep causal=$c (${#ac[@]} args)" $?; tail -1 $O/attention_c$c.log
done
# 3. the engine under the new default (prefill's slack 8 reaches every model's prefill): test_engine, validate --sweep model --quick.
timeout 150 $B/tests/test_engine > $O/test_engine.log 2>&1
el test_engine $?; tail -1 $O/test_engine.log; grep -E "FAILED" $O/test_engine.log | head
timeout 100 $B/validate/validate_all --sweep model --quick --csv $O/validate_model_quick.csv > $O/validate_model_quick.log 2>&1
el "validate model quick" $?; tail -1 $O/validate_model_quick.log
