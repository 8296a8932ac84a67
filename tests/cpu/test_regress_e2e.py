"""tests/cpu/test_regress_e2e.py: scripts/regress_e2e.sh (two bench_all binaries timed on the same
cases, interleaved) with stand-in binaries that write one row per case (no GPU): e2e decode rows, and
with --sweep decode the decode sweep's rows.
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import os
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "regress_e2e.sh")

# The stand-ins' start: log the call, read --csv and the --case ids.
ARGS = """#!/usr/bin/env bash
echo "$0 $*" >> "{log}"
csv=""; cases=()
while [ $# -gt 0 ]; do
  case "$1" in --csv) csv=$2; shift 2 ;; --case) cases+=("$2"); shift 2 ;; *) shift ;; esac
done
"""

# A stand-in bench_all: logs its call, writes a decode row of ours for each --case at MS ms/step.
FAKE = ARGS + """echo "variant,model,batch,prompt_len,phase,ms_per_step,status" > "$csv"
for c in "${{cases[@]}}"; do
  m=$(echo "$c" | cut -d/ -f3); b=$(echo "$c" | sed 's/.*batch=\\([0-9]*\\).*/\\1/'); p=$(echo "$c" | sed 's/.*prompt_len=\\([0-9]*\\).*/\\1/')
  echo "minfer,$m,$b,$p,prefill,,ok" >> "$csv"
  echo "minfer,$m,$b,$p,decode,{ms},ok" >> "$csv"
done
"""

# A stand-in bench_all for a kernel sweep: one row of ours per --case at US us (and a peer's row, which
# the script must leave out), its repro naming the case.
FAKE_SWEEP = ARGS + """echo "sweep,variant,median_us,repro,status" > "$csv"
for c in "${{cases[@]}}"; do
  echo "decode,minfer,{ms},bench_all --sweep decode --case $c,ok" >> "$csv"
  echo "decode,torch-cudnn,1.0,bench_all --sweep decode --case $c,ok" >> "$csv"
done
"""


class RegressE2e(unittest.TestCase):
    def fake(self, d, name, ms, text=FAKE):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text.format(log=os.path.join(d, "calls.log"), ms=ms))
        os.chmod(path, 0o755)
        return path

    def test_rounds_interleave_and_ratio_is_new_over_old(self):
        with tempfile.TemporaryDirectory() as d:
            old, new = self.fake(d, "old_bench", 2.0), self.fake(d, "new_bench", 2.5)
            cases = os.path.join(d, "cases.txt")
            with open(cases, "w") as f:
                f.write("# a comment\ne2e/bf16/qwen3-0.6b/batch=16/prompt_len=512/new_tokens=64\n\n"
                        "e2e/bf16/llama-3.1-8b/batch=4/prompt_len=128/new_tokens=64\n")
            r = subprocess.run(["bash", SCRIPT, os.path.join(d, "out"), "--old", old, "--new", new, "--cases", cases,
                                "--rounds", "2"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            with open(os.path.join(d, "calls.log")) as f:
                calls = f.read().splitlines()
            self.assertEqual([c.split()[0] for c in calls], [old, new, old, new])  # interleaved
            self.assertTrue(all("--peers off" in c and c.count("--case ") == 2 for c in calls), calls)
            self.assertRegex(r.stdout, r"qwen3-0.6b b16 p512\s+2.0000\s+2.5000\s+1.250")
            self.assertRegex(r.stdout, r"llama-3.1-8b b4 p128\s+2.0000\s+2.5000\s+1.250")

    def test_a_kernel_sweep_compares_median_us_per_case(self):
        with tempfile.TemporaryDirectory() as d:
            old, new = self.fake(d, "old_bench", 300.0, FAKE_SWEEP), self.fake(d, "new_bench", 450.0, FAKE_SWEEP)
            cases = os.path.join(d, "cases.txt")
            case = "decode/bf16/batch=16/kv_len=16384/heads=32/kv_heads=8/head_dim=128/paged=0/ragged=0"
            with open(cases, "w") as f:
                f.write(case + "\n")
            r = subprocess.run(["bash", SCRIPT, os.path.join(d, "out"), "--old", old, "--new", new, "--cases", cases,
                                "--rounds", "1", "--sweep", "decode"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            with open(os.path.join(d, "calls.log")) as f:
                calls = f.read().splitlines()
            self.assertTrue(all("--sweep decode" in c for c in calls), calls)
            self.assertIn("old us", r.stdout)
            self.assertRegex(r.stdout, case + r"\s+300.0000\s+450.0000\s+1.500")
            self.assertNotIn("1.0000", r.stdout)  # the peer's rows are not ours

    def test_bad_arguments_exit_2_naming_them(self):
        with tempfile.TemporaryDirectory() as d:
            new = self.fake(d, "new_bench", 1.0)
            r = subprocess.run(["bash", SCRIPT, os.path.join(d, "out"), "--old", os.path.join(d, "missing"), "--new",
                                new, "--cases", os.path.join(d, "none.txt")], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("--old", r.stderr)
            r = subprocess.run(["bash", SCRIPT, os.path.join(d, "out"), "--old", new, "--new", new, "--cases",
                                os.path.join(d, "none.txt")], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("--cases", r.stderr)
            cases = os.path.join(d, "cases.txt")
            with open(cases, "w") as f:
                f.write("e2e/bf16/qwen3-0.6b/batch=1/prompt_len=128/new_tokens=64\n")
            for flag, bad in (("--rounds", "0"), ("--sweep", "de code")):
                r = subprocess.run(["bash", SCRIPT, os.path.join(d, "out"), "--old", new, "--new", new, "--cases", cases,
                                    flag, bad], capture_output=True, text=True)
                self.assertEqual(r.returncode, 2, flag)
                self.assertIn(flag, r.stderr)
            r = subprocess.run(["bash", SCRIPT, "--help"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("Usage", r.stdout)


if __name__ == "__main__":
    unittest.main()
