#!/usr/bin/env bash
# Session 31: the decode TMA copies (MINFER_DECODE_COPY=tma). Prebuilt: .carry/bins_tma.tar.xz -> build/tma.
# 1. test_attention's decode tests (bits equal to the default under TMA, NaN past each sequence's end).
# 2. A/B on bench/cases/decode_ab.txt (22 bf16 cases), peers in the same run: default vs tma (2 and 3 stages),
#    2 interleaved rounds.
# Run: scripts/device_call.sh $OUT 580 bash .carry/call_tma.sh @RUN   (carry [".carry"], timeout_s 595)
O=$1
B=build/tma
if [ "$(cat $B/COMMIT 2>/dev/null)" != "$(tar -xJOf .carry/bins_tma.tar.xz ./COMMIT)" ]; then rm -rf $B; mkdir -p $B && tar -C $B -xJf .carry/bins_tma.tar.xz; fi
export LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "commit $(cat $B/COMMIT)"
timeout 120 $B/tests/test_attention --gtest_filter='Decode*' > $O/test_attention_decode.log 2>&1
el "test_attention Decode*" $?; tail -1 $O/test_attention_decode.log; grep -E "FAILED|Failure" $O/test_attention_decode.log | head
timeout 420 scripts/ab.sh $O/ab --sweep decode --dtype bf16 --cases bench/cases/decode_ab.txt --build $B --rounds 2 \
  MINFER_DECODE_COPY=tma MINFER_DECODE_COPY=tma,MINFER_DECODE_STAGES=3 > $O/ab.log 2>&1
el "ab decode tma" $?; tail -15 $O/ab.log
