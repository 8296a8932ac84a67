# scripts/lib.sh: what the scripts that take an output folder share (sourced, not run).
# usage: prints the calling script's header comment (line 2 up to its `set` line) and exits 2.
# outdir_first ARGS...: the first argument must be the output folder, not an option (else usage).
usage() {
  sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}
outdir_first() {
  [ $# -ge 1 ] || usage
  case "$1" in -h|--help|-*) usage ;; esac
}
# use_prebuilt TARBALL DIR: unpacks scripts/pack_prebuilt.sh's TARBALL into DIR unless DIR already holds
# the same commit (a warm device machine keeps it between calls), and puts DIR/lib on LD_LIBRARY_PATH.
# For the scripts a device call runs (.carry/call_*.sh).
use_prebuilt() {
  local tarball=$1 dir=$2
  [ -r "$tarball" ] || { echo "use_prebuilt: cannot read $tarball" >&2; return 2; }
  if [ "$(cat "$dir/COMMIT" 2>/dev/null)" != "$(tar -xJOf "$tarball" ./COMMIT)" ]; then
    rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xJf "$tarball" || return 2
  fi
  export LD_LIBRARY_PATH=$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
# elapsed LABEL RC: one progress line, seconds since T0 (set T0=$(date +%s) first).
elapsed() { echo "$1 rc=$2 at $(( $(date +%s) - T0 )) s"; }
