"""tests/cpu/test_ab_merge.py: tools/ab_merge.py (merging bench CSVs of A/B runs, the speed summary)
and scripts/ab.sh's argument checks, on small CSVs in a temp dir (no GPU).
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import csv
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from csv_fixture import write_csv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MERGE = os.path.join(ROOT, "tools", "ab_merge.py")
AB = os.path.join(ROOT, "scripts", "ab.sh")
COLS = ["sweep", "variant", "dtype", "seqlen", "causal", "label", "median_us", "tflops", "rel_err", "gpu", "commit",
        "repro", "status"]


def row(variant, seqlen, us, status="ok", causal=0):
    return {"sweep": "attention", "variant": variant, "dtype": "bf16", "seqlen": seqlen, "causal": causal,
            "median_us": us, "tflops": 1.0, "rel_err": 1e-4, "gpu": "h200", "commit": "abc", "status": status}


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class AbMerge(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_merge(self, *args):
        return subprocess.run([sys.executable, MERGE, *args], capture_output=True, text=True)

    def test_merges_renames_and_summarises(self):
        base = os.path.join(self.d, "base.csv")
        fast = os.path.join(self.d, "fast.csv")
        slow = os.path.join(self.d, "slow.csv")
        write_csv(base, COLS, [row("minfer", 512, 100.0), row("minfer", 1024, 400.0), row("torch-flash", 512, 80.0)])
        write_csv(fast, COLS, [row("minfer", 512, 50.0), row("minfer", 1024, 100.0), row("torch-flash", 512, 81.0)])
        write_csv(slow, COLS, [row("minfer", 512, 200.0), row("minfer", 1024, 0, status="failed: check"),
                               row("minfer", 2048, 10.0)])  # 2048: no baseline row
        out = os.path.join(self.d, "ab", "ab.csv")
        r = self.run_merge("--out", out, base, f"MINFER_X=1={fast}", f"MINFER_Y=0,MINFER_Z=2={slow}")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = read(out)
        variants = [x["variant"] for x in rows]
        self.assertEqual(variants.count("torch-flash"), 1)  # peers only from the baseline
        self.assertEqual(variants.count("minfer"), 2)
        self.assertEqual(variants.count("minfer[MINFER_X=1]"), 2)
        self.assertEqual(variants.count("minfer[MINFER_Y=0,MINFER_Z=2]"), 3)
        lines = r.stdout.splitlines()
        x = next(line for line in lines if line.startswith("minfer[MINFER_X=1]"))
        self.assertIn("2 cases vs baseline", x)
        self.assertIn("geomean 2.828", x)  # sqrt(2 * 4)
        self.assertIn("min 2.000", x)
        self.assertIn("max 4.000", x)
        y = next(line for line in lines if line.startswith("minfer[MINFER_Y=0,MINFER_Z=2]"))
        self.assertIn("1 cases vs baseline", y)
        self.assertIn("geomean 0.500", y)
        self.assertIn("1 failed", y)

    def test_rounds_take_the_median_and_state_the_spread(self):
        paths = {}
        for name, rows in {
                "b1": [row("minfer", 512, 100.0), row("minfer", 1024, 400.0), row("torch-flash", 512, 80.0)],
                "b2": [row("minfer", 512, 110.0), row("minfer", 1024, 380.0)],
                "b3": [row("minfer", 512, 90.0), row("minfer", 1024, 420.0)],
                "s1": [row("minfer", 512, 50.0), row("minfer", 1024, 200.0)],
                "s2": [row("minfer", 512, 60.0), row("minfer", 1024, 0, status="failed: check")],
                "s3": [row("minfer", 512, 40.0), row("minfer", 1024, 190.0)]}.items():
            paths[name] = os.path.join(self.d, name + ".csv")
            write_csv(paths[name], COLS, rows)
        out = os.path.join(self.d, "ab.csv")
        base = ",".join(paths[n] for n in ("b1", "b2", "b3"))
        runs = ",".join(paths[n] for n in ("s1", "s2", "s3"))
        r = self.run_merge("--out", out, base, f"MINFER_X=1={runs}")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = read(out)
        got = {(x["variant"], x["seqlen"]): x for x in rows}
        self.assertEqual(float(got[("minfer", "512")]["median_us"]), 100.0)  # median of 100, 110, 90
        self.assertEqual(float(got[("minfer", "1024")]["median_us"]), 400.0)
        self.assertEqual(float(got[("minfer[MINFER_X=1]", "512")]["median_us"]), 50.0)
        self.assertTrue(got[("minfer[MINFER_X=1]", "1024")]["status"].startswith("failed: round"))
        self.assertEqual(float(got[("torch-flash", "512")]["median_us"]), 80.0)  # peers: the first round's
        lines = r.stdout.splitlines()
        self.assertIn("baseline: 3 rounds, run-to-run spread up to 20.0% of a case's median", lines)
        x = next(line for line in lines if line.startswith("minfer[MINFER_X=1]"))
        self.assertIn("1 cases vs baseline", x)
        self.assertIn("geomean 2.000", x)
        self.assertIn("1 failed", x)
        # A later round with other columns is refused.
        odd = os.path.join(self.d, "odd.csv")
        write_csv(odd, COLS[:-1] + ["extra", "status"], [row("minfer", 512, 1.0)])
        r = self.run_merge("--out", out, paths["b1"] + "," + odd)
        self.assertEqual(r.returncode, 2)
        self.assertIn("columns differ", r.stderr)

    def test_peer_rows_take_the_median_of_the_rounds_that_have_them(self):
        paths = {}
        for name, rows in {
                "b1": [row("minfer", 512, 100.0), row("torch-flash", 512, 80.0), row("torch-cudnn", 512, 120.0)],
                "b2": [row("minfer", 512, 100.0), row("torch-flash", 512, 100.0), row("torch-cudnn", 512, 90.0)],
                "b3": [row("minfer", 512, 100.0), row("torch-flash", 512, 120.0)],
                "s1": [row("minfer", 512, 50.0)], "s2": [row("minfer", 512, 50.0)], "s3": [row("minfer", 512, 50.0)]}.items():
            paths[name] = os.path.join(self.d, name + ".csv")
            write_csv(paths[name], COLS, rows)
        out = os.path.join(self.d, "ab.csv")
        r = self.run_merge("--out", out, ",".join(paths[n] for n in ("b1", "b2", "b3")),
                           "MINFER_X=1=" + ",".join(paths[n] for n in ("s1", "s2", "s3")))
        self.assertEqual(r.returncode, 0, r.stderr)
        got = {x["variant"]: x for x in read(out)}
        self.assertEqual(float(got["torch-flash"]["median_us"]), 100.0)  # median of 80, 100, 120
        self.assertEqual(float(got["torch-cudnn"]["median_us"]), 90.0)   # lower median of 120, 90
        self.assertEqual(got["torch-cudnn"]["status"], "ok")             # absent from round 3: not a failure
        self.assertIn("baseline: 3 rounds, run-to-run spread up to 0.0% of a case's median", r.stdout)  # ours only
        # The fastest peer is torch-cudnn's 90 us: the baseline 0.9, the switch 1.8.
        self.assertIn("minfer vs the fastest peer: 1 cases, speed geomean 0.900", r.stdout)
        self.assertIn("minfer[MINFER_X=1] vs the fastest peer: 1 cases, speed geomean 1.800", r.stdout)

    def test_bad_input_exits_2(self):
        base = os.path.join(self.d, "base.csv")
        write_csv(base, COLS, [row("minfer", 512, 100.0)])
        other = os.path.join(self.d, "other.csv")
        write_csv(other, COLS[:-1] + ["extra", "status"], [row("minfer", 512, 100.0)])
        out = os.path.join(self.d, "ab.csv")
        r = self.run_merge("--out", out, base, f"A=1={other}")
        self.assertEqual(r.returncode, 2)
        self.assertIn("columns differ", r.stderr)
        r = self.run_merge("--out", out, os.path.join(self.d, "missing.csv"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.csv", r.stderr)
        r = self.run_merge("--out", out, base, "no-label.csv")
        self.assertEqual(r.returncode, 2)
        self.assertIn("LABEL=CSV", r.stderr)
        nocol = os.path.join(self.d, "nocol.csv")
        write_csv(nocol, ["sweep", "variant", "status"], [{"sweep": "x", "variant": "minfer", "status": "ok"}])
        r = self.run_merge("--out", out, nocol)
        self.assertEqual(r.returncode, 2)
        self.assertIn("median_us", r.stderr)
        self.assertFalse(os.path.exists(out))


class AbScript(unittest.TestCase):
    def run_ab(self, *args):
        return subprocess.run(["bash", AB, *args], capture_output=True, text=True)

    def test_usage_and_argument_errors(self):
        r = self.run_ab("--help")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Usage: scripts/ab.sh OUTDIR", r.stdout)
        with tempfile.TemporaryDirectory() as d:
            r = self.run_ab(d, "MINFER_PDL=0")
            self.assertEqual(r.returncode, 2)
            self.assertIn("--sweep is required", r.stderr)
            r = self.run_ab(d, "--sweep", "attention")
            self.assertEqual(r.returncode, 2)
            self.assertIn("at least one VAR=VAL", r.stderr)
            r = self.run_ab(d, "--sweep", "attention", "notasetting")
            self.assertEqual(r.returncode, 2)
            self.assertIn("not a VAR=VAL", r.stderr)
            r = self.run_ab(d, "--sweep", "attention", "--build", os.path.join(d, "nobuild"), "MINFER_PDL=0")
            self.assertEqual(r.returncode, 2)
            self.assertIn("no ", r.stderr)
            self.assertIn("bench_all", r.stderr)
            r = self.run_ab(d, "--sweep", "attention", "--rounds", "0", "MINFER_PDL=0")
            self.assertEqual(r.returncode, 2)
            self.assertIn("--rounds", r.stderr)

    def test_rounds_run_interleaved_with_peers_once(self):
        # A stand-in bench_all: logs its call (the switch and --peers), writes one row of ours whose time
        # is FAKE_US (the switch's) or 100, and a peer row unless --peers off.
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "build", "bench"))
            fake = os.path.join(d, "build", "bench", "bench_all")
            log = os.path.join(d, "calls.txt")
            with open(fake, "w") as f:
                f.write("#!/usr/bin/env bash\n"
                        "csv=; peers=\n"
                        "while [ $# -gt 0 ]; do case $1 in --csv) csv=$2; shift 2;; --peers) peers=$2; shift 2;; "
                        "*) shift;; esac; done\n"
                        f"echo \"${{FAKE_US:-base}} $peers\" >> {log}\n"
                        "{ echo 'sweep,variant,dtype,seqlen,causal,label,median_us,tflops,rel_err,gpu,commit,repro,status'\n"
                        "  echo \"attention,minfer,bf16,512,0,,${FAKE_US:-100},1,0,h100,abc,,ok\"\n"
                        "  [ \"$peers\" = off ] || echo 'attention,torch-flash,bf16,512,0,,80,1,0,h100,abc,,ok'\n"
                        "} > \"$csv\"\n")
            os.chmod(fake, 0o755)
            out = os.path.join(d, "out")
            r = self.run_ab(out, "--sweep", "attention", "--build", os.path.join(d, "build"), "--rounds", "2",
                            "FAKE_US=50")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(log) as f:
                calls = f.read().split("\n")[:-1]
            self.assertEqual(calls, ["base auto", "50 off", "base off", "50 off"])  # interleaved, peers once
            for n in ("ab_attention.0.csv", "ab_attention.1.csv", "ab_attention.0.r2.csv", "ab_attention.1.r2.csv"):
                self.assertTrue(os.path.exists(os.path.join(out, n)), n)
            self.assertIn("baseline: 2 rounds", r.stdout)
            self.assertIn("minfer[FAKE_US=50]: 1 cases vs baseline, speed geomean 2.000", r.stdout)
            variants = [x["variant"] for x in read(os.path.join(out, "ab_attention.csv"))]
            self.assertEqual(sorted(variants), ["minfer", "minfer[FAKE_US=50]", "torch-flash"])
            # Against the fastest peer (80 us): the baseline 0.8, the switch 1.6.
            self.assertIn("minfer vs the fastest peer: 1 cases, speed geomean 0.800", r.stdout)
            self.assertIn("minfer[FAKE_US=50] vs the fastest peer: 1 cases, speed geomean 1.600 (min 1.600, max 1.600), "
                          "1 of 1 at or ahead", r.stdout)
            # --peer-rounds all: the peers in every round's baseline run.
            os.remove(log)
            r = self.run_ab(out, "--sweep", "attention", "--build", os.path.join(d, "build"), "--rounds", "2",
                            "--peer-rounds", "all", "FAKE_US=50")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(log) as f:
                self.assertEqual(f.read().split("\n")[:-1], ["base auto", "50 off", "base auto", "50 off"])
            r = self.run_ab(out, "--sweep", "attention", "--build", os.path.join(d, "build"), "--peer-rounds", "some",
                            "FAKE_US=50")
            self.assertEqual(r.returncode, 2)
            self.assertIn("--peer-rounds", r.stderr)


if __name__ == "__main__":
    unittest.main()
