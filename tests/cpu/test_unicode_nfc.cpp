// tests/cpu/test_unicode_nfc.cpp: minfer::nfc against Python's unicodedata.normalize('NFC', ...) on
// tests/fixtures/unicode/nfc.json (tools/make_nfc_fixtures.py): hand-picked cases, random mark soups, every
// code point with a canonical decomposition as itself and as NFD. Also idempotence, the fast path, the quick
// check, and each of the three steps (decomposition, ordering, composition) on its own.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/unicode_nfc.h"

namespace fs = std::filesystem;
using nlohmann::json;
using minfer::is_nfc_quick;
using minfer::nfc;

namespace {

struct Case {
  std::string name, input, expected;
};

struct Fixture {
  std::string unicode_version;
  std::vector<Case> cases;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    const fs::path path = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "unicode" / "nfc.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    const json j = json::parse(in);
    Fixture out;
    out.unicode_version = j.at("unicode_version").get<std::string>();
    for (const json& c : j.at("cases")) {
      out.cases.push_back({c.at("name").get<std::string>(), c.at("input").get<std::string>(),
                           c.at("nfc").get<std::string>()});
    }
    return out;
  }();
  return f;
}

// "U+0041 U+0301" for failure messages.
std::string code_points(std::string_view s) {
  std::string out;
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    unsigned c = len == 1 ? b : b & (0x7Fu >> len);
    for (std::size_t k = 1; k < len && i + k < s.size(); ++k) {
      c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
    }
    std::snprintf(buf, sizeof buf, "%sU+%04X", out.empty() ? "" : " ", c);
    out += buf;
    i += len;
  }
  return out;
}

std::string utf8(char32_t c) {
  std::string out;
  minfer::utf8_append(out, c);
  return out;
}

TEST(UnicodeNfc, FixtureVersionMatchesTables) {
  // A mismatch means tools/gen_unicode_nfc.py and tools/make_nfc_fixtures.py ran under different Pythons.
  EXPECT_EQ(fixture().unicode_version, minfer::nfc_unicode_version());
  EXPECT_GT(fixture().cases.size(), 500u);
}

TEST(UnicodeNfc, MatchesPythonOnEveryFixture) {
  int changed = 0;
  for (const Case& c : fixture().cases) {
    const std::string got = nfc(c.input);
    EXPECT_EQ(got, c.expected) << c.name << "\n  input " << code_points(c.input) << "\n  want  "
                               << code_points(c.expected) << "\n  got   " << code_points(got);
    changed += c.input != c.expected;
  }
  EXPECT_GT(changed, 300);  // the fixtures exercise the slow path, not only text that is already NFC
}

TEST(UnicodeNfc, Idempotent) {
  for (const Case& c : fixture().cases) {
    const std::string once = nfc(c.input);
    EXPECT_EQ(nfc(once), once) << c.name;
    EXPECT_EQ(nfc(c.expected), c.expected) << c.name;  // NFC text is left alone
  }
}

TEST(UnicodeNfc, QuickCheckIsSound) {
  // Yes from the quick check promises the text is NFC; it must also say Yes for most NFC text.
  int yes = 0;
  for (const Case& c : fixture().cases) {
    if (is_nfc_quick(c.input)) {
      ++yes;
      EXPECT_EQ(c.input, c.expected) << c.name << ": quick check said NFC";
    }
    if (c.input != c.expected) {
      EXPECT_FALSE(is_nfc_quick(c.input)) << c.name;
    }
  }
  EXPECT_GT(yes, 50);
  EXPECT_TRUE(is_nfc_quick("Съешь же ещё этих мягких французских булок. 中文文本"));
  EXPECT_TRUE(is_nfc_quick("हिन्दी भाषा بِسْمِ"));  // marks with quick check Yes, in canonical order
  EXPECT_FALSE(is_nfc_quick("e\u0301"));            // Maybe: U+0301 composes
  EXPECT_FALSE(is_nfc_quick("\u212b"));             // No: a singleton
  EXPECT_FALSE(is_nfc_quick("\u0915\u094d\u093c"));  // virama (9) before nukta (7): out of order
}

TEST(UnicodeNfc, ConcatenationAtPlainSeparators) {
  // '|' is plain and composes with nothing, so NFC of the joined inputs is the joined NFCs: one long text whose
  // trouble spots are far apart and near each other, exercising the copy-and-segment bookkeeping.
  std::string joined_in, joined_want;
  for (const Case& c : fixture().cases) {
    joined_in += c.input + "|";
    joined_want += c.expected + "|";
  }
  EXPECT_EQ(nfc(joined_in), joined_want);
  std::string padded_in, padded_want;
  for (const Case& c : fixture().cases) {
    padded_in += "Съешь же ещё|" + c.input + "|中文文本 ";
    padded_want += "Съешь же ещё|" + c.expected + "|中文文本 ";
  }
  EXPECT_EQ(nfc(padded_in), padded_want);
}

TEST(UnicodeNfc, FastPathBelowU0300ReturnsInput) {
  const std::string ascii = "The quick brown fox jumps over the lazy dog.\n\t{} 0123456789 ~";
  EXPECT_EQ(nfc(ascii), ascii);
  EXPECT_EQ(nfc(""), "");
  std::string below;  // every code point U+0001..U+02FF, in a row
  for (char32_t c = 1; c < 0x300; ++c) below += utf8(c);
  EXPECT_EQ(nfc(below), below);
  EXPECT_TRUE(is_nfc_quick(below));
}

TEST(UnicodeNfc, CompositionIsApplied) {
  // Each of these is unchanged by decomposition and ordering alone: they pass only if composition runs.
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");  // Hangul L+V+T
  EXPECT_EQ(nfc("\uac00\u11a8"), "\uac01");        // Hangul LV+T
  EXPECT_EQ(nfc("\u0b47\u0b3e"), "\u0b4b");        // two starters (Oriya)
  EXPECT_EQ(nfc("u\u0308\u0304"), "\u01d6");       // composes twice
  EXPECT_LT(nfc("e\u0301").size(), std::string("e\u0301").size());
}

TEST(UnicodeNfc, DecompositionAndOrderingAreApplied) {
  EXPECT_EQ(nfc("\u212b"), "\u00c5");                // singleton ANGSTROM SIGN -> A with ring
  EXPECT_EQ(nfc("\u2126"), "\u03a9");                // OHM SIGN -> GREEK CAPITAL OMEGA
  EXPECT_EQ(nfc("\u0958"), "\u0915\u093c");          // composition exclusion stays decomposed
  EXPECT_EQ(nfc("\uf900"), "\u8c48");                // CJK compatibility ideograph
  EXPECT_EQ(nfc("a\u0302\u0323"), "\u1ead");         // reordered to a + dot below + circumflex, then composed
  EXPECT_EQ(nfc("a\u0323\u0302"), "\u1ead");
  EXPECT_EQ(nfc("\u0915\u094d\u093c"), "\u0915\u093c\u094d");  // nukta (7) before virama (9)
  EXPECT_EQ(nfc("a\u0300\u0301"), "\u00e0\u0301");   // U+0301 blocked by U+0300 (same class)
  EXPECT_EQ(nfc("\u0344"), "\u0308\u0301");          // non-starter decomposition
}

TEST(UnicodeNfc, TruncatedInputStaysInBounds) {
  // Invalid input is the caller's error; the result is unspecified but nothing past the end is read.
  for (const std::string_view s : {std::string_view("\xCC", 1), std::string_view("a\xE4\xB8", 3),
                                   std::string_view("\xF0\x9F\x98", 3), std::string_view("e\xCC", 2)}) {
    (void)nfc(s);
    (void)is_nfc_quick(s);
  }
  SUCCEED();
}

}  // namespace
