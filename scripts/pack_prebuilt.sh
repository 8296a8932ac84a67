#!/usr/bin/env bash
# scripts/pack_prebuilt.sh: packs the binaries a GPU run needs from a build made here (the ci preset
# builds every CUDA file for sm_90a) into one xz tarball small enough to travel with a device call,
# so the GPU machine spends no time compiling: scripts/gpu_run.sh OUTDIR --prebuilt TARBALL unpacks it
# into its build folder's layout and runs the test binaries directly.
# Holds: engine/minfer, validate/validate_all, bench/bench_all, bench/bench_decode_splits, every GPU test binary (tests/test_*
# built from tests/gpu), stripped, and the Google Benchmark shared library they link (Debian's
# soname, which the GPU machine's own build does not provide) and libcupti (for minfer generate
# --timeline), under lib/.
# Usage: scripts/pack_prebuilt.sh OUT.tar.xz [--build DIR]   (DIR default build/ci)
set -euo pipefail

. "$(dirname "$0")/lib.sh"
outdir_first "$@"
OUT=$1; shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/ci
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=${2:?--build needs a folder}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "pack_prebuilt.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
bins=(engine/minfer validate/validate_all bench/bench_all bench/bench_decode_splits)
for t in "$ROOT"/tests/gpu/test_*.cpp; do bins+=("tests/$(basename "$t" .cpp)"); done
for b in "${bins[@]}"; do
  [ -x "$BUILD/$b" ] || { echo "pack_prebuilt.sh: $BUILD/$b missing (build the ci preset first)" >&2; exit 2; }
  mkdir -p "$STAGE/$(dirname "$b")"
  strip -o "$STAGE/$b" "$BUILD/$b"
done
mkdir -p "$STAGE/lib"
for lib in $(ldd "$BUILD/bench/bench_all" | awk '/libbenchmark/ {print $3}'); do cp -L "$lib" "$STAGE/lib/"; done
# libcupti, which minfer generate --timeline loads at run time (wherever the GPU machine keeps its own).
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/extras/CUPTI/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  if [ -e "$d/libcupti.so.13" ]; then cp -L "$d/libcupti.so.13" "$STAGE/lib/"; break; fi
done
git -C "$ROOT" rev-parse --short HEAD > "$STAGE/COMMIT" 2>/dev/null || echo unknown > "$STAGE/COMMIT"
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then sed -i 's/$/+dirty/' "$STAGE/COMMIT"; fi
# One xz stream with a dictionary wider than a binary (about 23 MB each, mostly the same kernels): the
# later binaries compress against the first, 31 MB -> 7 MB for the usual set (a device call carries at
# most 64 MiB). Unpacked by any tar -xJf; 192 MiB of memory to unpack.
tar -C "$STAGE" -cf - . | xz -T1 --lzma2=preset=6,dict=192MiB > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "pack_prebuilt.sh: $OUT ($(du -h "$OUT" | cut -f1)), commit $(cat "$STAGE/COMMIT"): ${bins[*]}"
