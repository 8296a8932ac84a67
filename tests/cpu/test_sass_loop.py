"""tests/cpu/test_sass_loop.py: tools/sass_loop.py on hand-written cuobjdump -sass text (no GPU, no
cuobjdump): the main loop found from its backward branch, the comparison against another build's kernel
of the same name (the anonymous namespace's hash differs), and the refusals (exit 2).
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "sass_loop.py")


class SassText:
    """cuobjdump -sass text built an instruction at a time (addresses 0x10 apart from each function's 0)."""

    def __init__(self):
        self.lines, self.addr = ["\tcode for sm_90a"], 0

    def function(self, name):
        self.lines += [f"\t\tFunction : {name}", ""]
        self.addr = 0

    def ins(self, text):
        self.lines.append(f"        /*{self.addr:04x}*/                   {text} ;    /* 0x0 */")
        self.addr += 0x10

    def text(self):
        return "\n".join(self.lines) + "\n"


def sass(name_hash, loop_extra):
    """One kernel: 2 instructions, a loop of 3 + loop_extra instructions (one HMMA) ending in a backward
    branch, a forward branch (not a loop), EXIT; and a second kernel that does not match."""
    t = SassText()
    t.function(f"_ZN6minfer52_GLOBAL__N__{name_hash}_19_k_cu_1kern_tcEv")
    t.ins("MOV R1, c[0x0][0x28]")
    t.ins("S2R R0, SR_TID.X")
    top = t.addr
    t.ins("HMMA.16816.F32.BF16 R4, R8, R12, R4")
    for _ in range(loop_extra):
        t.ins("IADD3 R2, R2, 0x1, RZ")
    t.ins("ISETP.NE.AND P0, PT, R2, 0x10, PT")
    t.ins(f"@P0 BRA 0x{top:x}")
    t.ins(f"BRA 0x{t.addr + 0x20:x}")
    t.ins("EXIT")
    t.function("_Z5otherv")
    t.ins("EXIT")
    return t.text()


class SassLoop(unittest.TestCase):
    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)

    def test_loop_size_and_comparison(self):
        with tempfile.TemporaryDirectory() as d:
            new, old = os.path.join(d, "new.sass"), os.path.join(d, "old.sass")
            with open(new, "w") as f:
                f.write(sass("9eafedf0", 5))
            with open(old, "w") as f:
                f.write(sass("c5c42aca", 2))
            out = os.path.join(d, "loops.csv")
            r = self.run_tool("--sass", new, "--kernel", "kern_tc", "--against", old, "--csv", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("instructions 12; main loop 8", r.stdout)  # the loop: HMMA, 5 IADD3, ISETP, BRA
            self.assertIn("against: instructions 9; main loop 5 (+3)", r.stdout)
            self.assertRegex(r.stdout, r"IADD3\s+2 ->\s+5")
            self.assertNotIn("_Z5otherv", r.stdout)
            with open(out) as f:
                self.assertEqual(f.read().splitlines()[1].split(",")[1:], ["12", "8"])
            r = self.run_tool("--sass", new, "--kernel", "kern_tc", "--min-mma", "2")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("main loop none found", r.stdout)

    def test_cold_block_branching_back_is_not_the_loop(self):
        # The loop (HMMA, 3 IADD3, a branch out to a cold block, its backward branch) and, after the
        # kernel's EXIT, the cold block branching back to the kernel's start: a wider backward branch that
        # spans the loop; the loop is the smallest body with the MMAs.
        t = SassText()
        t.function("_Z7kern_tcv")
        t.ins("MOV R1, c[0x0][0x28]")
        top = t.addr
        t.ins("HMMA.16816.F32.BF16 R4, R8, R12, R4")
        for _ in range(3):
            t.ins("IADD3 R2, R2, 0x1, RZ")
        t.ins("@P1 BRA 0x100")
        t.ins(f"@P0 BRA 0x{top:x}")
        t.ins("EXIT")
        while t.addr < 0x100:
            t.ins("NOP")
        for _ in range(4):
            t.ins("LDG.E R3, desc[UR4][R6.64]")
        t.ins("BRA 0x0")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k.sass")
            with open(path, "w") as f:
                f.write(t.text())
            r = self.run_tool("--sass", path, "--kernel", "kern_tc")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("main loop 6", r.stdout)  # HMMA, 3 IADD3, the branch out, the loop's branch

    def test_refusals_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k.sass")
            with open(path, "w") as f:
                f.write(sass("0", 1))
            for args, text in ((["--sass", path, "--kernel", "nothing_here"], "no kernel matching"),
                               (["--sass", path, "--kernel", "("], "--kernel"),
                               (["--sass", os.path.join(d, "missing.sass"), "--kernel", "k"], "missing.sass"),
                               (["--kernel", "k"], "one of OBJ or --sass")):
                r = self.run_tool(*args)
                self.assertEqual(r.returncode, 2, args)
                self.assertIn(text, r.stderr)


if __name__ == "__main__":
    unittest.main()
