"""tests/cpu/test_ncu_step.py: tools/ncu_step.py (the per-kernel breakdown of one decode step from an
ncu CSV) on small synthetic ncu outputs in a temp dir: log lines before the header skipped, the last
step taken, groups by kernel and grid, units converted, bad input refused with exit code 2.
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import csv
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "ncu_step.py")
HEADER = ['ID', 'Process ID', 'Process Name', 'Host Name', 'Kernel Name', 'Context', 'Stream', 'Block Size',
          'Grid Size', 'Device', 'CC', 'Section Name', 'Metric Name', 'Metric Unit', 'Metric Value']


def ncu_text(launches, unit="ns", metric="gpu__time_duration.sum"):
    lines = ["==PROF== Connected to process 1", "generate: loading preset", ",".join(f'"{h}"' for h in HEADER)]
    for i, (name, grid, value) in enumerate(launches):
        vals = [str(i), "1", "minfer", "host", name, "1", "13", "(256, 1, 1)", grid, "0", "9.0", "Command line",
                metric, unit, value]
        lines.append(",".join(f'"{v}"' for v in vals))
    return "\n".join(lines) + "\n"


EMB = "void minfer::(anonymous namespace)::embedding_kernel<__nv_bfloat16, 8>(Params)"
GEMV = "void minfer::(anonymous namespace)::gemv_kernel<__nv_bfloat16, 1, 0>(minfer::GemvArgs)"
NORM = "void minfer::rmsnorm_kernel<float, 4, true>(const float *, float *)"


class NcuStep(unittest.TestCase):
    def run_tool(self, text, *extra):
        with tempfile.TemporaryDirectory() as d:
            src, out, launches = (os.path.join(d, n) for n in ("ncu.csv", "sum.csv", "launches.csv"))
            with open(src, "w") as f:
                f.write(text)
            p = subprocess.run([sys.executable, TOOL, src, "--out", out, "--launches", launches, *extra],
                               capture_output=True, text=True)
            rows = lines = None
            if p.returncode == 0:
                with open(out, newline="") as f:
                    rows = list(csv.DictReader(f))
                with open(launches, newline="") as f:
                    lines = list(csv.DictReader(f))
            return p, rows, lines

    def test_last_step_grouped_by_kernel_and_grid(self):
        step1 = [(EMB, "(1, 1, 1)", "9,000"), (GEMV, "(512, 1, 1)", "99,000")]
        step2 = [(EMB, "(1, 1, 1)", "3,000"), (NORM, "(1, 1, 1)", "4,000"), (GEMV, "(512, 1, 1)", "7,000"),
                 (NORM, "(1, 1, 1)", "4,000"), (GEMV, "(768, 1, 1)", "10,000"), (GEMV, "(512, 1, 1)", "7,000")]
        p, rows, lines = self.run_tool(ncu_text(step1 + step2))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(lines), 6)  # the second step only
        by = {(r["kernel"], r["grid"]): r for r in rows}
        self.assertEqual(set(by), {("embedding_kernel", "(1, 1, 1)"), ("rmsnorm_kernel", "(1, 1, 1)"),
                                   ("gemv_kernel", "(512, 1, 1)"), ("gemv_kernel", "(768, 1, 1)")})
        g = by[("gemv_kernel", "(512, 1, 1)")]
        self.assertEqual(int(g["launches"]), 2)
        self.assertAlmostEqual(float(g["us"]), 14.0)
        self.assertAlmostEqual(float(g["us_per_launch"]), 7.0)
        self.assertAlmostEqual(float(g["pct"]), 100.0 * 14 / 35, places=2)
        self.assertEqual(rows[0]["kernel"], "gemv_kernel")  # largest first
        self.assertIn("total", p.stdout)

    def test_units_and_step_start(self):
        launches = [(NORM, "(1, 1, 1)", "2"), (GEMV, "(8, 1, 1)", "3")]
        p, rows, _ = self.run_tool(ncu_text(launches, unit="us"), "--step-start", "rmsnorm")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertAlmostEqual(sum(float(r["us"]) for r in rows), 5.0)

    def test_bad_input_exit_2_naming_the_problem(self):
        cases = [("no header here\n", "header"),
                 (ncu_text([(EMB, "(1, 1, 1)", "1")], metric="sm__cycles"), "gpu__time_duration"),
                 (ncu_text([(EMB, "(1, 1, 1)", "1")], unit="furlong"), "furlong"),
                 (ncu_text([(EMB, "(1, 1, 1)", "fast")]), "fast"),
                 (ncu_text([(GEMV, "(1, 1, 1)", "1")]), "step-start")]
        for text, word in cases:
            p, _, _ = self.run_tool(text)
            self.assertEqual(p.returncode, 2, word)
            self.assertIn("ncu.csv", p.stderr)
            self.assertIn(word, p.stderr)


if __name__ == "__main__":
    unittest.main()
