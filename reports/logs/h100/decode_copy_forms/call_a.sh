#!/usr/bin/env bash
# Device call A (session 26): the decode copy rewrite (compile-time copy forms, pointer strides, page
# cursor) against 9c8d719's bench_all; 6c98286 on the decode cases (machine vs code); GPU tests first.
O=$1; B=build/dev
rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins.tar.xz
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
for c in 6c98286 9c8d719 new1; do xz -dkc .carry/bench_$c.xz > $B/bench_$c && chmod +x $B/bench_$c; done
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
q() { nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv >> $O/clocks.txt 2>&1; }
q; cat $B/COMMIT
timeout 90 $B/tests/test_attention > $O/test_attention.log 2>&1; el test_attention $?; tail -3 $O/test_attention.log
timeout 90 $B/tests/test_engine > $O/test_engine.log 2>&1; el test_engine $?; tail -3 $O/test_engine.log
timeout 60 $B/validate/validate_all --sweep decode --quick --csv $O/validate_decode.csv > $O/validate_decode.log 2>&1; el validate $?; tail -2 $O/validate_decode.log
timeout 170 bash scripts/regress_e2e.sh $O/regress_decode --old $B/bench_9c8d719 --new $B/bench/bench_all \
  --cases bench/cases/decode_ab.txt --rounds 2 --sweep decode > $O/regress_decode.log 2>&1
el "regress decode" $?; tail -26 $O/regress_decode.log
args=(); while read -r c; do args+=(--case "$c"); done < bench/cases/decode_regress.txt
ab=(); while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && ab+=(--case "$c"); done < bench/cases/decode_ab.txt
timeout 50 $B/bench_new1 --sweep decode --peers off "${ab[@]}" --csv $O/decode_new1.csv > $O/decode_new1.log 2>&1
el "decode new1" $?
timeout 40 $B/bench_6c98286 --sweep decode --peers off "${args[@]}" --csv $O/decode_6c98286.csv > $O/decode_6c98286.log 2>&1
el "decode 6c98286" $?
timeout 60 $B/bench/bench_all --sweep decode --peers auto "${args[@]}" --csv $O/decode_new_peers.csv > $O/decode_new_peers.log 2>&1
el "decode new+peers" $?
q
timeout 45 env MINFER_DECODE_ZFILL=edge $B/bench/bench_all --sweep decode --peers off "${ab[@]}" --csv $O/decode_new_zfill.csv > $O/decode_new_zfill.log 2>&1
el "decode new zfill=edge" $?
timeout 120 bash scripts/regress_e2e.sh $O/regress_e2e --old $B/bench_9c8d719 --new $B/bench/bench_all \
  --cases bench/cases/e2e_b1_prompts.txt --rounds 2 > $O/regress_e2e.log 2>&1
el "regress e2e" $?; tail -7 $O/regress_e2e.log
q; cat $O/clocks.txt
