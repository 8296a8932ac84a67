#!/usr/bin/env bash
# scripts/stage_pcre2.sh: copies this machine's PCRE2 (Debian libpcre2-dev: pcre2.h and the static
# libpcre2-8.a) into .deps/pcre2 (git-ignored), so that a machine without PCRE2 (the GPU machine) can
# build: carry .deps with the device call; scripts/gpu_run.sh passes -DMINFER_PCRE2_ROOT=.deps/pcre2 when
# the folder is there. The library is linked statically, so the binaries need nothing at run time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
inc=$(echo '#include <pcre2.h>' | cpp -H -DPCRE2_CODE_UNIT_WIDTH=8 -o /dev/null 2>&1 | grep -m1 'pcre2.h' | awk '{print $2}' || true)
lib=$(gcc -print-file-name=libpcre2-8.a)
if [ -z "$inc" ] || [ ! -f "$inc" ] || [ ! -f "$lib" ]; then
  echo "stage_pcre2.sh: pcre2.h or libpcre2-8.a not found (Debian: apt-get install libpcre2-dev)" >&2
  exit 1
fi
mkdir -p "$ROOT/.deps/pcre2/include" "$ROOT/.deps/pcre2/lib"
cp "$inc" "$ROOT/.deps/pcre2/include/"
cp "$lib" "$ROOT/.deps/pcre2/lib/"
echo "stage_pcre2.sh: $inc, $lib -> $ROOT/.deps/pcre2"
