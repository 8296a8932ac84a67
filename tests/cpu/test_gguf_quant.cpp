// tests/cpu/test_gguf_quant.cpp: the GGUF dequantizers (engine/core/gguf_quant.h).
// Parity: for every decoded type, minfer's output equals gguf.quants.dequantize (the `gguf` Python package)
// bit for bit on the fixtures in tests/fixtures/gguf_quant/ (tools/make_gguf_quant_fixtures.py: random
// blocks, a d = 0 block, an fp16-subnormal d, all-0xFF and 0x0F/0xF0 blocks; F16/BF16 with Inf, NaN and
// subnormals), whole and block by block from an unaligned copy. Hand-computed Q4_0 and Q8_0 blocks check
// the layouts independently of the package. Refusals: size mismatch, n not a multiple of the block size,
// negative n and unsupported types are BadInput naming the type.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/dtype.h"
#include "engine/core/error.h"
#include "engine/core/ggml_types.h"
#include "engine/core/gguf_quant.h"

namespace minfer {
// Test names and failure lines show the type's name, not its bytes.
void PrintTo(GgmlType t, std::ostream* os) { *os << ggml_type_name(static_cast<uint32_t>(t)); }
}  // namespace minfer

namespace fs = std::filesystem;
using minfer::BadInput;
using minfer::GgmlType;

namespace {

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string type_name(GgmlType t) { return minfer::ggml_type_name(static_cast<uint32_t>(t)); }

// Index of the first element whose bits differ from expected's, or -1; *count gets how many differ.
int64_t first_bit_mismatch(const std::vector<float>& got, const std::vector<float>& expected, int64_t* count) {
  int64_t first = -1;
  *count = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (minfer::f32_bits(got[i]) == minfer::f32_bits(expected[i])) continue;
    if (first < 0) first = static_cast<int64_t>(i);
    ++*count;
  }
  return first;
}

// The BadInput message of dequantize(type, ...) over src_bytes zero bytes and n elements ("" if none thrown).
std::string refusal(GgmlType type, size_t src_bytes, int64_t n, std::string* field) {
  std::vector<uint8_t> src(src_bytes, 0);
  std::vector<float> dst(n > 0 ? static_cast<size_t>(n) : 0);
  try {
    minfer::dequantize(type, src.data(), src_bytes, dst.data(), n);
  } catch (const BadInput& e) {
    *field = e.field();
    return e.what();
  }
  return "";
}

class GgufQuantFixture : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GgufQuantFixture, MatchesGgufPackageBitForBit) {
  const GgmlType type = GetParam();
  const std::string name = type_name(type);
  const fs::path dir = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "gguf_quant";
  if (!fs::exists(dir / (name + ".f32")) || !fs::exists(dir / (name + ".bin"))) {
    const std::string msg = "fixture " + (dir / name).string() +
                            ".{bin,f32} is missing: run `python3 tools/make_gguf_quant_fixtures.py` (needs "
                            "numpy + gguf), or set MINFER_ALLOW_MISSING_FIXTURES=1";
    const char* allow = std::getenv("MINFER_ALLOW_MISSING_FIXTURES");
    if (allow != nullptr && std::string(allow) == "1") GTEST_SKIP() << msg;
    FAIL() << msg;
  }
  const std::vector<uint8_t> raw = read_file(dir / (name + ".bin"));
  const std::vector<uint8_t> f32 = read_file(dir / (name + ".f32"));
  ASSERT_EQ(f32.size() % 4, 0u);
  const int64_t n = static_cast<int64_t>(f32.size() / 4);
  std::vector<float> expected(static_cast<size_t>(n));  // (n)
  for (size_t i = 0; i < expected.size(); ++i) {
    const uint8_t* p = f32.data() + 4 * i;
    expected[i] = minfer::bits_f32(static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                                   static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24);
  }
  const minfer::GgmlTypeInfo info = *minfer::ggml_type_info(static_cast<uint32_t>(type));
  ASSERT_GT(n, 0);
  ASSERT_EQ(n % info.block_elems, 0);
  const int64_t n_blocks = n / info.block_elems;
  ASSERT_EQ(static_cast<int64_t>(raw.size()), n_blocks * info.block_bytes);

  // Whole tensor at once.
  std::vector<float> got(static_cast<size_t>(n), -1.0f);  // (n)
  minfer::dequantize(type, raw.data(), raw.size(), got.data(), n);
  int64_t count = 0;
  int64_t bad = first_bit_mismatch(got, expected, &count);
  EXPECT_EQ(bad, -1) << name << ": " << count << " of " << n << " values differ; first at " << bad << " (block "
                     << (bad / info.block_elems) << "): got " << got[static_cast<size_t>(std::max<int64_t>(bad, 0))]
                     << ", gguf.quants " << expected[static_cast<size_t>(std::max<int64_t>(bad, 0))];

  // Block by block, from a copy one byte past an aligned address: no alignment assumed, no state kept.
  std::vector<uint8_t> shifted(raw.size() + 1);
  std::memcpy(shifted.data() + 1, raw.data(), raw.size());
  std::vector<float> by_block(static_cast<size_t>(n), -1.0f);  // (n)
  for (int64_t b = 0; b < n_blocks; ++b)
    minfer::dequantize(type, shifted.data() + 1 + b * info.block_bytes, static_cast<size_t>(info.block_bytes),
                       by_block.data() + b * info.block_elems, info.block_elems);
  bad = first_bit_mismatch(by_block, expected, &count);
  EXPECT_EQ(bad, -1) << name << " block by block, unaligned: " << count << " values differ; first at " << bad;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgufQuantFixture,
                         ::testing::Values(GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,
                                           GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& p) { return type_name(p.param); });

// Q4_0 by hand: d = 0.5 (fp16 0x3800); qs[j] = j | (15 - j) << 4, so element j = (j - 8) / 2 and element
// j + 16 = (15 - j - 8) / 2.
TEST(GgufQuant, Q4_0ByHand) {
  std::vector<uint8_t> block = {0x00, 0x38};
  for (int j = 0; j < 16; ++j) block.push_back(static_cast<uint8_t>(j | (15 - j) << 4));
  ASSERT_EQ(block.size(), 18u);
  std::vector<float> y(32);
  minfer::dequantize(GgmlType::Q4_0, block.data(), block.size(), y.data(), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[static_cast<size_t>(j)], 0.5f * static_cast<float>(j - 8)) << "element " << j;
    EXPECT_EQ(y[static_cast<size_t>(j + 16)], 0.5f * static_cast<float>(7 - j)) << "element " << j + 16;
  }
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[15], 3.5f);
  EXPECT_EQ(y[16], 3.5f);
  EXPECT_EQ(y[31], -4.0f);
}

// Q8_0 by hand: d = -0.25 (fp16 0xB400); qs = -128, -15 .. 14 (30 values), 127 as int8.
TEST(GgufQuant, Q8_0ByHand) {
  std::vector<int> q = {-128};
  for (int v = -15; v <= 14; ++v) q.push_back(v);
  q.push_back(127);
  ASSERT_EQ(q.size(), 32u);
  std::vector<uint8_t> block = {0x00, 0xB4};
  for (int v : q) block.push_back(static_cast<uint8_t>(static_cast<int8_t>(v)));
  std::vector<float> y(32);
  minfer::dequantize(GgmlType::Q8_0, block.data(), block.size(), y.data(), 32);
  for (size_t j = 0; j < 32; ++j) EXPECT_EQ(y[j], -0.25f * static_cast<float>(q[j])) << "element " << j;
  EXPECT_EQ(y[0], 32.0f);
  EXPECT_EQ(y[31], -31.75f);
}

// F32 is a little-endian copy, every bit kept (NaN payloads, -0).
TEST(GgufQuant, F32CopiesBits) {
  const std::vector<uint32_t> bits = {0x3f800000u, 0x80000000u, 0x7fc01234u, 0xff800000u, 0x00000001u, 0xc2f6e979u};
  std::vector<uint8_t> raw;
  for (uint32_t b : bits)
    for (int k = 0; k < 4; ++k) raw.push_back(static_cast<uint8_t>(b >> (8 * k)));
  std::vector<float> y(bits.size());
  minfer::dequantize(GgmlType::F32, raw.data(), raw.size(), y.data(), static_cast<int64_t>(bits.size()));
  for (size_t i = 0; i < bits.size(); ++i) EXPECT_EQ(minfer::f32_bits(y[i]), bits[i]) << "element " << i;
}

TEST(GgufQuant, CanDequantize) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                     GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                     GgmlType::Q6_K})
    EXPECT_TRUE(minfer::gguf_can_dequantize(t)) << type_name(t);
  for (GgmlType t : {GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::I8, GgmlType::I16, GgmlType::I32, GgmlType::I64,
                     GgmlType::F64, static_cast<GgmlType>(17)})
    EXPECT_FALSE(minfer::gguf_can_dequantize(t)) << type_name(t);
}

TEST(GgufQuant, RefusesUnsupportedTypeByName) {
  for (GgmlType t : {GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::I32, GgmlType::F64, static_cast<GgmlType>(17)}) {
    const minfer::GgmlTypeInfo info = minfer::ggml_type_info(static_cast<uint32_t>(t))
                                          .value_or(minfer::GgmlTypeInfo{t, "?", 1, 1});
    std::string field;
    const std::string msg = refusal(t, static_cast<size_t>(info.block_bytes), info.block_elems, &field);
    EXPECT_NE(msg.find(type_name(t)), std::string::npos) << msg;
    EXPECT_NE(msg.find("no dequantizer"), std::string::npos) << msg;
    EXPECT_EQ(field, type_name(t));
  }
  std::string field;
  EXPECT_NE(refusal(static_cast<GgmlType>(17), 1, 1, &field).find("type 17"), std::string::npos);
}

TEST(GgufQuant, RefusesSizeMismatchNamingTheType) {
  struct Case { GgmlType type; size_t bytes; int64_t n; const char* want; };
  const Case cases[] = {
      {GgmlType::Q4_K, 143, 256, "expected 144"},  {GgmlType::Q4_K, 145, 256, "expected 144"},
      {GgmlType::Q6_K, 210, 512, "expected 420"},  {GgmlType::Q4_0, 36, 32, "expected 18"},
      {GgmlType::Q8_0, 0, 32, "expected 34"},      {GgmlType::F16, 7, 4, "expected 8"},
      {GgmlType::BF16, 8, 3, "expected 6"},        {GgmlType::F32, 8, 1, "expected 4"},
      {GgmlType::Q4_1, 20, 0, "expected 0"},
  };
  for (const Case& c : cases) {
    std::string field;
    const std::string msg = refusal(c.type, c.bytes, c.n, &field);
    EXPECT_NE(msg.find(type_name(c.type)), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.want), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(c.bytes) + " source bytes"), std::string::npos) << msg;
    EXPECT_EQ(field, type_name(c.type));
  }
}

TEST(GgufQuant, RefusesCountNotAMultipleOfTheBlock) {
  struct Case { GgmlType type; int64_t n; const char* want; };
  const Case cases[] = {
      {GgmlType::Q4_0, 33, "block size 32"}, {GgmlType::Q8_0, 16, "block size 32"},
      {GgmlType::Q4_K, 32, "block size 256"}, {GgmlType::Q6_K, 257, "block size 256"},
      {GgmlType::Q2_K, 300, "block size 256"},
  };
  for (const Case& c : cases) {
    std::string field;
    const std::string msg = refusal(c.type, 1024, c.n, &field);
    EXPECT_NE(msg.find(type_name(c.type)), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a multiple"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.want), std::string::npos) << msg;
  }
  std::string field;
  const std::string neg = refusal(GgmlType::Q4_0, 0, -32, &field);
  EXPECT_NE(neg.find("negative"), std::string::npos) << neg;
  EXPECT_EQ(field, "Q4_0");
}

TEST(GgufQuant, EmptyIsANoOp) {
  float sentinel = 7.0f;
  minfer::dequantize(GgmlType::Q4_K, nullptr, 0, &sentinel, 0);
  EXPECT_EQ(sentinel, 7.0f);
}

}  // namespace
