"""tests/cpu/test_case_files.py: every case id in bench/cases/*.txt (the A/B and regression lists the device
scripts pass to bench_all / validate_all) is a case its driver knows, so that a typo fails here and not on
a GPU after the machine has been started. Each file's ids are listed by `bench_all --list` (validate_*.txt:
`validate_all --list`) for the sweep their prefix names; lines that are empty or start with # are skipped,
as scripts/ab.sh skips them. Needs the built drivers (build/<MINFER_PRESET or ci>/); skips, saying so,
without them. Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import glob
import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build", os.environ.get("MINFER_PRESET", "ci"))
BENCH = os.path.join(BUILD, "bench", "bench_all")
VALIDATE = os.path.join(BUILD, "validate", "validate_all")


def case_ids(path):
    with open(path) as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


def listed(driver, sweep, ids):
    """The ids the driver lists for --case ids (rc, stdout lines, stderr)."""
    args = [driver, "--sweep", sweep, "--list"]
    for c in ids:
        args += ["--case", c]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return p.returncode, [s for s in p.stdout.splitlines() if s], p.stderr


@unittest.skipUnless(os.access(BENCH, os.X_OK) and os.access(VALIDATE, os.X_OK),
                     f"the drivers are not built in {BUILD}")
class CaseFilesTest(unittest.TestCase):
    def test_every_id_is_a_known_case(self):
        files = sorted(glob.glob(os.path.join(ROOT, "bench", "cases", "*.txt")))
        self.assertTrue(files)
        for path in files:
            name = os.path.basename(path)
            ids = case_ids(path)
            with self.subTest(file=name):
                self.assertTrue(ids, f"{name}: no case ids")
                self.assertEqual(len(ids), len(set(ids)), f"{name}: an id is repeated")
                sweeps = {c.split("/", 1)[0] for c in ids}
                self.assertEqual(len(sweeps), 1, f"{name}: one sweep a file, got {sorted(sweeps)}")
                driver = VALIDATE if name.startswith("validate_") else BENCH
                rc, out, err = listed(driver, sweeps.pop(), ids)
                self.assertEqual(rc, 0, f"{name}: {err.strip()}")
                self.assertEqual(sorted(out), sorted(ids), name)

    def test_an_unknown_id_is_refused(self):
        rc, out, err = listed(BENCH, "decode", ["decode/bf16/batch=3/kv_len=999/heads=14/kv_heads=2/head_dim=64/paged=0/ragged=1"])
        self.assertEqual(rc, 2)
        self.assertIn("no such case", err)


if __name__ == "__main__":
    unittest.main()
