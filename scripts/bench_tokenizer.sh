#!/usr/bin/env bash
# scripts/bench_tokenizer.sh: the tokenizer's encoding speed beside HF tokenizers', on this machine's CPU,
# one thread each, into one CSV. Runs bench_tokenizer (Google Benchmark: 5 repetitions, the median kept)
# and tools/bench_hf_tokenizer.py (the median of 7), checks that both produced the same token count for
# every case (a mismatch fails: exit 1), and writes OUTDIR/tokenizer.csv:
#   host,cpu_model,tokenizer,text,text_bytes,tokens,impl,mb_per_s,tokens_per_s,threads
# Usage: scripts/bench_tokenizer.sh OUTDIR [--bin PATH]   (default PATH: the first that exists of
#        build/{ci,release,gpu}/bench/tokenizer/bench_tokenizer)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] && [ "${1#-}" = "$1" ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
OUT=$1; shift
BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    *) echo "bench_tokenizer.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$BIN" ]; then
  for b in build/ci build/release build/gpu; do
    [ -x "$ROOT/$b/bench/tokenizer/bench_tokenizer" ] && { BIN=$ROOT/$b/bench/tokenizer/bench_tokenizer; break; }
  done
fi
[ -x "${BIN:-}" ] || { echo "bench_tokenizer.sh: no bench_tokenizer binary (build first, or --bin PATH)" >&2; exit 2; }
mkdir -p "$OUT"
"$BIN" --benchmark_format=console --benchmark_out_format=json --benchmark_out="$OUT/tokenizer_minfer.json" \
  --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
python3 "$ROOT/tools/bench_hf_tokenizer.py" --json "$OUT/tokenizer_hf.json"
python3 - "$OUT" <<'PY'
import csv, json, os, socket, sys
out = sys.argv[1]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
host = socket.gethostname()
ours = json.load(open(os.path.join(out, "tokenizer_minfer.json")))
hf = json.load(open(os.path.join(out, "tokenizer_hf.json")))
rows, ok, n_agree = [], True, 0
mine = {}
for b in ours["benchmarks"]:
    if b.get("aggregate_name") != "median" or b.get("error_occurred"):
        continue
    _, tok, text, _ = b["run_name"].split("/")
    mine[(tok, text)] = b
    rows.append([host, cpu, tok, text, int(b["text_bytes"]), int(b["tokens"]), "minfer",
                 f"{b['bytes_per_second'] / 1e6:.3f}", f"{b['tokens_per_s']:.0f}", 1])
for r in hf["rows"]:
    rows.append([host, cpu, r["tokenizer"], r["text"], r["text_bytes"], r["tokens"], "hf_tokenizers",
                 f"{r['mb_per_s']:.3f}", f"{r['tokens_per_s']:.0f}", 1])
    m = mine.get((r["tokenizer"], r["text"]))
    if m is None:
        print(f"bench_tokenizer.sh: {r['tokenizer']}/{r['text']}: no minfer figure", file=sys.stderr); ok = False
    elif int(m["tokens"]) != r["tokens"] or int(m["text_bytes"]) != r["text_bytes"]:
        print(f"bench_tokenizer.sh: {r['tokenizer']}/{r['text']}: token counts differ: minfer {int(m['tokens'])} "
              f"vs HF {r['tokens']}", file=sys.stderr); ok = False
    else:
        n_agree += 1
        print(f"{r['tokenizer']:8s} {r['text']:13s} minfer {m['bytes_per_second'] / 1e6:7.2f} MB/s, "
              f"HF tokenizers {r['mb_per_s']:7.2f} MB/s ({m['bytes_per_second'] / 1e6 / r['mb_per_s']:.2f}x), "
              f"{r['tokens']} tokens")
for tok, text in sorted(set(mine) - {(r["tokenizer"], r["text"]) for r in hf["rows"]}):
    print(f"bench_tokenizer.sh: {tok}/{text}: no HF tokenizers figure", file=sys.stderr); ok = False
print(f"bench_tokenizer.sh: token counts of minfer and HF tokenizers agree on {n_agree}/{len(hf['rows'])} cases"
      + ("" if ok else "; MISMATCH (see above)"))
with open(os.path.join(out, "tokenizer.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["host", "cpu_model", "tokenizer", "text", "text_bytes", "tokens", "impl", "mb_per_s", "tokens_per_s",
                "threads"])
    w.writerows(rows)
print(f"bench_tokenizer.sh: {os.path.join(out, 'tokenizer.csv')}")
sys.exit(0 if ok else 1)
PY
