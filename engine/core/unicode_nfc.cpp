// engine/core/unicode_nfc.cpp: NFC normalization (UAX #15): canonical decomposition, canonical ordering,
// canonical composition, applied only to the parts of the text that the quick check cannot vouch for.
//
// Terms. ccc: canonical combining class (0: a starter). A code point is "plain" when its ccc is 0 and its
// NFC_Quick_Check is Yes. The tables (unicode_nfc_data.inc) list every code point that is not plain, with its
// ccc and quick-check value (Maybe: it can combine with a preceding character; No: it never survives NFC).
//
// Segments. A plain code point P is a safe boundary: its full decomposition begins with a starter that never
// combines with anything before it, so NFC(x + P + y) == NFC(x) + NFC(P + y) (tools/gen_unicode_nfc.py checks
// this for every code point of the tables' version). nfc() therefore scans the text with the quick check, copies
// what passes unchanged, and normalizes only a segment [last plain code point before the trouble, next plain code
// point after it), which for real text is a few code points.
#include "engine/core/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <vector>

namespace minfer {

namespace nfc_data {
#include "engine/core/unicode_nfc_data.inc"
}  // namespace nfc_data

namespace {

using namespace nfc_data;

static_assert(std::size(kNfcPropsFirst) == std::size(kNfcPropsLast));
static_assert(std::size(kNfcPropsFirst) == std::size(kNfcPropsValue));
static_assert(std::size(kDecompOffset) == std::size(kDecompKey) + 1);
static_assert(std::size(kComposeKey) == std::size(kComposeValue));

// Hangul syllables (UAX #15 / Unicode chapter 3.12): S = SBase + (L * VCount + V) * TCount + T.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kSCount = kLCount * kVCount * kTCount;

constexpr std::uint16_t kQcMaybe = 1, kQcNo = 2;

// props() of the BMP in two levels: kBmp.index[c >> 6] names a block of 64 values (block 0: all plain), built
// at compile time from the ranges, so the scan looks a BMP code point up with two loads.
constexpr std::size_t kBmpBlocks = 0x10000 / 64;
constexpr std::size_t count_bmp_blocks() {
  bool used[kBmpBlocks] = {};
  std::size_t count = 1;  // block 0
  for (std::size_t r = 0; r < std::size(kNfcPropsFirst) && kNfcPropsFirst[r] < 0x10000; ++r) {
    const char32_t last = std::min<char32_t>(kNfcPropsLast[r], 0xFFFF);
    for (char32_t c = kNfcPropsFirst[r]; c <= last; ++c) {
      if (!used[c >> 6]) ++count;
      used[c >> 6] = true;
    }
  }
  return count;
}
constexpr std::size_t kBmpUsedBlocks = count_bmp_blocks();
static_assert(kBmpUsedBlocks <= 256, "block numbers must fit the uint8_t index");
struct BmpTable {
  std::uint8_t index[kBmpBlocks];
  std::uint16_t values[kBmpUsedBlocks][64];
};
constexpr BmpTable make_bmp_table() {
  BmpTable t{};
  std::size_t next = 1;
  for (std::size_t r = 0; r < std::size(kNfcPropsFirst) && kNfcPropsFirst[r] < 0x10000; ++r) {
    const char32_t last = std::min<char32_t>(kNfcPropsLast[r], 0xFFFF);
    for (char32_t c = kNfcPropsFirst[r]; c <= last; ++c) {
      if (t.index[c >> 6] == 0) t.index[c >> 6] = static_cast<std::uint8_t>(next++);
      t.values[t.index[c >> 6]][c & 63] = kNfcPropsValue[r];
    }
  }
  return t;
}
constexpr BmpTable kBmp = make_bmp_table();

// ccc | qc << 8 of c; 0 for a plain code point.
std::uint16_t props_search(char32_t c) {
  const char32_t* end = kNfcPropsFirst + std::size(kNfcPropsFirst);
  const char32_t* it = std::upper_bound(kNfcPropsFirst, end, c);
  if (it == kNfcPropsFirst) return 0;
  const std::size_t r = static_cast<std::size_t>(it - kNfcPropsFirst) - 1;
  return c <= kNfcPropsLast[r] ? kNfcPropsValue[r] : 0;
}
inline std::uint16_t props(char32_t c) {
  if (c < 0x10000) return kBmp.values[kBmp.index[c >> 6]][c & 63];
  return props_search(c);
}

// Decodes the code point starting at s[i] and advances i past it. The input is valid UTF-8; a sequence cut
// short by the end of the text is clamped (never read past n) and gives some code point.
inline char32_t decode(const unsigned char* s, std::size_t n, std::size_t& i) {
  const unsigned b = s[i];
  if (b < 0x80) {
    ++i;
    return b;
  }
  const unsigned len = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  char32_t c = b & (0x7Fu >> len);
  const std::size_t end = std::min(n, i + len);
  for (++i; i < end; ++i) c = (c << 6) | (s[i] & 0x3Fu);
  return c;
}

}  // namespace

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    const char b[2] = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(b, 2);
  } else if (c < 0x10000) {
    const char b[3] = {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                       static_cast<char>(0x80 | (c & 0x3F))};
    out.append(b, 3);
  } else {
    const char b[4] = {static_cast<char>(0xF0 | ((c >> 18) & 0x07)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
                       static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(b, 4);
  }
}

namespace {

struct Unit {
  char32_t cp;
  std::uint8_t ccc;
  bool combines_back;  // NFC_QC Maybe: may be the second character of a composition
};

Unit make_unit(char32_t c) {
  const std::uint16_t p = props(c);
  return {c, static_cast<std::uint8_t>(p & 0xFF), (p >> 8) == kQcMaybe};
}

// Full canonical decomposition of c appended to buf: the tables' mappings applied recursively, Hangul syllables
// split algorithmically into L V [T].
void decompose(char32_t c, std::vector<Unit>& buf) {
  if (c - kSBase < kSCount) {
    const char32_t s = c - kSBase;
    buf.push_back(make_unit(kLBase + s / (kVCount * kTCount)));
    buf.push_back(make_unit(kVBase + (s % (kVCount * kTCount)) / kTCount));
    if (s % kTCount != 0) buf.push_back(make_unit(kTBase + s % kTCount));
    return;
  }
  const std::uint16_t p = props(c);
  // Only plain code points and those with quick check No have canonical decompositions (the generator checks
  // this), and U+00C0 is the first code point with one.
  if (c >= 0xC0 && (p == 0 || (p >> 8) == kQcNo)) {
    const char32_t* end = kDecompKey + std::size(kDecompKey);
    const char32_t* it = std::lower_bound(kDecompKey, end, c);
    if (it != end && *it == c) {
      const std::size_t k = static_cast<std::size_t>(it - kDecompKey);
      for (std::size_t j = kDecompOffset[k]; j < kDecompOffset[k + 1]; ++j) decompose(kDecompData[j], buf);
      return;
    }
  }
  buf.push_back({c, static_cast<std::uint8_t>(p & 0xFF), (p >> 8) == kQcMaybe});
}

// Canonical ordering: every maximal run of non-starters sorted stably by ccc.
void canonical_order(std::vector<Unit>& buf) {
  const auto by_ccc = [](const Unit& a, const Unit& b) { return a.ccc < b.ccc; };
  const std::size_t n = buf.size();
  std::size_t i = 0;
  while (i < n) {
    if (buf[i].ccc == 0) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < n && buf[j].ccc != 0) ++j;
    if (j - i > 32) {
      std::stable_sort(buf.begin() + static_cast<std::ptrdiff_t>(i), buf.begin() + static_cast<std::ptrdiff_t>(j),
                       by_ccc);
    } else {
      for (std::size_t k = i + 1; k < j; ++k) {  // insertion sort: stable, no allocation for the usual short runs
        const Unit u = buf[k];
        std::size_t m = k;
        for (; m > i && buf[m - 1].ccc > u.ccc; --m) buf[m] = buf[m - 1];
        buf[m] = u;
      }
    }
    i = j;
  }
}

// The primary composite of <a, b>, or 0 when there is none.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a - kLBase < kLCount && b - kVBase < kVCount) return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a - kSBase < kSCount && (a - kSBase) % kTCount == 0 && b - (kTBase + 1) < kTCount - 1) return a + (b - kTBase);
  const std::uint64_t key = (std::uint64_t{a} << 21) | b;
  const std::uint64_t* end = kComposeKey + std::size(kComposeKey);
  const std::uint64_t* it = std::lower_bound(kComposeKey, end, key);
  return it != end && *it == key ? kComposeValue[it - kComposeKey] : 0;
}

// Canonical composition of a canonically ordered decomposition, in place. Each character C that may combine
// backwards is tried against the last starter L when it is not blocked from L: nothing between them, or the last
// character between them (the largest ccc, by canonical order; all of them non-starters) has a ccc below C's.
void compose(std::vector<Unit>& buf) {
  constexpr std::size_t kNone = ~std::size_t{0};
  std::size_t starter = kNone, w = 0;
  for (std::size_t i = 0; i < buf.size(); ++i) {
    const Unit u = buf[i];
    if (starter != kNone && u.combines_back) {
      const bool adjacent = w == starter + 1;
      if (adjacent || (u.ccc != 0 && buf[w - 1].ccc < u.ccc)) {
        if (const char32_t c = compose_pair(buf[starter].cp, u.cp)) {
          buf[starter].cp = c;  // primary composites are starters (checked by the generator)
          continue;
        }
      }
    }
    if (u.ccc == 0) starter = w;
    buf[w++] = u;
  }
  buf.resize(w);
}

void normalize_segment(const unsigned char* s, std::size_t begin, std::size_t end, std::vector<Unit>& buf,
                       std::string& out) {
  buf.clear();
  for (std::size_t i = begin; i < end;) decompose(decode(s, end, i), buf);
  canonical_order(buf);
  compose(buf);
  for (const Unit& u : buf) utf8_append(out, u.cp);
}

// Advances pos over code points while the quick check answers Yes. On entry pos starts a code point and
// `boundary` (<= pos) is the start of the text or of a plain code point with only plain code points between it
// and pos. Returns false at the end of the text; true when the code point starting at `trouble` is not certainly
// NFC (quick check No or Maybe, or a mark out of canonical order), with pos just after it and `boundary` the start
// of the last plain code point before it (or of the text).
bool scan(const unsigned char* s, std::size_t n, std::size_t& pos, std::size_t& boundary, std::size_t& trouble) {
  unsigned last_ccc = 0;
  while (pos < n) {
    if (s[pos] < 0x80) {
      boundary = pos++;
      last_ccc = 0;
      continue;
    }
    const std::size_t start = pos;
    char32_t c;
    if (s[pos] < 0xE0 && pos + 1 < n) {  // the common 2- and 3-byte forms decoded inline; the rest by decode()
      c = ((s[pos] & 0x1Fu) << 6) | (s[pos + 1] & 0x3Fu);
      pos += 2;
    } else if (s[pos] < 0xF0 && pos + 2 < n) {
      c = ((s[pos] & 0x0Fu) << 12) | ((s[pos + 1] & 0x3Fu) << 6) | (s[pos + 2] & 0x3Fu);
      pos += 3;
    } else {
      c = decode(s, n, pos);
    }
    const std::uint16_t p = props(c);
    if (p == 0) {
      boundary = start;
      last_ccc = 0;
      continue;
    }
    const unsigned ccc = p & 0xFF;  // not plain with quick check Yes: a non-starter
    if ((p >> 8) == 0 && ccc >= last_ccc) {
      last_ccc = ccc;
      continue;
    }
    trouble = start;
    return true;
  }
  return false;
}

// Index of the first byte that starts a code point >= U+0300, or n. Every byte below 0xCC is ASCII, a UTF-8
// continuation byte (0x80-0xBF) or the lead byte of a 2-byte sequence below U+0300 (0xC2-0xCB); 0xCC 0x80 is
// U+0300.
std::size_t skip_below_0300(const unsigned char* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (s[i] >= 0xCC) break;
    ++i;
  }
  return i;
}

// The start of the code point before the one at i (> 0).
std::size_t previous_start(const unsigned char* s, std::size_t i) {
  do --i;
  while (i > 0 && (s[i] & 0xC0) == 0x80);
  return i;
}

}  // namespace

std::string nfc(std::string_view utf8) {
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  const std::size_t n = utf8.size();
  // Fast path. No code point below U+0300 is changed by NFC, alone or next to anything: each has ccc 0 (a
  // starter, so canonical ordering never moves it), has no canonical decomposition that NFC would not recompose
  // (the Latin-1 and Latin Extended letters with marks are their own NFC), and is never the second character of a
  // composition (the first combining mark, U+0300, starts the Combining Diacritical Marks block). A following
  // code point >= U+0300 may compose with it, but then the text has such a code point and takes the slow path.
  std::size_t pos = skip_below_0300(s, n);
  if (pos == n) return std::string(utf8);

  std::size_t boundary = pos == 0 ? 0 : previous_start(s, pos);  // a plain code point (< U+0300)
  std::size_t copied = 0, trouble = 0;
  std::string out;
  std::vector<Unit> buf;
  while (scan(s, n, pos, boundary, trouble)) {
    // The segment runs from `boundary` to the start of the next plain code point after the trouble.
    std::size_t end = pos;
    while (end < n) {
      std::size_t next = end;
      if (props(decode(s, n, next)) == 0) break;
      end = next;
    }
    if (copied == 0) out.reserve(n + n / 8 + 16);
    out.append(utf8.data() + copied, boundary - copied);
    normalize_segment(s, boundary, end, buf, out);
    copied = boundary = pos = end;
  }
  if (copied == 0) return std::string(utf8);  // nothing needed normalizing
  out.append(utf8.data() + copied, n - copied);
  return out;
}

bool is_nfc_quick(std::string_view utf8) {
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  const std::size_t n = utf8.size();
  std::size_t pos = skip_below_0300(s, n);
  std::size_t boundary = 0, trouble = 0;
  return !scan(s, n, pos, boundary, trouble);
}

const char* nfc_unicode_version() { return nfc_data::kUnicodeVersion; }

}  // namespace minfer
