#!/usr/bin/env python3
"""tools/sass_loop.py: the size of a CUDA kernel's main loop in SASS, to compare code generation between
commits or variants without a GPU (what a switch's branches cost a streaming loop).

For each kernel whose mangled name matches --kernel (a regular expression), prints its instruction count
and its main loop: the smallest natural loop (the blocks of a back edge's cycle, found from the control-flow
graph's dominators) holding at least --min-mma tensor-core MMAs (HMMA/HGMMA), with its instruction count
and the opcodes that differ most from --against's loop if given. Blocks laid out inside the loop's address
range but off its paths (an epilogue) and the fallback a BRA.DIV jumps to (run only by a diverged warp) are
not counted; static counts (both sides of a branch inside the loop count).
Input: an object file or binary (disassembled with cuobjdump -sass, which needs nvdisasm on PATH; pip
packages nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm provide both), or --sass FILE, cuobjdump -sass's
text.
With --mix, also the loop's instructions by the unit that issues them (tensor, MUFU, FP32, conversion,
integer, shared memory, ...; see CLASSES), beside --against's loop: what a loop spends besides its MMAs
(e.g. the bf16 P hi + lo split of the sm90 prefill against its fp16 instance).
With --blocks, also the loop's basic blocks (address, instructions, MMAs and other notable opcodes, successors
inside the loop): one pass's dynamic count is the sum over the blocks of the path it takes (e.g. an unmasked
key tile without O's rescale), where the static count holds both sides of every branch.
Usage: tools/sass_loop.py OBJ|--sass FILE --kernel REGEX [--min-mma N] [--against OBJ|SASS] [--mix] [--blocks] [--csv OUT]
  e.g. tools/sass_loop.py decode_attention.o --kernel 'decode_split_tcI13__nv_bfloat16Li128ELi2E(Lb0E)+EEv'
Exit status 2 on a missing file or tool, or no kernel matching.
"""
import argparse
import collections
import csv
import re
import shutil
import subprocess
import sys

INS = re.compile(r"\s+/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z0-9_.]+)([^;]*);")


# Opcode classes of --mix, by the opcode's name before its first '.' (first match wins; anything else:
# other). Uniform-datapath opcodes (U...) count as uniform unless named in an earlier class.
CLASSES = [
    ("tensor", {"HMMA", "HGMMA", "IMMA", "QGMMA", "IGMMA", "BMMA"}),
    ("mufu", {"MUFU"}),
    ("fp32", {"FFMA", "FADD", "FMUL", "FMNMX", "FSEL", "FSETP", "FSET", "FCHK", "FSWZADD"}),
    ("fp16x2", {"HFMA2", "HADD2", "HMUL2", "HMNMX2", "HSET2", "HSETP2"}),
    ("convert", {"F2F", "F2FP", "F2I", "I2F", "FRND", "I2FP", "F2IP"}),
    ("integer", {"IADD3", "IADD", "IMAD", "LOP3", "LOP", "SHF", "SHL", "SHR", "LEA", "PRMT", "SEL", "ISETP", "IABS",
                 "IMNMX", "VIMNMX", "VIADD", "POPC", "FLO", "BMSK", "SGXT", "BREV", "PLOP3", "P2R", "R2P"}),
    ("move", {"MOV", "SHFL", "S2R", "CS2R", "S2UR", "R2UR", "VOTE", "MOVM"}),
    ("shared", {"LDS", "STS", "LDSM", "STSM", "ATOMS"}),
    ("global", {"LDG", "STG", "LDL", "STL", "LD", "ST", "LDGSTS", "ATOMG", "RED", "CCTL"}),
    ("async", {"UBLKCP", "UTMALDG", "UTMASTG", "UTMAPF", "UTMACCTL", "SYNCS", "LDGDEPBAR", "DEPBAR", "ARRIVES",
               "FENCE", "MEMBAR"}),
    ("control", {"BAR", "WARPSYNC", "BSSY", "BSYNC", "BRA", "BRX", "EXIT", "NOP", "YIELD", "WARPGROUP", "ELECT",
                 "CALL", "RET", "ACQBULK", "ACQSHMINIT", "ENDCOLLECTIVE", "NANOSLEEP", "ERRBAR"}),
]


def op_class(op):
    base = op.split(".")[0]
    for name, ops in CLASSES:
        if base in ops:
            return name
    return "uniform" if base.startswith("U") else "other"


def mix(ops):
    """Counter of opcode classes from a Counter of full opcodes."""
    out = collections.Counter()
    for op, n in ops.items():
        out[op_class(op)] += n
    return out


def fail(msg):
    print(f"sass_loop.py: {msg}", file=sys.stderr)
    sys.exit(2)


def sass_text(path, is_text):
    if is_text:
        try:
            with open(path) as f:
                return f.read()
        except OSError as e:
            fail(f"{path}: {e.strerror or e}")
    tool = shutil.which("cuobjdump")
    if not tool:
        fail("cuobjdump not on PATH (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm, or pass --sass)")
    try:
        r = subprocess.run([tool, "-sass", path], capture_output=True, text=True)
    except OSError as e:
        fail(f"{tool}: {e.strerror or e}")
    if r.returncode != 0 or "fatal" in r.stdout:
        fail(f"{path}: cuobjdump failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return r.stdout


def functions(text):
    funcs, cur = {}, None
    for line in text.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
            continue
        if cur is not None:
            m = INS.match(line)
            if m:
                funcs[cur].append((int(m.group(1), 16), m.group(3), m.group(4), bool(m.group(2))))
    return funcs


def branch_target(op, rest):
    """The target address of a direct branch (BRA, BRA.DIV, ...), else None."""
    if not op.startswith("BRA"):
        return None
    m = re.search(r"0x([0-9a-f]+)", rest)
    return int(m.group(1), 16) if m else None


def blocks_of(ins):
    """Basic blocks of a function (lists of indices into ins) and each block's successors (block numbers).
    A block ends at a branch, EXIT or RET; an unpredicated BRA or EXIT does not fall through. A BRA.DIV's
    target (the code a warp runs when it reaches a shuffle or vote diverged, laid out after the kernel)
    is not a successor: the loops measured here run converged, so that code is never run."""
    at = {a: i for i, (a, _, _, _) in enumerate(ins)}
    leaders = {0}
    for i, (a, op, rest, _) in enumerate(ins):
        tgt = branch_target(op, rest)
        if tgt is not None and tgt in at:
            leaders.add(at[tgt])
        if op.startswith(("BRA", "EXIT", "RET", "BRX", "JMP")) and i + 1 < len(ins):
            leaders.add(i + 1)
    starts = sorted(leaders)
    block_of = {}
    blocks = []
    for n, b in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(ins)
        blocks.append(list(range(b, end)))
        for i in range(b, end):
            block_of[i] = n
    succ = []
    for n, body in enumerate(blocks):
        a, op, rest, pred = ins[body[-1]]
        out = set()
        tgt = branch_target(op, rest)
        if tgt is not None and tgt in at and not op.startswith("BRA.DIV"):
            out.add(block_of[at[tgt]])
        ends = (op == "BRA" and not pred) or (op.startswith(("EXIT", "RET", "BRX", "JMP")) and not pred)
        if not ends and n + 1 < len(blocks):
            out.add(n + 1)
        succ.append(out)
    return blocks, succ


def dominators(succ, pred):
    """dom[n]: the blocks that dominate block n (every path from the entry, block 0, to n passes them),
    as a bit set (int); 0 for a block the entry does not reach."""
    reach, stack = {0}, [0]
    while stack:
        for m in succ[stack.pop()]:
            if m not in reach:
                reach.add(m)
                stack.append(m)
    everything = (1 << len(succ)) - 1
    dom = [everything if n in reach else 0 for n in range(len(succ))]
    dom[0] = 1
    changed = True
    while changed:
        changed = False
        for n in sorted(reach - {0}):
            d = everything
            for p in pred[n]:
                if p in reach:
                    d &= dom[p]
            d |= 1 << n
            if d != dom[n]:
                dom[n], changed = d, True
    return dom


def main_loop(ins, min_mma):
    """The smallest loop holding at least min_mma MMAs (or None), as its instructions in address order.
    (loop_blocks gives its blocks.)"""
    found = loop_blocks(ins, min_mma)
    return found and [ins[i] for b in found[0] for i in b["body"]]


def loop_blocks(ins, min_mma):
    """The smallest loop holding at least min_mma MMAs, as (blocks, header) or None: its basic blocks in
    address order, each a dict of body (indices into ins), start (address), succ (the start addresses of
    its successors inside the loop) and back (whether it ends in the loop's back edge); header: the
    loop's first block's address.
    A loop is the natural loop of a back edge (a branch or fall-through to a block that dominates the
    block it leaves): that header and every block that reaches the edge's source without passing
    through the header. Blocks laid out inside the loop's
    address range but off its paths (the epilogue, a cold block entered from outside) are not counted;
    a wider loop around the main one (a cold block branching back to the kernel's start) has more
    instructions and is not the smallest."""
    blocks, succ = blocks_of(ins)
    if not blocks:
        return None
    pred = [set() for _ in blocks]
    for n, out in enumerate(succ):
        for m in out:
            pred[m].add(n)
    dom = dominators(succ, pred)
    best = None
    for n, out in enumerate(succ):
        for h in out:
            if not dom[n] >> h & 1:
                continue  # not a back edge: h does not dominate n
            body, stack = {h, n}, [n]
            while stack:
                x = stack.pop()
                if x == h:
                    continue
                for y in pred[x]:
                    if y not in body and dom[y]:  # (a block no path from the entry reaches is not run)
                        body.add(y)
                        stack.append(y)
            size = sum(len(blocks[b]) for b in body)
            mma = sum(ins[i][1].startswith(("HMMA", "HGMMA")) for b in body for i in blocks[b])
            if mma >= min_mma and (best is None or size < best[0]):
                best = (size, body, h, n)
    if best is None:
        return None
    _, body, h, n = best
    start = lambda b: ins[blocks[b][0]][0]
    out = [{"body": blocks[b], "start": start(b), "succ": sorted(start(m) for m in succ[b] if m in body),
            "back": b == n} for b in sorted(body)]
    return out, start(h)


def same_name(name):
    """The name without its anonymous namespace's per-compile hash (_GLOBAL__N__<hex>), so that one kernel
    of two builds compares."""
    return re.sub(r"_GLOBAL__N__[0-9a-f]+_", "_GLOBAL__N__", name)


def summary(text, pattern, min_mma):
    out = {}
    for name, ins in functions(text).items():
        name = same_name(name)
        if pattern.search(name):
            loop = main_loop(ins, min_mma)
            out[name] = (len(ins), loop and collections.Counter(x[1] for x in loop), loop and len(loop))
    return out


# Opcodes --blocks names in a block's note (counted), beside its MMAs.
NOTABLE = ("HGMMA", "HMMA", "MUFU", "BAR", "LDGSTS", "LDS", "STS", "SYNCS", "LDL", "STL", "SHFL", "VOTE")


def print_blocks(ins, min_mma):
    blocks, header = loop_blocks(ins, min_mma)
    print(f"  loop blocks (header 0x{header:x}; a path's instructions are the sum over its blocks):")
    for b in blocks:
        ops = collections.Counter(ins[i][1].split(".")[0] for i in b["body"])
        note = " ".join(f"{k} {ops[k]}" for k in NOTABLE if ops[k])
        to = ", ".join(f"0x{t:x}" for t in b["succ"]) + (" (back edge)" if b["back"] else "")
        print(f"    0x{b['start']:05x} {len(b['body']):4d}  -> {to or '-'}" + (f"  [{note}]" if note else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("obj", nargs="?", help="object file or binary (cuobjdump -sass)")
    ap.add_argument("--sass", help="cuobjdump -sass output instead of OBJ")
    ap.add_argument("--kernel", required=True, help="regular expression over the mangled kernel names")
    ap.add_argument("--min-mma", type=int, default=1, help="MMAs the loop must hold (default 1)")
    ap.add_argument("--against", help="another OBJ (or .sass text) whose same-named kernels' loops to compare")
    ap.add_argument("--mix", action="store_true", help="also the loop's instructions by class (tensor, mufu, fp32, ...)")
    ap.add_argument("--blocks", action="store_true",
                    help="also the loop's basic blocks: address, instructions, MMAs and other notable ones, "
                         "successors in the loop (to add up one path through it: the static count holds every "
                         "branch's both sides)")
    ap.add_argument("--csv", help="write kernel, instructions, loop_instructions rows here (with --mix, a column "
                                  "per class too)")
    a = ap.parse_args()
    if (a.obj is None) == (a.sass is None):
        fail("give one of OBJ or --sass")
    try:
        pattern = re.compile(a.kernel)
    except re.error as e:
        fail(f"--kernel: not a regular expression: {e}")
    text = sass_text(a.sass or a.obj, a.sass is not None)
    mine = summary(text, pattern, a.min_mma)
    if not mine:
        fail(f"no kernel matching --kernel '{a.kernel}' in {a.sass or a.obj}")
    other = {}
    if a.against:
        other = summary(sass_text(a.against, a.against.endswith(".sass")), pattern, a.min_mma)
    rows = []
    for name, (n, ops, loop_n) in mine.items():
        print(f"{name}\n  instructions {n}; main loop {loop_n if loop_n else 'none found'}")
        if ops and name in other and other[name][1]:
            o_n, o_ops, o_loop = other[name]
            print(f"  against: instructions {o_n}; main loop {o_loop} ({loop_n - o_loop:+d})")
            diff = sorted(set(ops) | set(o_ops), key=lambda k: -abs(ops[k] - o_ops[k]))
            for k in [k for k in diff if ops[k] != o_ops[k]][:8]:
                print(f"    {k:24s} {o_ops[k]:5d} -> {ops[k]:5d}")
        row = {"kernel": name, "instructions": n, "loop_instructions": loop_n or ""}
        if a.mix and ops:
            m = mix(ops)
            o_m = mix(other[name][1]) if name in other and other[name][1] else None
            print("  loop by class" + (" (against -> this)" if o_m else "") + ":")
            for cls in [c for c, _ in CLASSES] + ["uniform", "other"]:
                if m[cls] or (o_m and o_m[cls]):
                    print(f"    {cls:10s} " + (f"{o_m[cls]:5d} -> " if o_m else "") + f"{m[cls]:5d}")
            row.update({c: m[c] for c in [c for c, _ in CLASSES] + ["uniform", "other"]})
        if a.blocks and ops:
            print_blocks(next(ins for nm, ins in functions(text).items() if same_name(nm) == name), a.min_mma)
        rows.append(row)
    if a.csv:
        cols = ["kernel", "instructions", "loop_instructions"]
        if a.mix:
            cols += [c for c, _ in CLASSES] + ["uniform", "other"]
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, restval="")
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
