#!/usr/bin/env bash
# Session 29's first device call (not run in session 29: no device machine was lent). Builds (prebuilt, sm_90a):
#   .carry/bins_f16v.tar.xz: 66ec70e (main; opt-in MINFER_PREFILL_PV=f16 in v3 and v4t, MINFER_PREFILL_COPY=tma) -> build/f16v
#   .carry/bins_new.tar.xz:  f562b30 (uniform warpgroup index)                               -> build/dev
#   .carry/bins.tar.xz:      79e292c (before f562b30)                                        -> build/d79
# 1. test_attention (f16v build, all of it); validate --sweep attention --quick under MINFER_PREFILL_PV=f16.
# 2. prefill A/B, ours only, 2 interleaved rounds on prefill_hd64_ab.txt + prefill_ab.txt:
#    F16V (PV=f16), TMA (COPY=tma), F16D (66ec70e default), F16S8 (PV=f16 + slack 8), NEW (f562b30), D79.
# 3. ncu of the hd64 bf16 non-causal launch at 512 rows under PV=f16, if time is left.
# Summary: tools/ab_merge.py --out ab.csv run/pab_D79_r1.csv,run/pab_D79_r2.csv NEW=... KV=... F16D=... F16V=... F16S8=...
O=$1; DL=${2:-450}  # DL: no A/B run starts after DL seconds; ncu only before DL + 55
unpack() {  # tarball folder
  if [ "$(cat $2/COMMIT 2>/dev/null)" != "$(tar -xJOf $1 ./COMMIT 2>/dev/null)" ]; then rm -rf $2; mkdir -p $2 && tar -C $2 -xJf $1; fi
}
unpack .carry/bins_f16v.tar.xz build/f16v
unpack .carry/bins_new.tar.xz build/dev
unpack .carry/bins.tar.xz build/d79
B=build/f16v
T0=$(date +%s); el() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH timeout 180 $B/tests/test_attention > $O/test_attention.log 2>&1
el "test_attention" $?; tail -3 $O/test_attention.log; grep -E "FAILED|PvFp16|Slack|SameBits" $O/test_attention.log | head -20
MINFER_PREFILL_PV=f16 LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH timeout 80 $B/validate/validate_all --sweep attention --quick \
  --csv $O/validate_attention_pvfp16.csv > $O/validate_attention_pvfp16.log 2>&1
el "validate attention --quick, PV fp16" $?; tail -2 $O/validate_attention_pvfp16.log
cat bench/cases/prefill_hd64_ab.txt bench/cases/prefill_ab.txt > $O/cases.txt
ab=(); while read -r c; do [ -n "$c" ] && [ "${c:0:1}" != "#" ] && ab+=(--case "$c"); done < $O/cases.txt
for r in 1 2; do
  for s in F16V TMA F16D F16S8 NEW D79; do
    [ $(( $(date +%s) - T0 )) -lt $DL ] || break 2
    case $s in NEW) d=build/dev ;; KV) d=build/kv ;; D79) d=build/d79 ;; *) d=build/f16v ;; esac
    e=(DEFAULT=1)
    [ $s = F16V ] && e=(MINFER_PREFILL_PV=f16)
    [ $s = F16S8 ] && e=(MINFER_PREFILL_PV=f16 MINFER_PREFILL_RESCALE_SLACK=8)
    [ $s = TMA ] && e=(MINFER_PREFILL_COPY=tma)
    timeout 70 env "${e[@]}" LD_LIBRARY_PATH=$PWD/$d/lib:$LD_LIBRARY_PATH $d/bench/bench_all --sweep attention --dtype bf16 --peers off "${ab[@]}" \
      --csv $O/pab_${s}_r$r.csv > $O/pab_${s}_r$r.log 2>&1
    el "prefill $s round $r" $?
  done
done
c=attention/bf16/batch=4/seqlen=512/heads=16/kv_heads=16/head_dim=64/causal=0/ragged=0/prefix=0
[ $(( $(date +%s) - T0 )) -lt $(( DL + 55 )) ] && MINFER_PREFILL_PV=f16 LD_LIBRARY_PATH=$PWD/$B/lib:$LD_LIBRARY_PATH timeout 45 ncu --kernel-name regex:flash_prefill --launch-skip 3 --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats --section WarpStateStats --section Occupancy \
  --csv --page details $B/bench/bench_all --sweep attention --case "$c" --peers off --min-time 0.001 > $O/ncu_hd64_512.csv 2> $O/ncu_hd64_512.err
el "ncu" $?
