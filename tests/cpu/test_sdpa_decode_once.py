"""tests/cpu/test_sdpa_decode_once.py: tools/sdpa_decode_once.py (one PyTorch SDPA decode call inside
a profiler range, for ncu) answers --help and refuses bad shapes with exit code 2 before it imports
torch, so both hold on a machine without torch or a GPU.
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "sdpa_decode_once.py")


class SdpaDecodeOnce(unittest.TestCase):
    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)

    def test_help_names_every_option(self):
        p = self.run_tool("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        for opt in ("--backend", "--batch", "--kv-len", "--heads", "--kv-heads", "--head-dim", "--calls"):
            self.assertIn(opt, p.stdout)

    def test_kv_heads_must_divide_heads(self):
        p = self.run_tool("--backend", "cudnn", "--batch", "2", "--kv-len", "64", "--heads", "32", "--kv-heads", "5")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--kv-heads must divide --heads", p.stderr)

    def test_unknown_backend_refused(self):
        p = self.run_tool("--backend", "math", "--batch", "2", "--kv-len", "64", "--heads", "8", "--kv-heads", "8")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--backend", p.stderr)

    def test_sizes_must_be_positive(self):
        p = self.run_tool("--backend", "flash", "--batch", "0", "--kv-len", "64", "--heads", "8", "--kv-heads", "8")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--batch", p.stderr)


if __name__ == "__main__":
    unittest.main()
