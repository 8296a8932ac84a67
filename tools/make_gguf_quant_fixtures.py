#!/usr/bin/env python3
"""tools/make_gguf_quant_fixtures.py: parity fixtures for minfer's GGUF dequantizers (engine/core/gguf_quant.h).

For each block format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) this builds a few blocks of
seeded random raw bytes, overwrites each block's fp16 scale fields (d; m or dmin) with finite values of
moderate size so that every decoded value is finite, and decodes them with gguf.quants.dequantize from the
`gguf` Python package, the project's parity reference. The blocks of each format, in order:
  0-3  random bytes, d uniform in [-2, 2], m uniform in [-1, 1], dmin uniform in [0, 1]
  4    d = 0 (a Q4_1 / Q5_1 block then decodes to m everywhere)
  5    d an fp16 subnormal (2^-20), to exercise the fp16 subnormal path
  6    every byte other than the fp16 fields 0xFF (largest nibbles, quants and scales)
  7    bytes alternating 0x0F, 0xF0 (nibbles 15 and 0 side by side)
F16 and BF16 fixtures hold seeded random values plus the special values (+-0, +-Inf, quiet NaN,
subnormals, the largest and smallest normals), decoded by the same package.

Writes OUT/<TYPE>.bin (the raw little-endian blocks), OUT/<TYPE>.f32 (the expected values, float32
little-endian, block_elems per block) and OUT/README.md (how they were made, with the package versions).
tests/cpu/test_gguf_quant.cpp requires minfer's output to equal these values bit for bit.

Usage: python3 tools/make_gguf_quant_fixtures.py [--out tests/fixtures/gguf_quant]
Needs numpy and gguf (pip install gguf); runs in well under a second; the outputs total about 60 KB.
"""
import argparse
import importlib.metadata
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf import quants

SEED = 20261105
N_RANDOM_BLOCKS = 4
N_PLAIN = 512  # random F16 / BF16 values beside the special ones

# Byte offsets of the fp16 fields in each block: ("d" | "m" | "dmin", offset). The layouts are those of
# engine/core/ggml_types.cpp; every other byte is a quant, a high-bit plane or a packed scale.
FP16_FIELDS = {
    "Q4_0": [("d", 0)],
    "Q4_1": [("d", 0), ("m", 2)],
    "Q5_0": [("d", 0)],
    "Q5_1": [("d", 0), ("m", 2)],
    "Q8_0": [("d", 0)],
    "Q2_K": [("d", 80), ("dmin", 82)],
    "Q3_K": [("d", 108)],
    "Q4_K": [("d", 0), ("dmin", 2)],
    "Q5_K": [("d", 0), ("dmin", 2)],
    "Q6_K": [("d", 208)],
}


def put_f16(block, offset, value):
    block[offset:offset + 2] = np.array([value], dtype="<f2").view(np.uint8)


def quant_blocks(name, rng):
    """(n_blocks, type_size) uint8: the eight blocks listed in the module docstring."""
    _, type_size = GGML_QUANT_SIZES[T[name]]
    blocks = [rng.integers(0, 256, size=type_size, dtype=np.uint8) for _ in range(N_RANDOM_BLOCKS + 2)]
    blocks.append(np.full(type_size, 0xFF, dtype=np.uint8))
    blocks.append(np.tile(np.array([0x0F, 0xF0], dtype=np.uint8), type_size // 2))
    for i, block in enumerate(blocks):
        for field, offset in FP16_FIELDS[name]:
            if field == "d":
                value = rng.uniform(-2.0, 2.0)
                if i == N_RANDOM_BLOCKS:
                    value = 0.0
                elif i == N_RANDOM_BLOCKS + 1:
                    value = 2.0 ** -20  # fp16 subnormal
            elif field == "m":
                value = rng.uniform(-1.0, 1.0)
            else:
                value = rng.uniform(0.0, 1.0)
            put_f16(block, offset, value)
    return np.stack(blocks)


def f16_bits(rng):
    """uint16 fp16 bit patterns: random normals of several magnitudes, then the special values."""
    plain = (rng.standard_normal(N_PLAIN) * np.exp2(rng.integers(-12, 12, N_PLAIN))).astype(np.float16)
    special = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF]
    return np.concatenate([plain.view(np.uint16), np.array(special, dtype=np.uint16)])


def bf16_bits(rng):
    """uint16 bf16 bit patterns: truncated random float32 of several magnitudes, then the special values."""
    plain = (rng.standard_normal(N_PLAIN) * np.exp2(rng.integers(-40, 40, N_PLAIN))).astype(np.float32)
    special = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x0001, 0x8001, 0x007F, 0x0080, 0x7F7F, 0xFF7F]
    return np.concatenate([(plain.view(np.uint32) >> 16).astype(np.uint16), np.array(special, dtype=np.uint16)])


def write(out, name, raw, expected, lines):
    """OUT/<name>.bin and OUT/<name>.f32, and a line for the README."""
    expected = np.ascontiguousarray(expected, dtype="<f4").ravel()
    raw = np.ascontiguousarray(raw, dtype=np.uint8).ravel()
    block_elems, type_size = GGML_QUANT_SIZES[T[name]]
    assert raw.size == expected.size // block_elems * type_size, name
    for suffix, data in ((".bin", raw), (".f32", expected)):
        tmp = os.path.join(out, name + suffix + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, os.path.join(out, name + suffix))
    n_blocks = expected.size // block_elems
    lines.append(f"| {name} | {n_blocks} | {block_elems} | {raw.size} | {expected.size * 4} |")
    print(f"{name}: {n_blocks} blocks, {expected.size} values", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "gguf_quant"), help="output directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    versions = f"gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}"
    print(versions, file=sys.stderr)

    rng = np.random.default_rng(SEED)
    lines = []
    for name in FP16_FIELDS:
        raw = quant_blocks(name, rng)
        expected = quants.dequantize(raw.ravel(), T[name])
        write(args.out, name, raw, expected, lines)
    for name, bits in (("F16", f16_bits(rng)), ("BF16", bf16_bits(rng))):
        raw = bits.astype("<u2").view(np.uint8)
        expected = quants.dequantize(raw, T[name])
        write(args.out, name, raw, expected, lines)

    readme = [
        "# tests/fixtures/gguf_quant: parity fixtures for the GGUF dequantizers",
        "",
        "Generated by `python3 tools/make_gguf_quant_fixtures.py` (do not edit by hand) with "
        f"{versions}, seed {SEED}.",
        "`<TYPE>.bin` holds raw GGML blocks (little-endian); `<TYPE>.f32` the values `gguf.quants.dequantize`",
        "decodes them to (float32, little-endian). The block contents are described in the tool's docstring;",
        "tests/cpu/test_gguf_quant.cpp requires engine/core/gguf_quant.cpp to match them bit for bit.",
        "",
        "| type | blocks | elements per block | .bin bytes | .f32 bytes |",
        "|---|---|---|---|---|",
        *lines,
        "",
    ]
    tmp = os.path.join(args.out, "README.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(readme))
    os.replace(tmp, os.path.join(args.out, "README.md"))


if __name__ == "__main__":
    main()
