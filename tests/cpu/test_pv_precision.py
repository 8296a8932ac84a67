"""tests/cpu/test_pv_precision.py: tools/pv_precision.py (the bf16 P.V precision emulation) on one small
case: P rounded once to bf16 (the SDPA peers' scheme) fails the 1e-3 gate, ours (hi + lo) passes with a
wide margin, the fp8 lo term lands between them, fp16 P below the gate but above the fp8 lo term, a truncated
hi and fp16 hi with an e4m3 lo term both near hi + lo; bad
arguments refused with exit code 2.
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import csv
import io
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "pv_precision.py")

try:
    import ml_dtypes  # noqa: F401
    HAVE = True
except ImportError:
    HAVE = False


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


@unittest.skipUnless(HAVE, "ml_dtypes not installed (scripts/install_deps.sh installs it)")
class PvPrecision(unittest.TestCase):
    def test_schemes_order_against_the_gate(self):
        r = run("--seqlen", "1024", "--rows", "64", "--head-dim", "64", "--trials", "2", "--seed", "7")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        self.assertEqual(len(rows), 1)
        e = {k: float(v) for k, v in rows[0].items() if k != "seqlen"}
        self.assertGreater(e["bf16-P"], 1.5e-3)
        self.assertLess(e["hi+lo"], 3e-4)
        self.assertLess(e["hi+lo"], e["lo-e4m3"])
        self.assertLess(e["lo-e4m3"], 7e-4)
        self.assertLess(e["lo-e4m3"], e["lo-e5m2"])
        self.assertLess(e["lo-e4m3"], e["fp16-P"])
        self.assertLess(e["fp16-P"], e["bf16-P"])
        # Truncated hi: lo up to twice as large, still far under the gate; fp16 hi with an e4m3 lo term:
        # near hi + lo, well under fp16 P alone.
        self.assertLess(e["trunc+lo"], 3e-4)
        self.assertLess(e["fp16+lo-e4m3"], 3e-4)
        self.assertLess(e["fp16+lo-e4m3"], e["fp16-P"] / 2)

    def test_bad_arguments_exit_2(self):
        for args in (["--schemes", "bf16-P,nope"], ["--rows", "0"]):
            r = run(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("pv_precision.py", r.stderr)


if __name__ == "__main__":
    unittest.main()
