#!/usr/bin/env bash
# scripts/main.sh: the main job (README.md). Installs what is missing, builds, and then
#  - with a CUDA GPU: validates every kernel sweep and the whole models against the reference and
#    benchmarks them with their peers (validate_all / bench_all), CSVs under out/<gpu>/;
#  - without one: says so and runs the CPU reference path (a few tokens from preset:tiny).
# Options are passed through to the sweeps: e.g. `bash scripts/main.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${MINFER_JOBS:-$(nproc)}
bash scripts/install_deps.sh
export PATH="/usr/local/cuda/bin:$PATH"

have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then have_gpu=1; fi

if [ "$have_gpu" = 1 ]; then
  preset=release
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1 | tr 'A-Z' 'a-z' | grep -oE 'h100|h200|a100|l40s|[a-z]+[0-9]+' | head -n1)
  out="out/${gpu:-gpu}"; mkdir -p "$out"
  echo "== GPU found ($(nvidia-smi -L | head -n1)); results under $out" >&2
  rc=0
  # Kernel sweeps (embedding, norm, rope, swiglu), attention prefill and decode, then whole models.
  for sw in all attention decode model; do
    build/$preset/validate/validate_all --sweep $sw --csv "$out/validate_$sw.csv" "$@" || rc=1
  done
  for sw in all attention decode e2e; do
    build/$preset/bench/bench_all --sweep $sw --csv "$out/bench_$sw.csv" "$@" || rc=1
  done
  echo "== CSVs under $out; report: python3 reports/make_report.py --data out" >&2
  exit $rc
else
  preset=ci
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs" --target minfer
  echo "== No CUDA GPU on this machine: the kernels cannot run here. Running the CPU reference path instead:" >&2
  echo "== minfer generate --model preset:tiny --backend reference --prompt-tokens 1,2,3,4 --max-new-tokens 8" >&2
  build/$preset/engine/minfer generate --model preset:tiny --backend reference --prompt-tokens 1,2,3,4 --max-new-tokens 8
fi
