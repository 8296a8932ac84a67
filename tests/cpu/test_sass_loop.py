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


def loop_kernel():
    """SassText of kernel kern_tc up to its loop's first instruction, an HMMA at address top: (text, top)."""
    t = SassText()
    t.function("_Z7kern_tcv")
    t.ins("MOV R1, c[0x0][0x28]")
    top = t.addr
    t.ins("HMMA.16816.F32.BF16 R4, R8, R12, R4")
    return t, top


class SassLoop(unittest.TestCase):
    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)

    def main_loop_of(self, t):
        """The tool's output for the kernel kern_tc of SassText t (asserting it ran)."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k.sass")
            with open(path, "w") as f:
                f.write(t.text())
            r = self.run_tool("--sass", path, "--kernel", "kern_tc")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

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
        t, top = loop_kernel()
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
        self.assertIn("main loop 6", self.main_loop_of(t))  # HMMA, 3 IADD3, the branch out, the loop's branch

    def test_loop_is_the_natural_loop(self):
        # The loop (header at top: HMMA, a BRA.DIV to a shuffle fallback, a forward branch over an
        # epilogue block laid out inside the loop's address range, the backward branch) followed by
        # EXIT and the fallback block, which branches back into the loop. Counted: the blocks on the
        # loop's paths only: HMMA, BRA.DIV, SHFL, @P1 BRA, ISETP, @P0 BRA = 6 (not the epilogue's 3 STG
        # and EXIT, nor the fallback's 3 instructions, which a converged warp never runs).
        t, top = loop_kernel()
        t.ins("BRA.DIV UR4, 0x200")
        t.ins("SHFL.BFLY PT, R3, R2, 0x1, 0x1f")
        back = t.addr
        t.ins(f"@P1 BRA 0x{top + 0x80:x}")
        t.ins("STG.E desc[UR4][R6.64], R4")
        t.ins("STG.E desc[UR4][R6.64+0x4], R5")
        t.ins("STG.E desc[UR4][R6.64+0x8], R6")
        t.ins("EXIT")
        assert t.addr == top + 0x80
        t.ins("ISETP.NE.AND P0, PT, R2, 0x10, PT")
        t.ins(f"@P0 BRA 0x{top:x}")
        t.ins("EXIT")
        while t.addr < 0x200:
            t.ins("NOP")
        t.ins("WARPSYNC.COLLECTIVE R18, 0x220")
        t.ins("SHFL.BFLY P1, R16, R15, R16, R17")
        t.ins(f"BRA 0x{back:x}")
        self.assertIn("main loop 6", self.main_loop_of(t))

    def test_blocks_of_the_loop(self):
        # --blocks: the loop of test_loop_is_the_natural_loop's shape without the fallback: header (HMMA,
        # the branch over the epilogue: 2), the block that falls through from it into the epilogue is off
        # the loop, the block after it (ISETP, the back edge: 2); each with its successors in the loop.
        t, top = loop_kernel()
        t.ins("MUFU.EX2 R6, R6")
        t.ins(f"@P1 BRA 0x{top + 0x60:x}")
        t.ins("STG.E desc[UR4][R6.64], R4")
        t.ins("STG.E desc[UR4][R6.64+0x4], R5")
        t.ins("EXIT")
        assert t.addr == top + 0x60
        t.ins("ISETP.NE.AND P0, PT, R2, 0x10, PT")
        t.ins(f"@P0 BRA 0x{top:x}")
        t.ins("EXIT")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k.sass")
            with open(path, "w") as f:
                f.write(t.text())
            r = self.run_tool("--sass", path, "--kernel", "kern_tc", "--blocks")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("main loop 5", r.stdout)
        self.assertIn(f"loop blocks (header 0x{top:x}", r.stdout)
        self.assertRegex(r.stdout, rf"0x{top:05x}\s+3\s+-> 0x{top + 0x60:x}\s+\[HMMA 1 MUFU 1\]")
        self.assertRegex(r.stdout, rf"0x{top + 0x60:05x}\s+2\s+-> 0x{top:x} \(back edge\)")
        self.assertEqual(r.stdout.count("\n    0x"), 2)  # the epilogue block is not listed

    def test_mix_by_class(self):
        # --mix: the loop's instructions by issuing unit, beside --against's loop, and as CSV columns.
        with tempfile.TemporaryDirectory() as d:
            new, old = os.path.join(d, "new.sass"), os.path.join(d, "old.sass")
            for path, extra in ((new, ["FADD R3, R3, R4", "F2FP.BF16.F32.PACK_AB R5, R3, R4", "UIADD3 UR4, UR4, 0x1, URZ"]),
                                (old, [])):
                t = SassText()
                t.function("_Z7kern_tcv")
                top = t.addr
                t.ins("HGMMA.64x64x16.F32.BF16 R24, gdesc[UR16], R24")
                t.ins("MUFU.EX2 R6, R6")
                t.ins("FFMA R7, R7, R8, -R9")
                for x in extra:
                    t.ins(x)
                t.ins("LDS R10, [R11]")
                t.ins(f"@P0 BRA 0x{top:x}")
                t.ins("EXIT")
                with open(path, "w") as f:
                    f.write(t.text())
            out = os.path.join(d, "mix.csv")
            r = self.run_tool("--sass", new, "--kernel", "kern_tc", "--against", old, "--mix", "--csv", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("main loop 8", r.stdout)  # HGMMA, MUFU, FFMA, the 3 extra, LDS, BRA
            for cls, before, after in (("tensor", 1, 1), ("mufu", 1, 1), ("fp32", 1, 2), ("convert", 0, 1),
                                       ("shared", 1, 1), ("control", 1, 1), ("uniform", 0, 1)):
                self.assertRegex(r.stdout, rf"{cls}\s+{before} ->\s+{after}\n")
            self.assertNotRegex(r.stdout, r"integer\s")  # no class printed where both loops have none
            with open(out) as f:
                head, row = f.read().splitlines()[:2]
            cols = dict(zip(head.split(","), row.split(",")))
            self.assertEqual((cols["loop_instructions"], cols["fp32"], cols["convert"], cols["integer"]), ("8", "2", "1", "0"))

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
