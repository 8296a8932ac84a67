#!/usr/bin/env bash
# tools/extract_kjv_text.sh: makes tests/fixtures/text/ruth_kjv.txt, the Book of Ruth from the King
# James Bible (public domain), a real English text for `minfer perplexity`. The text comes from two
# Debian packages, bible-kjv (the `bible` program) and bible-kjv-text (its data), fetched with
# `apt-get download` (no root, nothing installed), unpacked with `dpkg -x` into a temporary folder,
# and printed by the package's own program in its default pretty-printed form (chapter headings,
# verse numbers, lines broken between words at 80 columns):
#     env -u COLUMNS bible -p <tmp>/usr/lib -l80 "Ruth1:1-Ruth4:22"
# The output is written unchanged. Prints the packages' versions and the file's sha256.
# Usage: tools/extract_kjv_text.sh [--out FILE] [--check]
#   --out FILE  where to write (default <repo>/tests/fixtures/text/ruth_kjv.txt)
#   --check     write nothing; exit 1 unless the extracted text equals FILE byte for byte
# Needs apt-get (with package lists that know bible-kjv: `apt-get update` if they are empty) and dpkg.
# Exit 0 on success, 1 on a download, extraction or --check failure, 2 on bad arguments.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/tests/fixtures/text/ruth_kjv.txt
CHECK=0
PASSAGE="Ruth1:1-Ruth4:22"
WIDTH=80
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --check) CHECK=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "extract_kjv_text.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for tool in apt-get dpkg dpkg-deb sha256sum; do
  command -v "$tool" >/dev/null || { echo "extract_kjv_text.sh: needs '$tool' (a Debian-like system)" >&2; exit 1; }
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# apt-get download writes into the current folder; as root it warns that the _apt user cannot write
# there, which is harmless.
if ! (cd "$TMP" && apt-get download bible-kjv bible-kjv-text) >"$TMP/apt.log" 2>&1; then
  cat "$TMP/apt.log" >&2
  echo "extract_kjv_text.sh: apt-get download bible-kjv bible-kjv-text failed (no network, or package lists without them: try apt-get update)" >&2
  exit 1
fi
for pkg in bible-kjv bible-kjv-text; do
  deb=$(ls "$TMP"/"${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
  [ -n "$deb" ] || { cat "$TMP/apt.log" >&2; echo "extract_kjv_text.sh: no .deb for $pkg after apt-get download" >&2; exit 1; }
  echo "extract_kjv_text.sh: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) ($(dpkg-deb -f "$deb" Architecture)) sha256 $(sha256sum "$deb" | cut -d' ' -f1)" >&2
  dpkg -x "$deb" "$TMP/root"
done
BIBLE=$TMP/root/usr/bin/bible
[ -x "$BIBLE" ] || { echo "extract_kjv_text.sh: $BIBLE missing from the bible-kjv package" >&2; exit 1; }
[ -r "$TMP/root/usr/lib/bible.data" ] || { echo "extract_kjv_text.sh: usr/lib/bible.data missing from bible-kjv-text" >&2; exit 1; }

# COLUMNS unset and -l given: the line width does not depend on the caller's terminal.
env -u COLUMNS "$BIBLE" -p "$TMP/root/usr/lib" -l"$WIDTH" "$PASSAGE" >"$TMP/text.txt" || {
  echo "extract_kjv_text.sh: $BIBLE failed" >&2; exit 1; }
[ -s "$TMP/text.txt" ] || { echo "extract_kjv_text.sh: $BIBLE printed nothing" >&2; exit 1; }
SUM=$(sha256sum "$TMP/text.txt" | cut -d' ' -f1)
BYTES=$(wc -c <"$TMP/text.txt")
echo "extract_kjv_text.sh: $PASSAGE: $BYTES bytes, sha256 $SUM" >&2

if [ "$CHECK" = 1 ]; then
  if cmp -s "$TMP/text.txt" "$OUT"; then
    echo "extract_kjv_text.sh: $OUT matches" >&2
  else
    echo "extract_kjv_text.sh: $OUT differs from the extracted text" >&2
    exit 1
  fi
else
  mkdir -p "$(dirname "$OUT")"
  cp "$TMP/text.txt" "$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
  echo "$OUT"
fi
