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
