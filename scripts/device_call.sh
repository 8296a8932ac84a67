#!/usr/bin/env bash
# scripts/device_call.sh: runs one command of a device call under a time limit and always packs what it
# wrote, so that a run stopped at its limit still brings its logs and CSVs back (the device returns a few
# files of $OUT: one tarball does). The command's output folder is OUTDIR/run, given to it wherever an
# argument is @RUN; its stdout and stderr go to OUTDIR/run/call.log, whose last lines are printed. After
# the command (or its limit), OUTDIR/run is packed into OUTDIR/run.tar.xz and removed.
# Usage: scripts/device_call.sh OUTDIR SECONDS CMD [ARG|@RUN ...]
#   e.g. scripts/device_call.sh "$OUT" 520 scripts/gpu_run.sh @RUN --prebuilt .carry/bins.tar.xz --only build,ab
# Exit status: the command's (124 where it ran past SECONDS); 2 on bad arguments.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
outdir_first "$@"
[ $# -ge 3 ] || usage
OUTDIR=$1 LIMIT=$2
shift 2
case "$LIMIT" in '' | *[!0-9]*) echo "device_call.sh: SECONDS must be a whole number, got '$LIMIT'" >&2; exit 2 ;; esac
RUN=$OUTDIR/run
mkdir -p "$RUN" || { echo "device_call.sh: cannot make $RUN" >&2; exit 2; }
args=()
for a in "$@"; do [ "$a" = @RUN ] && args+=("$RUN") || args+=("$a"); done
start=$(date +%s)
timeout "$LIMIT" "${args[@]}" > "$RUN/call.log" 2>&1
rc=$?
echo "device_call.sh: rc=$rc after $(( $(date +%s) - start )) s (limit $LIMIT s)$([ $rc -eq 124 ] && echo ': stopped at its limit')" \
  | tee -a "$RUN/call.log"
tail -n 40 "$RUN/call.log"
if tar -C "$OUTDIR" -cJf "$OUTDIR/run.tar.xz" run; then
  rm -rf "$RUN"
else
  echo "device_call.sh: packing $RUN failed; left in place" >&2
fi
exit $rc
