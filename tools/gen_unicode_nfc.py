#!/usr/bin/env python3
"""tools/gen_unicode_nfc.py: the Unicode tables behind minfer's NFC normalizer (engine/core/unicode_nfc.cpp),
generated from Python's `unicodedata` module (its Unicode version is written into the output's header).

Writes engine/core/unicode_nfc_data.inc (or --out), four sorted integer tables:
  kNfcProps*      ranges [first, last] of the code points that are not "plain" (plain: canonical combining
                  class 0 and NFC_Quick_Check=Yes), each with its ccc and its NFC_Quick_Check value (Maybe: the
                  second character of some primary composite, or a Hangul V/T jamo; No: Full_Composition_Exclusion).
                  Every code point outside these ranges has ccc 0 and NFC_QC=Yes.
  kDecomp*        the canonical (untagged) decomposition mappings of UnicodeData, one level deep: key code points,
                  offsets into one flat array of code points (a mapping is kDecompData[off[i], off[i+1]))
  kCompose*       the canonical composition pairs: (first << 21 | second) sorted, and the primary composite of each;
                  Full_Composition_Exclusion characters are left out
Hangul syllables are algorithmic and not tabulated.

Full_Composition_Exclusion is derived from the data (CompositionExclusions.txt is not part of unicodedata): a
character c with a canonical decomposition is excluded when NFC(NFD(c)) != c. The script also classifies the
exclusions (singletons, non-starter decompositions, script-specific exclusions) and checks the properties the C++
code relies on (see check_invariants), failing loudly if a future Unicode version breaks one.

Usage: python3 tools/gen_unicode_nfc.py [--out engine/core/unicode_nfc_data.inc]
"""
import argparse
import os
import sys
import unicodedata as ud

MAX_CP = 0x110000
S_BASE, S_COUNT = 0xAC00, 11172
V_FIRST, V_LAST = 0x1161, 0x1175  # Hangul vowel jamo (compose with a preceding L)
T_FIRST, T_LAST = 0x11A8, 0x11C2  # Hangul trailing consonants (compose with a preceding LV)
QC_YES, QC_MAYBE, QC_NO = 0, 1, 2


def is_surrogate(c):
    return 0xD800 <= c <= 0xDFFF


def canonical_mapping(c):
    """UnicodeData's canonical decomposition mapping of c (one level), or None."""
    d = ud.decomposition(chr(c))
    if not d or d.startswith('<'):
        return None
    return [int(x, 16) for x in d.split()]


def build():
    ccc = [ud.combining(chr(c)) for c in range(MAX_CP)]
    decomp = {}
    for c in range(MAX_CP):
        m = canonical_mapping(c)
        if m is not None:
            assert not (S_BASE <= c < S_BASE + S_COUNT), 'Hangul syllables must not be tabulated'
            decomp[c] = m

    excluded = set()
    kinds = {'singleton': 0, 'non_starter': 0, 'exclusion': 0}
    for c, m in decomp.items():
        if ud.normalize('NFC', ud.normalize('NFD', chr(c))) == chr(c):
            continue
        excluded.add(c)
        if len(m) == 1:
            kinds['singleton'] += 1
        elif ccc[m[0]] != 0 or ccc[c] != 0:
            kinds['non_starter'] += 1
        else:
            kinds['exclusion'] += 1

    compose = {}
    for c, m in decomp.items():
        if c in excluded:
            continue
        assert len(m) == 2, f'U+{c:04X}: a primary composite with a mapping of length {len(m)}'
        key = (m[0], m[1])
        assert key not in compose, f'two composites for U+{m[0]:04X} U+{m[1]:04X}'
        compose[key] = c

    qc = [QC_YES] * MAX_CP
    for (_, second) in compose:
        qc[second] = QC_MAYBE
    for c in list(range(V_FIRST, V_LAST + 1)) + list(range(T_FIRST, T_LAST + 1)):
        qc[c] = QC_MAYBE
    for c in excluded:
        assert qc[c] == QC_YES, f'U+{c:04X} both excluded and a second element'
        qc[c] = QC_NO
    return ccc, decomp, excluded, kinds, compose, qc


def full_nfd(c, decomp):
    if S_BASE <= c < S_BASE + S_COUNT:
        return [ord(x) for x in ud.normalize('NFD', chr(c))]
    if c not in decomp:
        return [c]
    out = []
    for d in decomp[c]:
        out.extend(full_nfd(d, decomp))
    return out


def check_invariants(ccc, decomp, compose, qc):
    """What unicode_nfc.cpp assumes; every assertion names the assumption."""
    plain = [ccc[c] == 0 and qc[c] == QC_YES for c in range(MAX_CP)]
    # 1. The fast path: every code point below U+0300 is plain, so NFC never changes text made of them.
    assert all(plain[c] for c in range(0x300)), 'a code point below U+0300 is not plain'
    # 2. A plain code point starts a segment that normalizes independently of what precedes it: its full
    #    decomposition begins with a starter that is never the second character of a composition.
    seconds = {s for (_, s) in compose} | set(range(V_FIRST, V_LAST + 1)) | set(range(T_FIRST, T_LAST + 1))
    for c in range(MAX_CP):
        if plain[c] and not is_surrogate(c):
            first = full_nfd(c, decomp)[0]
            assert ccc[first] == 0 and first not in seconds, f'U+{c:04X} is plain but not a safe boundary'
    # 3. Only plain code points and code points with NFC_QC=No have canonical decompositions.
    for c in decomp:
        assert plain[c] or qc[c] == QC_NO, f'U+{c:04X} has a decomposition, ccc {ccc[c]}, NFC_QC {qc[c]}'
    # 4. Primary composites are starters (the composition step keeps ccc 0 for a composed starter).
    for (_, _), c in compose.items():
        assert ccc[c] == 0, f'primary composite U+{c:04X} has ccc {ccc[c]}'
    # 5. Composition pairs fit the (first << 21 | second) key, and every code point fits 21 bits.
    assert all(a < (1 << 21) and b < (1 << 21) for (a, b) in compose)
    # 6. Python's NFC agrees with the quick-check values on each single code point: a plain code point and a
    #    non-starter with NFC_QC=Yes are their own NFC.
    for c in range(MAX_CP):
        if not is_surrogate(c) and qc[c] == QC_YES:
            assert ud.normalize('NFC', chr(c)) == chr(c), f'U+{c:04X}'


def prop_ranges(ccc, qc):
    ranges = []  # [first, last, ccc, qc]
    for c in range(MAX_CP):
        if ccc[c] == 0 and qc[c] == QC_YES:
            continue
        if ranges and ranges[-1][1] == c - 1 and ranges[-1][2] == ccc[c] and ranges[-1][3] == qc[c]:
            ranges[-1][1] = c
        else:
            ranges.append([c, c, ccc[c], qc[c]])
    return ranges


def fmt_array(ctype, name, values, per_line, width):
    lines = [f'constexpr {ctype} {name}[] = {{']
    for i in range(0, len(values), per_line):
        chunk = values[i:i + per_line]
        lines.append('    ' + ' '.join(f'{v:#0{width}x},' if width else f'{v},' for v in chunk))
    lines.append('};')
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument('--out', default=os.path.join(root, 'engine', 'core', 'unicode_nfc_data.inc'))
    args = ap.parse_args()

    ccc, decomp, excluded, kinds, compose, qc = build()
    check_invariants(ccc, decomp, compose, qc)
    ranges = prop_ranges(ccc, qc)

    keys = sorted(decomp)
    offsets, data = [0], []
    for c in keys:
        data.extend(decomp[c])
        offsets.append(len(data))
    assert len(data) < 65536
    pairs = sorted(compose.items(), key=lambda kv: (kv[0][0] << 21) | kv[0][1])

    n_maybe = sum(1 for c in range(MAX_CP) if qc[c] == QC_MAYBE)
    n_ccc = sum(1 for c in range(MAX_CP) if ccc[c] != 0)
    out = [
        '// engine/core/unicode_nfc_data.inc: GENERATED by tools/gen_unicode_nfc.py; do not edit.',
        f'// Unicode {ud.unidata_version} (Python {sys.version.split()[0]} unicodedata.unidata_version).',
        f'// {n_ccc} code points with ccc != 0; NFC_QC: {n_maybe} Maybe, {len(excluded)} No '
        f'(Full_Composition_Exclusion:',
        f'// {kinds["singleton"]} singletons, {kinds["non_starter"]} non-starter decompositions, '
        f'{kinds["exclusion"]} composition exclusions).',
        f'// {len(ranges)} property ranges, {len(keys)} canonical decompositions ({len(data)} code points), '
        f'{len(pairs)} composition pairs.',
        '// Included by engine/core/unicode_nfc.cpp inside namespace minfer::nfc_data.',
        '',
        f'constexpr char kUnicodeVersion[] = "{ud.unidata_version}";',
        '',
        '// Code points that are not plain (ccc != 0 or NFC_QC != Yes): ranges [first, last] sorted by first, with',
        '// value = ccc | qc << 8 (qc: 1 Maybe, 2 No).',
        fmt_array('char32_t', 'kNfcPropsFirst', [r[0] for r in ranges], 10, 7),
        fmt_array('char32_t', 'kNfcPropsLast', [r[1] for r in ranges], 10, 7),
        fmt_array('std::uint16_t', 'kNfcPropsValue', [r[2] | (r[3] << 8) for r in ranges], 12, 5),
        '',
        '// Canonical decomposition mappings (one level): kDecompData[kDecompOffset[i], kDecompOffset[i + 1]).',
        fmt_array('char32_t', 'kDecompKey', keys, 10, 7),
        fmt_array('std::uint16_t', 'kDecompOffset', offsets, 14, 0),
        fmt_array('char32_t', 'kDecompData', data, 10, 7),
        '',
        '// Canonical composition: key (first << 21 | second), sorted; kComposeValue[i] is the primary composite.',
        fmt_array('std::uint64_t', 'kComposeKey', [(a << 21) | b for (a, b), _ in pairs], 5, 14),
        fmt_array('char32_t', 'kComposeValue', [c for _, c in pairs], 10, 7),
        '',
    ]
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write('\n'.join(out))
    print(f'wrote {args.out}: Unicode {ud.unidata_version}, {len(ranges)} ranges, {len(keys)} decompositions '
          f'({len(data)} code points), {len(pairs)} pairs; excluded {len(excluded)} {kinds}')


if __name__ == '__main__':
    main()
