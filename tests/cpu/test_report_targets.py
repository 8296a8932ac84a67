"""tests/cpu/test_report_targets.py: the attention and decode target tables of reports/make_report.py on
small CSVs in the columns bench_all --sweep attention|decode writes (no GPU). Each case is built so that
the expected counts follow by hand: which cases beat torch-flash or the fastest PyTorch backend, and
which large decode cases reach 75% of copy bandwidth. Skips when pandas or matplotlib are missing."""
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from csv_fixture import write_csv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(ROOT, "reports", "make_report.py")
HAVE_PLOTTING = all(importlib.util.find_spec(m) for m in ("pandas", "matplotlib"))

COMMON = ["sweep", "variant", "dtype", "label", "median_us", "p10_us", "p90_us", "tflops", "gbps", "sol_pct",
          "peak_mem_mib", "rel_err", "copy_gbps", "copy_same_gbps", "gemm_tflops", "gpu", "cuda", "commit", "repro",
          "status"]
ATT_AXES = ["batch", "seqlen", "heads", "kv_heads", "head_dim", "causal", "ragged", "prefix"]
DEC_AXES = ["batch", "kv_len", "heads", "kv_heads", "head_dim", "paged", "ragged"]


def write_sweep_csv(path, axes, rows):
    write_csv(path, COMMON[:3] + axes + COMMON[3:], rows)


def base(sweep, variant, us, **kw):
    r = {"sweep": sweep, "variant": variant, "dtype": "bf16", "median_us": us, "gpu": "h200", "cuda": "13.0",
         "commit": "abc", "copy_gbps": 4000, "gemm_tflops": 800, "status": "ok", "rel_err": 1e-5, "sol_pct": 10,
         "gbps": 100}
    r.update(kw)
    return r


def att(variant, seqlen, us, tflops, **kw):
    return base("attention", variant, us, tflops=tflops, batch=1, seqlen=seqlen, heads=16, kv_heads=16, head_dim=128,
                causal=1, ragged=0, prefix=0, **kw)


def dec(variant, kv_len, paged, us, gbps=1000.0, sol=25.0):
    return base("decode", variant, us, gbps=gbps, sol_pct=sol, batch=16, kv_len=kv_len, heads=32, kv_heads=8,
                head_dim=128, paged=paged, ragged=0)


def run_report(d):
    out = os.path.join(d, "REPORT.md")
    r = subprocess.run([sys.executable, REPORT, "--data", os.path.join(d, "data"), "--out", out, "--plots",
                        os.path.join(d, "plots")], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(r.stderr)
    with open(out) as f:
        return f.read()


@unittest.skipUnless(HAVE_PLOTTING, "pandas and matplotlib are needed for the report")
class ReportTargets(unittest.TestCase):
    def test_prefill_counts_cases_from_512_tokens(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            write_sweep_csv(os.path.join(data, "attention.csv"), ATT_AXES, [
                att("minfer", 128, 10.0, 50), att("torch-flash", 128, 20.0, 25), att("torch-cudnn", 128, 8.0, 60),
                # 512: ours 100 us vs flash 90 (slower); 1024: ours 300 vs flash 330 (faster)
                att("minfer", 512, 100.0, 200), att("torch-flash", 512, 90.0, 220), att("torch-cudnn", 512, 50.0, 400),
                att("minfer", 1024, 300.0, 260, rel_err=2e-4), att("torch-flash", 1024, 330.0, 240, rel_err=2.2e-3),
                att("torch-cudnn", 1024, 150.0, 520, rel_err=2.5e-3),
            ])
            text = run_report(d)
        self.assertIn("Against the targets, cases of 512 tokens or more", text)
        # 2 cases >= 512; medians: ours (200+260)/2, flash (220+240)/2, cudnn (400+520)/2; speed vs cudnn
        # 0.5 and 0.5; ours >= flash in 1 of 2 (the 128-token case is not counted); the largest rel_err of
        # each over those two cases (1e-5 at 512 for all three).
        self.assertIn("| bf16 | 128 | 1 | 2 | 230 | 230 | 460 | 1 of 2 | 0.5 | 0.0002 / 0.0022 / 0.0025 |", text)
        # the one case of 512 tokens or more where torch-flash is faster, with its speed 90 / 100
        self.assertIn("Cases of 512 tokens or more where torch-flash is faster than ours (1 of 2):", text)
        self.assertIn("| bf16/batch=1/seqlen=512/heads=16/kv_heads=16/head_dim=128/causal=1/ragged=0/prefix=0 | 100 | "
                      "torch-flash | 90 | 0.9 | abc |", text)
        self.assertNotIn("seqlen=1024/heads=16/kv_heads=16/head_dim=128/causal=1/ragged=0/prefix=0 | 300", text)

    def test_decode_speed_against_the_fastest_backend_and_sol_of_large_cases(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            big_bytes_us = 300.0  # gbps 1000 * 300 us = 300 MB (>= 256 MiB)
            write_sweep_csv(os.path.join(data, "decode.csv"), DEC_AXES, [
                # contiguous: small case ours 10 us, flash 12, cudnn 15 -> 1.2x; large case 80% SOL, ours 300 vs
                # cudnn 240 -> 0.8x
                dec("minfer", 1024, 0, 10.0), dec("torch-flash", 1024, 0, 12.0), dec("torch-cudnn", 1024, 0, 15.0),
                dec("minfer", 16384, 0, big_bytes_us, gbps=1000.0, sol=80.0),
                dec("torch-flash", 16384, 0, 330.0), dec("torch-cudnn", 16384, 0, 240.0),
                # paged: large case at 50% SOL, 0.5x
                dec("minfer", 16384, 1, 480.0, gbps=1000.0, sol=50.0),
                dec("torch-flash", 16384, 1, 300.0), dec("torch-cudnn", 16384, 1, 240.0),
            ])
            text = run_report(d)
        self.assertIn("Against the targets (speed = time of the fastest PyTorch backend", text)
        self.assertIn("| bf16 | contiguous | 2 | 1 | 0.8 | 1 of 2 | 1 | 1 of 1 | 80 |", text)
        self.assertIn("| bf16 | paged | 1 | 0.5 | 0.5 | 0 of 1 | 1 | 0 of 1 | 50 |", text)
        # behind the fastest backend: paged 16384 (cudnn 240 / 480 = 0.5) before contiguous 16384 (0.8); the
        # 1024 case (ours faster) is not listed
        self.assertIn("Cases where the fastest PyTorch backend is faster than ours (2 of 3):", text)
        case = "| bf16/batch=16/kv_len=16384/heads=32/kv_heads=8/head_dim=128/"
        paged = case + "paged=1/ragged=0 | 480 | torch-cudnn | 240 | 0.5 |"
        contig = case + "paged=0/ragged=0 | 300 | torch-cudnn | 240 | 0.8 |"
        self.assertIn(paged, text)
        self.assertIn(contig, text)
        self.assertLess(text.index(paged), text.index(contig))
        self.assertNotIn("kv_len=1024/heads=32/kv_heads=8/head_dim=128/paged=0/ragged=0 | 10", text)

    def test_behind_list_keeps_the_slowest_when_long(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            rows = []
            for i in range(15):  # 15 cases of 512 tokens, heads 1..15: torch-flash faster by (i + 1)%
                for v, us in (("minfer", 100.0), ("torch-flash", 100.0 - (i + 1))):
                    r = att(v, 512, us, 100)
                    r["heads"] = r["kv_heads"] = i + 1
                    rows.append(r)
            write_sweep_csv(os.path.join(data, "attention.csv"), ATT_AXES, rows)
            text = run_report(d)
        self.assertIn("where torch-flash is faster than ours (15 of 15; the 12 slowest):", text)
        self.assertIn("heads=15/kv_heads=15/", text)  # speed 0.85, the slowest
        self.assertIn("heads=4/kv_heads=4/", text)    # 0.96, the 12th
        self.assertNotIn("heads=3/kv_heads=3/", text)  # 0.97, cut


    def test_numerics_of_ours_and_the_peers_against_the_gate(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            rows = [att("minfer", 512, 100.0, 200), att("minfer", 1024, 300.0, 260),
                    att("torch-flash", 512, 90.0, 220), att("torch-flash", 1024, 330.0, 240)]
            for r, e in zip(rows, (1e-4, 5e-4, 2e-3, 8e-4)):
                r["rel_err"] = e
            write_sweep_csv(os.path.join(data, "attention.csv"), ATT_AXES, rows)
            text = run_report(d)
        self.assertIn("Numerics of the timed rows", text)
        # ours: median 3e-4, max 5e-4, both within 1e-3; torch-flash: median 1.4e-3, max 2e-3, 1 of 2 within
        self.assertIn("| bf16 | minfer | 2 | 0.0003 | 0.0005 | 2 of 2 |", text)
        self.assertIn("| bf16 | torch-flash | 2 | 0.0014 | 0.002 | 1 of 2 |", text)
        self.assertLess(text.index("| bf16 | minfer | 2 | 0.0003"), text.index("| bf16 | torch-flash | 2 | 0.0014"))

    def test_gpu_header_dates_the_commits_git_knows(self):
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
        if head.returncode != 0:
            self.skipTest("not a git checkout")
        h = head.stdout.strip()
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            rows = [att("minfer", 512, 100.0, 200, commit=h), att("minfer", 1024, 300.0, 260, commit="abc"),
                    att("minfer", 2048, 900.0, 280, commit=h + "+dirty")]
            write_sweep_csv(os.path.join(data, "attention.csv"), ATT_AXES, rows)
            text = run_report(d)
        line = next(l for l in text.splitlines() if l.startswith("Ceilings measured"))
        # a commit git knows carries its date (also with a '+dirty' suffix); one it does not ("abc") stays bare
        date = r" \(\d{4}-\d{2}-\d{2}\)(, |\.$)"
        self.assertRegex(line, r"(commit |, )" + h + date)
        self.assertRegex(line, r"(commit |, )" + re.escape(h + "+dirty") + date)
        self.assertRegex(line, r"(commit |, )abc(, |\.$)")


if __name__ == "__main__":
    unittest.main()
