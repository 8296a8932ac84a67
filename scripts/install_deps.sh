#!/usr/bin/env bash
# scripts/install_deps.sh: installs what the build and tests need and is missing, from Debian's archive
# and PyPI only. Safe to run again (does nothing when everything is there). Needs root for apt-get.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
command -v dpkg-query >/dev/null 2>&1 || { echo "install_deps: not a Debian/Ubuntu system; install cmake, g++, GoogleTest, Google Benchmark, CLI11, nlohmann-json yourself" >&2; exit 0; }
# xz-utils: scripts/device_call.sh and pack_prebuilt.sh pack with xz (its test runs here).
for p in cmake g++ libgtest-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libpcre2-dev python3-pip xz-utils; do
  have_pkg "$p" || need_apt+=("$p")
done
# python3-pip is only wanted when no pip is on PATH at all.
if command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1; then
  need_apt=("${need_apt[@]/python3-pip}")
fi
pkgs=$(printf '%s\n' "${need_apt[@]}" | grep -v '^$' || true)
if [ -n "$pkgs" ]; then
  echo "install_deps: apt-get install $(echo $pkgs)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
fi

if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "install_deps: no CUDA toolkit (nvcc) found: install CUDA 13 (the build compiles all CUDA code)" >&2
  exit 2
fi

# Python packages for reports and the gate (CPU only; no torch needed here).
if ! python3 -c "import pandas, matplotlib" >/dev/null 2>&1; then
  echo "install_deps: pip install pandas matplotlib" >&2
  python3 -m pip install -q pandas matplotlib
fi
# fp8 / bf16 numpy types for tools/pv_precision.py (the P.V precision emulation) and its test.
if ! python3 -c "import ml_dtypes" >/dev/null 2>&1; then
  echo "install_deps: pip install ml_dtypes" >&2
  python3 -m pip install -q ml_dtypes
fi
