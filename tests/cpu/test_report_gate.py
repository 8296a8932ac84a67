"""tests/cpu/test_report_gate.py: ci/gate.py and reports/make_report.py on small CSVs written into a
temp dir (no GPU). Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
The report tests need pandas and matplotlib; they skip, saying so, when those are not installed.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from csv_fixture import write_csv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATE = os.path.join(ROOT, "ci", "gate.py")
REPORT = os.path.join(ROOT, "reports", "make_report.py")
HAVE_PLOTTING = all(importlib.util.find_spec(m) for m in ("pandas", "matplotlib"))

VAL_COLS = ["sweep", "variant", "dtype", "rows", "hidden", "residual", "label", "rel_err", "max_abs", "max_rel",
            "worst_index", "nonfinite", "pass", "gpu", "cuda", "commit", "repro"]
BENCH_COLS = ["sweep", "variant", "dtype", "rows", "hidden", "residual", "label", "median_us", "p10_us", "p90_us",
              "tflops", "gbps", "sol_pct", "peak_mem_mib", "rel_err", "copy_gbps", "gemm_tflops", "gpu", "cuda",
              "commit", "repro", "status"]


def val_row(rows, rel_err, ok, dtype="bf16"):
    return {"sweep": "norm", "variant": "minfer", "dtype": dtype, "rows": rows, "hidden": 896, "residual": 0,
            "rel_err": rel_err, "pass": 1 if ok else 0, "gpu": "h100", "cuda": "13.0", "commit": "abc1234",
            "nonfinite": 0}


def bench_row(rows, median_us, variant="minfer", dtype="bf16", status="ok", label=""):
    moved = rows * 896 * 2 * 2
    gbps = moved / (median_us * 1e-6) / 1e9
    return {"sweep": "norm", "variant": variant, "dtype": dtype, "rows": rows, "hidden": 896, "residual": 0,
            "label": label, "median_us": median_us, "p10_us": median_us * 0.95, "p90_us": median_us * 1.05,
            "tflops": 0, "gbps": gbps, "sol_pct": gbps / 3000 * 100, "peak_mem_mib": 10, "rel_err": 1e-5,
            "copy_gbps": 3000, "gemm_tflops": 760, "gpu": "h100", "cuda": "13.0", "commit": "abc1234",
            "status": status}


def read(path):
    with open(path) as f:
        return f.read()


def run(script, *args):
    p = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


class GateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.base = os.path.join(self.d, "baselines")
        os.makedirs(self.base)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def gate(self, *csvs):
        return run(GATE, "--baselines", self.base, *csvs)

    def test_validate_rows_all_pass(self):
        write_csv(self.path("v.csv"), VAL_COLS, [val_row(1, 2e-5, True), val_row(17, 9.9e-4, True)])
        rc, out = self.gate(self.path("v.csv"))
        self.assertEqual(rc, 0, out)
        self.assertIn("0 failure", out)

    def test_rel_err_over_tolerance_fails_even_if_pass_says_1(self):
        write_csv(self.path("v.csv"), VAL_COLS, [val_row(1, 2e-5, True), val_row(3, 1.2e-3, True)])
        rc, out = self.gate(self.path("v.csv"))
        self.assertEqual(rc, 1, out)
        self.assertIn("rows=3", out)
        self.assertNotIn("rows=1,", out)

    def test_pass_zero_or_nan_fails(self):
        write_csv(self.path("v.csv"), VAL_COLS, [val_row(1, 1e-6, False)])
        self.assertEqual(self.gate(self.path("v.csv"))[0], 1)
        write_csv(self.path("w.csv"), VAL_COLS, [val_row(1, "nan", True)])
        self.assertEqual(self.gate(self.path("w.csv"))[0], 1)

    def test_bad_input_exits_2(self):
        rc, out = self.gate(self.path("missing.csv"))
        self.assertEqual(rc, 2, out)
        with open(self.path("nohdr.csv"), "w") as f:
            f.write("a,b\n1,2\n")
        rc, out = self.gate(self.path("nohdr.csv"))
        self.assertEqual(rc, 2, out)
        self.assertIn("sweep", out)
        write_csv(self.path("v.csv"), VAL_COLS, [val_row(1, "oops", True)])
        rc, out = self.gate(self.path("v.csv"))
        self.assertEqual(rc, 2, out)
        self.assertIn("rel_err", out)

    def test_refused_bench_row_of_ours_fails_but_peer_does_not(self):
        write_csv(self.path("b.csv"), BENCH_COLS,
                  [bench_row(4096, 10.0), bench_row(4096, 12.0, variant="torch", status="refused: rel_err=2e-3")])
        self.assertEqual(self.gate(self.path("b.csv"))[0], 0)
        write_csv(self.path("c.csv"), BENCH_COLS, [bench_row(4096, 10.0, status="refused: check failed")])
        rc, out = self.gate(self.path("c.csv"))
        self.assertEqual(rc, 1, out)
        self.assertIn("not timed", out)

    def test_row_bound_column_replaces_the_default_tolerance(self):
        cols = VAL_COLS + ["bound"]
        ok = dict(val_row(1, 2e-2, True), bound=5e-2)   # bf16 whole-model row under its written bound
        bad = dict(val_row(3, 6e-2, True), bound=5e-2)  # over it
        write_csv(self.path("m.csv"), cols, [ok])
        self.assertEqual(self.gate(self.path("m.csv"))[0], 0)
        write_csv(self.path("n.csv"), cols, [ok, bad])
        rc, out = self.gate(self.path("n.csv"))
        self.assertEqual(rc, 1, out)
        self.assertIn("rows=3", out)
        write_csv(self.path("o.csv"), cols, [dict(val_row(5, 2e-3, True), bound="")])  # empty: 1e-3
        self.assertEqual(self.gate(self.path("o.csv"))[0], 1)

    def test_skipped_bench_row_of_ours_is_not_a_failure(self):
        write_csv(self.path("s.csv"), BENCH_COLS, [bench_row(4096, 10.0, status="skipped: MoE not supported yet")])
        rc, out = self.gate(self.path("s.csv"))
        self.assertEqual(rc, 0, out)

    def test_perf_regression_over_ten_percent(self):
        write_csv(os.path.join(self.base, "h100", "norm.csv"), BENCH_COLS,
                  [bench_row(4096, 10.0), bench_row(16384, 40.0), bench_row(4096, 5.0, dtype="fp16")])
        # 4096 bf16: +9% passes; 16384 bf16: +12.5% fails; 1 bf16 has no baseline; fp16 is faster.
        write_csv(self.path("b.csv"), BENCH_COLS,
                  [bench_row(4096, 10.9), bench_row(16384, 45.0), bench_row(1, 3.0), bench_row(4096, 4.0, dtype="fp16")])
        rc, out = self.gate(self.path("b.csv"))
        self.assertEqual(rc, 1, out)
        self.assertIn("rows=16384", out)
        self.assertNotIn("rows=4096", out)
        self.assertIn("3 compared", out)

    def test_no_baseline_for_gpu_is_not_a_failure(self):
        write_csv(self.path("b.csv"), BENCH_COLS, [bench_row(4096, 1000.0)])
        rc, out = self.gate(self.path("b.csv"))
        self.assertEqual(rc, 0, out)
        self.assertIn("0 compared", out)


@unittest.skipUnless(HAVE_PLOTTING, "pandas and matplotlib are not installed (pip install pandas matplotlib)")
class ReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        data = os.path.join(self.d, "data", "h100")
        ours = [bench_row(r, us, dtype=dt, label="qwen2.5-0.5b" if r == 4096 else "")
                for dt in ("fp32", "bf16") for r, us in ((1, 3.0), (4096, 8.0))]
        peers = [bench_row(r, us, variant="torch", dtype=dt) for dt in ("fp32", "bf16") for r, us in ((1, 6.0), (4096, 16.0))]
        write_csv(os.path.join(data, "norm.csv"), BENCH_COLS, ours + peers)
        write_csv(os.path.join(data, "validate_norm.csv"), VAL_COLS, [val_row(1, 1e-5, True), val_row(3, 2e-3, False)])
        self.out = os.path.join(self.d, "REPORT.md")
        self.plots = os.path.join(self.d, "plots")

    def tearDown(self):
        self.tmp.cleanup()

    def test_report_tables_ratios_and_plot(self):
        rc, out = run(REPORT, "--data", os.path.join(self.d, "data"), "--out", self.out, "--plots", self.plots)
        self.assertEqual(rc, 0, out)
        text = read(self.out)
        self.assertIn("## h100", text)
        self.assertIn("### norm", text)
        # Every peer case takes exactly twice our time: geomean 2, min 2, max 2.
        self.assertRegex(text, r"\| bf16 \| torch \| 2 \| 2 \| 2 \| 2 \|")
        self.assertIn("qwen2.5-0.5b", text)
        self.assertIn("torch 2.00x", text)
        # Validation: 2 cases, 1 pass, 1 fail, worst 0.002.
        self.assertRegex(text, r"\| norm \| bf16 \| 2 \| 1 \| 1 \| 0.002 \|")
        png = os.path.join(self.plots, "h100_norm.png")
        self.assertTrue(os.path.exists(png))
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_best_sol_is_the_fastest_case(self):
        run(REPORT, "--data", os.path.join(self.d, "data"), "--out", self.out, "--plots", self.plots)
        text = read(self.out)
        # bf16 rows=4096: 4096*896*4 bytes / 8 us = 1835 GB/s -> 61.2% of 3000.
        self.assertRegex(text, r"\| bf16 \| 2 \| 61.2 \|")

    def test_rows_under_switches_are_named(self):
        # No switch in the repros: no line. Two rows timed under one: the line names it and counts them.
        run(REPORT, "--data", os.path.join(self.d, "data"), "--out", self.out, "--plots", self.plots)
        self.assertNotIn("environment switches", read(self.out))
        data = os.path.join(self.d, "data", "h100")
        rows = [dict(bench_row(r, 3.0), repro=f"MINFER_DECODE_COPY=auto MINFER_X=1 bench_all --sweep norm --case n{r}")
                for r in (1, 2)] + [dict(bench_row(5, 3.0), repro="bench_all --sweep norm --case MINFER_Y=1")]
        write_csv(os.path.join(data, "norm2.csv"), BENCH_COLS, rows)
        rc, out = run(REPORT, "--data", os.path.join(self.d, "data"), "--out", self.out, "--plots", self.plots)
        self.assertEqual(rc, 0, out)
        text = read(self.out)
        self.assertIn("`MINFER_DECODE_COPY=auto MINFER_X=1` (2 rows)", text)
        self.assertNotIn("MINFER_Y", text)

    def test_empty_data_dir(self):
        os.makedirs(os.path.join(self.d, "empty"))
        rc, out = run(REPORT, "--data", os.path.join(self.d, "empty"), "--out", self.out, "--plots", self.plots)
        self.assertEqual(rc, 0, out)
        self.assertIn("No data found", read(self.out))


if __name__ == "__main__":
    unittest.main()
