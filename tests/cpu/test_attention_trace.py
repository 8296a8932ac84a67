"""tests/cpu/test_attention_trace.py: tools/attention_trace.py (the phases of `minfer generate
--attention-trace-csv`) on synthetic traces in a temp dir: launches told apart by their entry gaps, the
first ones skipped, each phase's median over the launches, a block with no key step, bad input refused
with exit code 2 naming the file and field.
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import csv
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "attention_trace.py")
HEADER = "record,bx,by,bz,sm,entry_ns,waited_ns,prologue_ns,first_keys_ns,loop_ns,merge_ns,end_ns"


def trace(launch_count, blocks, start=1_000_000, period=30_000, empty_block=False, wave=0):
    """Launches `period` ns apart; block i of a launch: resident 2000 ns, prologue 1000 + 10 i, first keys
    800, the rest of the loop 400, merge 300, cluster merge 200 (block 0 of each launch has no key step when
    empty_block). wave > 0: blocks from `wave` on enter 10 us after the launch's first ones."""
    lines, n = [HEADER], 0
    for l in range(launch_count):
        for i in range(blocks):
            e = start + l * period + 50 * i + (10_000 if wave and i >= wave else 0)
            w = e + 2000
            p = w + 1000 + 10 * i
            first = 0 if (empty_block and i == 0) else p + 800
            loop = (p if first == 0 else first + 400)
            m = loop + 300
            end = m + 200
            lines.append(f"{n},{i},0,0,{i},{e},{w},{p},{first},{loop},{m},{end}")
            n += 1
    return "\n".join(lines) + "\n"


class AttentionTrace(unittest.TestCase):
    def run_tool(self, text, *extra):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "t.csv"), os.path.join(d, "sum.csv")
            with open(src, "w") as f:
                f.write(text)
            p = subprocess.run([sys.executable, TOOL, src, "--out", out, *extra], capture_output=True, text=True)
            rows = []
            if p.returncode == 0:
                with open(out, newline="") as f:
                    rows = list(csv.DictReader(f))
            return p, {r["phase"]: r for r in rows}

    def test_phases_over_launches(self):
        p, rows = self.run_tool(trace(6, 3), "--skip", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("6 launches (4 after --skip 2), median 3 blocks", p.stdout)
        self.assertEqual(rows["resident_before_wait"]["median_ns"], "2000")
        self.assertEqual(rows["prologue"]["median_ns"], "1010")  # the median block's
        self.assertEqual(rows["first_keys"]["median_ns"], "800")
        self.assertEqual(rows["key_loop_rest"]["median_ns"], "400")
        self.assertEqual(rows["block_merge"]["median_ns"], "300")
        self.assertEqual(rows["cluster_merge"]["median_ns"], "200")
        # span: first wait (block 0) to last end (block 2: +100 entry, +20 prologue)
        self.assertEqual(rows["launch_span"]["median_ns"], str(100 + 1020 + 800 + 400 + 300 + 200))
        self.assertEqual(rows["launch_span"]["launches"], "4")

    def test_grid_entering_in_groups_is_named(self):
        p, rows = self.run_tool(trace(6, 3), "--skip", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("of a 3-block grid", p.stdout)
        self.assertNotIn("note:", p.stdout)
        self.assertEqual(rows["prologue"]["grid_blocks"], "3")
        # Blocks 2 and 3 of each launch enter 10 us after blocks 0 and 1: each launch reads as two of 2 blocks.
        p, rows = self.run_tool(trace(6, 4, wave=2), "--skip", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("12 launches (10 after --skip 2), median 2 blocks a launch of a 4-block grid", p.stdout)
        self.assertIn("note: a launch holds 2 of the grid's 4 blocks", p.stdout)
        self.assertEqual(rows["prologue"]["blocks_per_launch"], "2")

    def test_gzipped_trace_and_binary_input(self):
        import gzip
        with tempfile.TemporaryDirectory() as d:
            gz, junk = os.path.join(d, "t.csv.gz"), os.path.join(d, "junk.csv")
            with gzip.open(gz, "wt") as f:
                f.write(trace(6, 3))
            p = subprocess.run([sys.executable, TOOL, gz, "--skip", "2"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("6 launches (4 after --skip 2)", p.stdout)
            with open(junk, "wb") as f:
                f.write(b"\x1f\x8b\xff\xfe\x00binary")
            p = subprocess.run([sys.executable, TOOL, junk], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("junk.csv", p.stderr)
            self.assertNotIn("Traceback", p.stderr)

    def test_cluster_barrier_column(self):
        """barrier_ns (the newer last column): the cluster merge split at the barrier's release; 0 (the
        combine form) leaves the two parts out; traces without the column keep working (above)."""
        text = trace(4, 2)
        lines = text.strip().split("\n")
        out = [lines[0] + ",barrier_ns"]
        for ln in lines[1:]:
            f = ln.split(",")
            out.append(ln + "," + str(int(f[10]) + 150))  # merge + 150: barrier 150, slice 50
        p, rows = self.run_tool("\n".join(out) + "\n", "--skip", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(rows["cluster_merge"]["median_ns"], "200")
        self.assertEqual(rows["cluster_barrier"]["median_ns"], "150")
        self.assertEqual(rows["cluster_slice"]["median_ns"], "50")
        zero = [lines[0] + ",barrier_ns"] + [ln + ",0" for ln in lines[1:]]
        p, rows = self.run_tool("\n".join(zero) + "\n", "--skip", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("cluster_barrier", rows)
        bad = [lines[0] + ",barrier_ns"] + [ln + ",x" for ln in lines[1:]]
        p, _ = self.run_tool("\n".join(bad) + "\n", "--skip", "1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("field 'barrier_ns'", p.stderr)

    def test_block_without_keys(self):
        p, rows = self.run_tool(trace(3, 1, empty_block=True), "--skip", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(rows["first_keys"]["median_ns"], "0")
        self.assertEqual(rows["key_loop_rest"]["median_ns"], "0")

    def test_bad_input(self):
        p, _ = self.run_tool(trace(2, 2).replace("\n0,0,0,0,0,", "\n0,0,0,0,zz,", 1), "--skip", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("field 'sm'", p.stderr)
        p, _ = self.run_tool(HEADER.replace("loop_ns,", "") + "\n1,2\n", "--skip", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("column 'loop_ns' missing", p.stderr)
        p, _ = self.run_tool(trace(2, 2), "--skip", "5")
        self.assertEqual(p.returncode, 2)
        self.assertIn("none left after --skip 5", p.stderr)
        p = subprocess.run([sys.executable, TOOL, "/nonexistent/t.csv"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/t.csv", p.stderr)


if __name__ == "__main__":
    unittest.main()
