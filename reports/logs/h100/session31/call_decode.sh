#!/usr/bin/env bash
# Session 31's second device call: the whole bf16 decode sweep with torch-flash and torch-cudnn in the same run, in two
# halves (paged 0, then 1: bench_all writes the peers' rows at its end only), then validate --sweep decode --quick.
# Prebuilt: .carry/bins_7e4acae.tar.xz in build/main (unpacked by call_next.sh, or here).
# Run: scripts/device_call.sh $OUT 580 bash .carry/call_decode.sh @RUN   (carry [".carry"], timeout_s 595)
O=$1
B=build/main
if [ "$(cat $B/COMMIT 2>/dev/null)" != "$(tar -xJOf .carry/bins_7e4acae.tar.xz ./COMMIT)" ]; then rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins_7e4acae.tar.xz; fi
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "commit $(cat $B/COMMIT)"
$B/bench/bench_all --sweep decode --dtype bf16 --list 2>/dev/null | grep '^decode/' > $O/cases_decode.txt
echo "decode cases: $(wc -l < $O/cases_decode.txt)"
for pg in 0 1; do
  ac=(); while read -r x; do ac+=(--case "$x"); done < <(grep "/paged=$pg/" $O/cases_decode.txt)
  timeout 240 $B/bench/bench_all --sweep decode --dtype bf16 --peers auto "${ac[@]}" --csv $O/decode_p$pg.csv > $O/decode_p$pg.log 2>&1
  el "decode sweep paged=$pg (${#ac[@]} args)" $?; tail -1 $O/decode_p$pg.log
done
timeout 80 $B/validate/validate_all --sweep decode --quick --csv $O/validate_decode_quick.csv > $O/validate_decode_quick.log 2>&1
el "validate decode quick" $?; tail -1 $O/validate_decode_quick.log
