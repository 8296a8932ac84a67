#!/usr/bin/env python3
"""tools/make_nfc_fixtures.py: NFC cases that minfer's normalizer (engine/core/unicode_nfc) must reproduce byte
for byte (tests/cpu/test_unicode_nfc.cpp), with Python's unicodedata.normalize('NFC', ...) as the reference.

Writes tests/fixtures/unicode/nfc.json (or --out): {"unicode_version": ..., "cases": [{"name", "input", "nfc"}]}
  hand-picked cases   combining acute, NFD Vietnamese, Hangul jamo L+V, L+V+T, LV+T, singletons (U+212B, U+2126),
                      composition exclusions (U+0958), marks out of canonical order, blocked compositions, Greek
                      tonos/dialytika, Devanagari nukta, CJK compatibility ideographs, text already in NFC in
                      many scripts, emoji with ZWJ, ...
  random strings      starters and combining marks drawn from the characters that take part in decomposition
                      (fixed seed)
  every decomposable  every code point with a canonical decomposition, as itself and fully decomposed (NFD), in
                      chunks, both run together and separated by spaces
The unicode_version must match the tables' (engine/core/unicode_nfc_data.inc, tools/gen_unicode_nfc.py).

Usage: python3 tools/make_nfc_fixtures.py [--out tests/fixtures/unicode/nfc.json]
"""
import argparse
import json
import os
import random
import unicodedata as ud

MAX_CP = 0x110000


def nfc(s):
    return ud.normalize('NFC', s)


def nfd(s):
    return ud.normalize('NFD', s)


HAND_PICKED = [
    ('e acute', 'e\u0301'),
    ('cafe NFD', 'cafe\u0301 re\u0301sume\u0301'),
    ('A ring acute NFD', 'A\u030a\u0301'),
    ('Vietnamese NFD', nfd('Tiếng Việt có dấu: người, được, những, Nguyễn, Hồ Chí Minh')),
    ('Vietnamese NFC', 'Tiếng Việt có dấu: người, được, những, Nguyễn, Hồ Chí Minh'),
    ('Vietnamese mixed', 'Vie\u0323\u0302t vs Vie\u0302\u0323t vs Vi\u1ec7t vs Vi\u1eb9\u0302t'),
    ('Hangul L+V', '\u1100\u1161'),
    ('Hangul L+V+T', '\u1100\u1161\u11a8'),
    ('Hangul LV+T', '\uac00\u11a8'),
    ('Hangul LVT+T', '\uac01\u11a8'),
    ('Hangul L+L+V', '\u1100\u1100\u1161'),
    ('Hangul L+V+V', '\u1100\u1161\u1161'),
    ('Hangul L+V+T+T', '\u1112\u1161\u11ab\u11ab'),
    ('Hangul L+T', '\u1100\u11a8'),
    ('Hangul V alone', '\u1161\u11a8'),
    ('Hangul TBase is not a T', '\uac00\u11a7'),
    ('Hangul old jamo', '\u1100\u1176\u1113\u1161\u1100\u1161\u11c3'),
    ('Hangul L+mark+V', '\u1100\u0301\u1161'),
    ('Hangul NFD sentence', nfd('한국어 텍스트입니다. 안녕하세요, 세계! 읽었습니다')),
    ('Hangul NFC sentence', '한국어 텍스트입니다. 안녕하세요, 세계!'),
    ('Hangul syllable + mark', '\uac00\u0301\uac01\u0323'),
    ('Angstrom sign', '\u212b'),
    ('Ohm sign', '\u2126'),
    ('Kelvin sign', '\u212a'),
    ('singletons in text', '10 \u212b, 5 \u2126, 300 \u212a; \u1fee \u037e \u0387 \u1ffd \u2000\u2001'),
    ('Devanagari exclusion U+0958', '\u0958'),
    ('Devanagari exclusions', '\u0958\u0959\u095a\u095b\u095c\u095d\u095e\u095f'),
    ('Devanagari nukta decomposed', '\u0915\u093c \u0928\u093c \u0930\u093c \u0933\u093c'),
    ('Devanagari nukta + virama', '\u0915\u093c\u094d\u0937 \u0915\u094d\u093c'),
    ('Devanagari NFC text', 'हिन्दी भाषा में लिखा गया पाठ। क़ ख़ ग़'),
    ('Bengali two-part vowels', '\u0995\u09c7\u09be \u0995\u09c7\u09d7 \u0995\u09cb'),
    ('Tamil two-part vowels', '\u0b95\u0bc6\u0bbe \u0b95\u0bc6\u0bd7 \u0b95\u0bc7\u0bbe'),
    ('Tibetan non-starter decompositions', '\u0f40\u0f73\u0f40\u0f75\u0f40\u0f81\u0f40\u0f71\u0f72'),
    ('Greek dialytika tonos U+0344', 'a\u0344 \u0391\u0344'),
    ('Greek tonos NFD', nfd('Ελληνικά: άέήίόύώ ΐΰ ϊϋ Ϊ Ϋ ἀἁἂ ᾳᾷ')),
    ('Greek NFC', 'Ελληνικά: άέήίόύώ ΐΰ ϊϋ Ϊ Ϋ ἀἁἂ ᾳᾷ'),
    ('Greek oxia vs tonos', '\u1f71\u1f73\u1f75\u1f77\u1f79\u1f7b\u1f7d \u03b9\u0308\u0301 \u03b9\u0301\u0308'),
    ('Greek ypogegrammeni order', '\u03b1\u0345\u0313\u0301 \u03b1\u0313\u0345\u0301 \u03b1\u0301\u0313\u0345'),
    ('marks canonical order a', 'a\u0323\u0302'),
    ('marks non-canonical order', 'a\u0302\u0323'),
    ('marks same class keep order', 'a\u0301\u0300 a\u0300\u0301 o\u0308\u0304 o\u0304\u0308'),
    ('blocked by same class', 'a\u0300\u0301'),
    ('blocked by starter', 'a\u0062\u0301 a\u200b\u0301'),
    ('blocked not by lower class', 'a\u0323\u0301 a\u0316\u0301 a\u031b\u0301'),
    ('ccc 0 mark between', 'e\u034f\u0301'),
    ('long mark run', 'o' + '\u0301\u0323\u0300\u0316\u0308\u0327\u0304\u0328\u031b\u0345' * 3),
    ('zalgo', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f'
              '\u031e\u0320\u034da\u036b\u0357\u0364\u0364\u0346\u0342\u0357\u0306l\u0315g\u0316o\u0336\u0323'),
    ('mark at start', '\u0301e\u0301'),
    ('only marks', '\u0301\u0323\u0302'),
    ('CJK compatibility ideographs', '\uf900\uf901\uf902\uf903\uf9ff\ufa0e\ufa10\ufa2d\ufa30\ufad9'),
    ('CJK compatibility supplement', '\U0002f800\U0002f801\U0002fa1d'),
    ('CJK compatibility in text', '中文\uf900文本\ufa0e 漢字'),
    ('musical symbols', '\U0001d15e\U0001d15f\U0001d160\U0001d1bb\U0001d1c0 \U0001d157\U0001d165'),
    ('Hebrew presentation forms', '\ufb1d\ufb1f\ufb2a\ufb2b\ufb2c\ufb2d\ufb4e \u05e9\u05bc\u05c1'),
    ('Hebrew points', 'בְּרֵאשִׁית בָּרָא אֱלֹהִים'),
    ('Arabic harakat', 'بِسْمِ ٱللَّٰهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ \u0627\u0653 \u0648\u0654 \u064a\u0654'),
    ('Arabic shadda order', '\u0628\u0651\u064e \u0628\u064e\u0651 \u0628\u0650\u0651'),
    ('Kaithi / Chakma', '\U00011099\U000110ba \U0001109b\U000110ba \U000110a5\U000110ba \U00011131\U00011127'),
    ('Balinese', '\u1b05\u1b35 \u1b3a\u1b35 \u1b3e\u1b35 \u1b42\u1b35'),
    ('Latin precomposed plus mark', '\u00e9\u0323 \u1ec7\u0300 \u00c5\u0301 \u00fc\u0304'),
    ('Latin u umlaut macron', 'u\u0308\u0304 U\u0304\u0308'),
    ('Latin-1 and ASCII', 'Ünïcödé façade naïve — “quotes” © ½ ÿ'),
    ('combining grapheme joiner', 'a\u034f\u0308'),
    ('emoji ZWJ', '👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈 👍🏽 ❤️ 🇯🇵'),
    ('emoji keycap', '1\ufe0f\u20e3 #\ufe0f\u20e3'),
    ('Russian', 'Съешь же ещё этих мягких французских булок, да выпей чаю. Й й Ё ё'),
    ('Russian NFD', nfd('Й й Ё ё ещё')),
    ('Cyrillic titlo', '\u0430\u0483 \u0418\u0306'),
    ('Chinese', '我能吞下玻璃而不伤身体。中文文本，标点符号！'),
    ('Japanese', 'いろはにほへと ちりぬるを ガギグ パピプ が\u3099 は\u309a'),
    ('Japanese NFD kana', nfd('がぎぐげご ぱぴぷぺぽ ヴ')),
    ('Thai', 'ภาษาไทย น้ำ ที่ กิ่ง'),
    ('Lao / Khmer / Myanmar', 'ພາສາລາວ ភាសាខ្មែរ မြန်မာ'),
    ('Georgian / Armenian', 'ქართული Հայերեն'),
    ('Ethiopic', 'ግዕዝ'),
    ('Sinhala', 'සිංහල \u0dd9\u0dca \u0dd9\u0dcf\u0dca \u0dd9\u0ddf'),
    ('Malayalam', 'മലയാളം \u0d46\u0d3e \u0d47\u0d3e \u0d46\u0d57'),
    ('Telugu / Kannada', 'తెలుగు ಕನ್ನಡ \u0c46\u0c56 \u0cbf\u0cd5 \u0cc6\u0cc2\u0cd5'),
    ('Oriya', 'ଓଡ଼ିଆ \u0b47\u0b56 \u0b47\u0b3e \u0b47\u0b57'),
    ('Supplementary plain', '\U0001f600\U00020000\U0010ffff\U000e0001'),
    ('noncharacters', '\ufdd0\ufffe\uffff\U0001fffe'),
    ('unassigned combining-range', '\u0378\u0379\u0380'),
    ('private use', '\ue000\U000f0000'),
    ('empty', ''),
    ('ascii', 'The quick brown fox jumps over the lazy dog. 0123456789 {}[]<>'),
    ('code', 'for (int i = 0; i < n; ++i) { s += "é"; }\n\ttab'),
]


def decomposable():
    out = []
    for c in range(MAX_CP):
        d = ud.decomposition(chr(c))
        if d and not d.startswith('<'):
            out.append(c)
    return out


def random_cases(rng, count):
    decomp = decomposable()
    starters, marks = set(), set()
    for c in decomp:
        parts = [int(x, 16) for x in ud.decomposition(chr(c)).split()]
        for p in parts + [c]:
            (marks if ud.combining(chr(p)) else starters).add(p)
    marks |= {c for c in range(MAX_CP) if ud.combining(chr(c)) and rng.random() < 0.15}
    starters |= set(range(0x1100, 0x1113)) | set(range(0x1161, 0x1176)) | set(range(0x11a7, 0x11c3))
    starters |= {0xac00 + rng.randrange(11172) for _ in range(40)}
    starters |= {ord(x) for x in 'aeiouAEIOU xyz'}
    starters, marks = sorted(starters), sorted(marks)
    cases = []
    for k in range(count):
        n = rng.randrange(1, 12)
        s = []
        for _ in range(n):
            s.append(rng.choice(marks) if rng.random() < 0.45 else rng.choice(starters))
        text = ''.join(map(chr, s))
        if k % 3 == 1:
            text = nfd(text)
        cases.append((f'random {k}', text))
    return cases


def decomposable_cases(chunk):
    decomp = decomposable()
    cases = []
    for i in range(0, len(decomp), chunk):
        cps = decomp[i:i + chunk]
        tag = f'U+{cps[0]:04X}..U+{cps[-1]:04X}'
        cases.append((f'decomposable {tag}', ''.join(chr(c) for c in cps)))
        cases.append((f'decomposable NFD {tag}', ''.join(nfd(chr(c)) for c in cps)))
        cases.append((f'decomposable NFD spaced {tag}', ' '.join(nfd(chr(c)) for c in cps)))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument('--out', default=os.path.join(root, 'tests', 'fixtures', 'unicode', 'nfc.json'))
    args = ap.parse_args()

    rng = random.Random(20240611)
    cases = HAND_PICKED + random_cases(rng, 400) + decomposable_cases(128)
    names = [name for name, _ in cases]
    assert len(set(names)) == len(names), 'duplicate case names'
    doc = {
        'unicode_version': ud.unidata_version,
        'cases': [{'name': name, 'input': text, 'nfc': nfc(text)} for name, text in cases],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
        f.write('\n')
    changed = sum(1 for c in doc['cases'] if c['input'] != c['nfc'])
    print(f'wrote {args.out}: {len(cases)} cases ({changed} changed by NFC), Unicode {ud.unidata_version}, '
          f'{os.path.getsize(args.out)} bytes')


if __name__ == '__main__':
    main()
