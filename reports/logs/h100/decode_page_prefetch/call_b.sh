#!/usr/bin/env bash
# Device call B (session 26): decode tests on 1e95d96 + the paged block-table prefetch; e2e batch 1 with
# torch-graph in the same run; new1 (copy forms only) vs this build interleaved on the decode cases; ncu raw metrics of our decode at batch 64 x 4096.
O=$1; B=build/dev
rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins.tar.xz
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
for c in new1; do xz -dkc .carry/bench_$c.xz > $B/bench_$c && chmod +x $B/bench_$c; done
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
q() { nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv >> $O/clocks.txt 2>&1; }
q; cat $B/COMMIT
timeout 60 $B/tests/test_attention --gtest_filter='Decode*' > $O/test_attention.log 2>&1; el test_attention $?; tail -2 $O/test_attention.log
timeout 40 $B/tests/test_engine > $O/test_engine.log 2>&1; el test_engine $?; tail -2 $O/test_engine.log
timeout 40 $B/validate/validate_all --sweep decode --quick --csv $O/validate_decode.csv > $O/validate_decode.log 2>&1; el validate $?; tail -1 $O/validate_decode.log
timeout 110 bash scripts/regress_e2e.sh $O/regress_new1 --old $B/bench_new1 --new $B/bench/bench_all \
  --cases bench/cases/decode_regress.txt --rounds 2 --sweep decode > $O/regress_new1.log 2>&1
el "regress new1 vs new" $?; tail -10 $O/regress_new1.log
e2e=(); while read -r c; do e2e+=(--case "$c"); done < bench/cases/e2e_b1_peers.txt
e2e+=(--case e2e/bf16/qwen2.5-0.5b/batch=1/prompt_len=128/new_tokens=64 --case e2e/bf16/llama-3.1-8b/batch=1/prompt_len=8192/new_tokens=64)
timeout 140 $B/bench/bench_all --sweep e2e --dtype bf16 --peers auto "${e2e[@]}" --csv $O/e2e_b1_peers.csv > $O/e2e_b1_peers.log 2>&1
el "e2e b1 peers" $?; tail -4 $O/e2e_b1_peers.log
args=(); while read -r c; do args+=(--case "$c"); done < bench/cases/decode_regress.txt
q
if command -v ncu > /dev/null; then
  raw=(--section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis_Tables --section SchedulerStats --section Occupancy --page raw --csv)
  c=decode/bf16/batch=64/kv_len=4096/heads=32/kv_heads=8/head_dim=128/paged=0/ragged=0
  timeout 40 ncu --kernel-name regex:decode_split_tc --launch-skip 3 --launch-count 1 "${raw[@]}" \
    $B/bench/bench_all --sweep decode --case "$c" --peers off --min-time 0.001 > $O/ncu_raw_decode_minfer_64_4096.csv 2> $O/ncu_raw_minfer.err
  el "ncu minfer" $?
fi
q; cat $O/clocks.txt
