// tests/cpu/test_gguf.cpp: the GGUF reader and writer (engine/core/gguf.h).
// Round trips of every metadata type (nested arrays, empty strings and arrays), tensors of several
// ggml types at alignments 32 and 64, v2 and v3 headers, the typed getters; then every malformed-file
// case of DESIGN.md section 8 / ANCHORS.md "Malformed model files" (each must be a BadInput naming
// the file and the field, exit code 2, never a crash), every truncation of a valid file, and a
// deterministic mutation sweep. Optional: the real SmolLM2 GGUF when the model cache holds it, and
// the fuzz seeds in tests/fuzz/corpus (MINFER_REGEN_FUZZ_CORPUS=1 rewrites them).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/dtype.h"
#include "engine/core/error.h"
#include "engine/core/gguf.h"

namespace fs = std::filesystem;
using minfer::BadInput;
using minfer::GgmlType;
using minfer::GgufFile;
using minfer::GgufType;
using minfer::GgufWriter;
using V = minfer::GgufWriter::Value;

namespace {

constexpr uint32_t kF32 = static_cast<uint32_t>(GgmlType::F32);
constexpr uint32_t kQ8_0 = static_cast<uint32_t>(GgmlType::Q8_0);
constexpr uint32_t kQ4_K = static_cast<uint32_t>(GgmlType::Q4_K);
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// A fresh directory per test, removed afterwards.
class GgufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minfer_gguf_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Removes the old file first: truncating one in place makes ext4 flush it on close (slow in loops).
void write_bytes(const std::string& path, const std::string& bytes) {
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Builds GGUF bytes field by field, for files the writer refuses to make.
struct Raw {
  std::string b;
  Raw& u8(uint8_t v) { return le(v, 1); }
  Raw& u32(uint32_t v) { return le(v, 4); }
  Raw& u64(uint64_t v) { return le(v, 8); }
  Raw& le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) b.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
    return *this;
  }
  Raw& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b += "GGUF";
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  Raw& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  Raw& tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(size_t align) {
    b.append((align - b.size() % align) % align, '\0');
    return *this;
  }
  Raw& data(size_t n) {
    for (size_t k = 0; k < n; ++k) b.push_back(static_cast<char>(k * 7 + 1));
    return *this;
  }
};

// Opening `path` must throw BadInput whose file is `path`, whose field contains `field`, whose message
// names both (and contains `detail_part`), with exit code 2.
void expect_bad(const std::string& path, const std::string& field, const std::string& detail_part = "") {
  try {
    GgufFile f(path);
    ADD_FAILURE() << "no error for " << path << " (expected field " << field << ")";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_NE(e.field().find(field), std::string::npos) << "field '" << e.field() << "' lacks '" << field << "'";
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(field), std::string::npos) << what;
    if (!detail_part.empty()) {
      EXPECT_NE(what.find(detail_part), std::string::npos) << what;
    }
    EXPECT_EQ(e.exit_code(), 2);
  }
}

void expect_bad_bytes(const std::string& path, const std::string& bytes, const std::string& field,
                      const std::string& detail_part = "") {
  write_bytes(path, bytes);
  expect_bad(path, field, detail_part);
}

// A getter call must throw BadInput naming the file, `field` and `detail_part`.
template <typename F>
void expect_getter_bad(const GgufFile& f, F&& call, const std::string& field, const std::string& detail_part) {
  try {
    call();
    ADD_FAILURE() << "no error (expected field " << field << ")";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), f.path());
    EXPECT_EQ(e.field(), field);
    EXPECT_NE(std::string(e.what()).find(detail_part), std::string::npos) << e.what();
  }
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = static_cast<uint8_t>(seed + k * 13);
  return v;
}

// A small valid file with metadata of several kinds and two tensors (the last one non-empty).
void write_small_valid(const std::string& path, uint32_t alignment = 64) {
  GgufWriter w;
  w.set_alignment(alignment);
  w.add("general.architecture", V::str("llama"));
  w.add("llama.block_count", V::u32(2));
  w.add("llama.rope.freq_base", V::f32(10000.f));
  w.add("tokenizer.ggml.tokens", V::str_array({"a", "", "bc"}));
  w.add("tokenizer.ggml.scores", V::f32_array({0.5f, -1.f, 2.f}));
  w.add("nested", V::array(GgufType::ARRAY, {V::i32_array({1, 2}), V::array(GgufType::BOOL, {V::boolean(true)})}));
  w.add("flag", V::boolean(false));
  w.add_tensor_f32("x", {3}, {1.f, 2.f, 3.f});
  w.add_tensor("y", kQ8_0, {32, 2}, pattern(68, 5));
  w.write(path);
}

// ---------------------------------------------------------------- round trips

TEST_F(GgufTest, MetadataRoundTripEveryType) {
  GgufWriter w;
  w.add("u8", V::u8(255));
  w.add("i8", V::i8(-128));
  w.add("u16", V::u16(65535));
  w.add("i16", V::i16(-32768));
  w.add("u32", V::u32(4294967295u));
  w.add("i32", V::i32(std::numeric_limits<int32_t>::min()));
  w.add("f32", V::f32(-1.5f));
  w.add("bool_t", V::boolean(true));
  w.add("bool_f", V::boolean(false));
  w.add("str", V::str("h\xc3\xa9llo"));
  w.add("str_empty", V::str(""));
  w.add("u64", V::u64(kU64Max));
  w.add("i64", V::i64(std::numeric_limits<int64_t>::min()));
  w.add("f64", V::f64(3.141592653589793));
  w.add("arr_u8", V::array(GgufType::UINT8, {V::u8(1), V::u8(200)}));
  w.add("arr_i16", V::array(GgufType::INT16, {V::i16(-2), V::i16(300)}));
  w.add("arr_u64", V::array(GgufType::UINT64, {V::u64(kU64Max), V::u64(0)}));
  w.add("arr_f64", V::array(GgufType::FLOAT64, {V::f64(0.25), V::f64(-1e300)}));
  w.add("arr_bool", V::array(GgufType::BOOL, {V::boolean(true), V::boolean(false)}));
  w.add("arr_str", V::str_array({"", "x", "yz"}));
  w.add("arr_empty", V::array(GgufType::STRING, {}));
  const std::string p = path("meta.gguf");
  w.write(p);
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  GgufFile f(p);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_TRUE(f.names().empty());
  ASSERT_EQ(f.metadata().size(), 21u);
  EXPECT_EQ(f.metadata()[0].key, "u8");  // file order
  EXPECT_EQ(f.metadata()[20].key, "arr_empty");
  EXPECT_EQ(f.value("u8").type, GgufType::UINT8);
  EXPECT_EQ(f.value("u8").u, 255u);
  EXPECT_EQ(f.value("i8").i, -128);
  EXPECT_EQ(f.value("u16").u, 65535u);
  EXPECT_EQ(f.value("i16").i, -32768);
  EXPECT_EQ(f.get_u32("u32"), 4294967295u);
  EXPECT_EQ(f.get_i32("i32"), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(f.get_f32("f32"), -1.5f);
  EXPECT_TRUE(f.get_bool("bool_t"));
  EXPECT_FALSE(f.get_bool("bool_f"));
  EXPECT_EQ(f.get_string("str"), "h\xc3\xa9llo");
  EXPECT_EQ(f.get_string("str_empty"), "");
  EXPECT_EQ(f.get_u64("u64"), kU64Max);
  EXPECT_EQ(f.get_i64("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_f64("f64"), 3.141592653589793);
  for (const auto& kv : f.metadata()) EXPECT_TRUE(f.has(kv.key)) << kv.key;
  EXPECT_FALSE(f.has("nope"));
  EXPECT_EQ(f.find("nope"), nullptr);

  const auto& a8 = f.value("arr_u8");
  EXPECT_EQ(a8.type_str(), "ARRAY[UINT8]");
  ASSERT_EQ(a8.count, 2u);
  EXPECT_EQ(a8.element(1).u, 200u);
  EXPECT_EQ(f.value("arr_i16").element(0).i, -2);
  EXPECT_EQ(f.value("arr_i16").element(1).i, 300);
  EXPECT_EQ(f.value("arr_u64").element(0).u, kU64Max);
  EXPECT_EQ(f.value("arr_f64").element(1).f, -1e300);
  EXPECT_EQ(f.value("arr_bool").element(0).u, 1u);
  EXPECT_EQ(f.value("arr_bool").element(1).type, GgufType::BOOL);
  EXPECT_EQ(f.get_string_array("arr_str"), (std::vector<std::string>{"", "x", "yz"}));
  EXPECT_EQ(f.value("arr_str").element(2).str, "yz");
  EXPECT_TRUE(f.get_string_array("arr_empty").empty());
  EXPECT_EQ(f.value("arr_empty").type_str(), "ARRAY[STRING]");
  EXPECT_THROW(f.value("arr_u8").element(2), std::out_of_range);
  expect_getter_bad(f, [&] { f.get_f32_array("arr_f64"); }, "key 'arr_f64'", "element 1: FLOAT64 value -1e+300");
}

TEST_F(GgufTest, NestedArraysRoundTrip) {
  GgufWriter w;
  // [[1, 2], [], [3]] of INT32, then [[["a", ""]], []] (depth 3), then an empty array of arrays
  w.add("n2", V::array(GgufType::ARRAY, {V::i32_array({1, 2}), V::i32_array({}), V::i32_array({3})}));
  w.add("n3", V::array(GgufType::ARRAY, {V::array(GgufType::ARRAY, {V::str_array({"a", ""})}),
                                         V::array(GgufType::ARRAY, {})}));
  w.add("n_empty", V::array(GgufType::ARRAY, {}));
  const std::string p = path("nested.gguf");
  w.write(p);
  GgufFile f(p);
  const auto& n2 = f.value("n2");
  EXPECT_EQ(n2.type_str(), "ARRAY[ARRAY[INT32]]");
  ASSERT_EQ(n2.arrays.size(), 3u);
  EXPECT_EQ(n2.arrays[0].count, 2u);
  EXPECT_EQ(n2.arrays[0].element(1).i, 2);
  EXPECT_EQ(n2.arrays[1].count, 0u);
  EXPECT_EQ(n2.element(2).element(0).i, 3);
  const auto& n3 = f.value("n3");
  EXPECT_EQ(n3.type_str(), "ARRAY[ARRAY[ARRAY[STRING]]]");
  ASSERT_EQ(n3.count, 2u);
  EXPECT_EQ(n3.arrays[0].arrays[0].strings, (std::vector<std::string_view>{"a", ""}));
  EXPECT_EQ(n3.arrays[1].count, 0u);
  EXPECT_EQ(f.value("n_empty").count, 0u);
  EXPECT_EQ(f.value("n_empty").elem_type, GgufType::ARRAY);
  EXPECT_EQ(n2.to_string(), "[[1, 2], [], [3]]");
}

TEST_F(GgufTest, GettersWidenAndNameKeyAndTypeWhenWrong) {
  GgufWriter w;
  w.add("u8", V::u8(7));
  w.add("i32_pos", V::i32(12));
  w.add("i32_neg", V::i32(-1));
  w.add("u64_small", V::u64(40));
  w.add("u64_big", V::u64(1ull << 33));
  w.add("f64", V::f64(0.5));
  w.add("f64_huge", V::f64(1e300));
  w.add("f64s", V::array(GgufType::FLOAT64, {V::f64(0.25), V::f64(-2.0)}));
  w.add("s", V::str("text"));
  w.add("tok_types", V::array(GgufType::UINT8, {V::u8(1), V::u8(3)}));
  w.add("big_ints", V::array(GgufType::INT64, {V::i64(1), V::i64(1ll << 40)}));
  w.add("strs", V::str_array({"a"}));
  const std::string p = path("g.gguf");
  w.write(p);
  GgufFile f(p);
  EXPECT_EQ(f.get_u32("u8"), 7u);
  EXPECT_EQ(f.get_u32("i32_pos"), 12u);
  EXPECT_EQ(f.get_u64("u64_small"), 40u);
  EXPECT_EQ(f.get_u32("u64_small"), 40u);
  EXPECT_EQ(f.get_i32("u8"), 7);
  EXPECT_EQ(f.get_i64("i32_neg"), -1);
  EXPECT_EQ(f.get_u64("u64_big"), 1ull << 33);
  EXPECT_EQ(f.get_f32("f64"), 0.5f);
  EXPECT_EQ(f.get_f64("f64"), 0.5);
  EXPECT_EQ(f.get_i32_array("tok_types"), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(f.get_f32_array("f64s"), (std::vector<float>{0.25f, -2.f}));

  expect_getter_bad(f, [&] { f.get_u32("i32_neg"); }, "key 'i32_neg'", "does not fit UINT32");
  expect_getter_bad(f, [&] { f.get_u64("i32_neg"); }, "key 'i32_neg'", "does not fit UINT64");
  expect_getter_bad(f, [&] { f.get_u32("u64_big"); }, "key 'u64_big'", "8589934592 does not fit UINT32");
  expect_getter_bad(f, [&] { f.get_u32("s"); }, "key 's'", "is STRING, expected an integer");
  expect_getter_bad(f, [&] { f.get_u32("f64"); }, "key 'f64'", "UINT32");
  expect_getter_bad(f, [&] { f.get_f32("u8"); }, "key 'u8'", "is UINT8, expected FLOAT32");
  expect_getter_bad(f, [&] { f.get_f32("f64_huge"); }, "key 'f64_huge'", "does not fit FLOAT32");
  expect_getter_bad(f, [&] { f.get_bool("u8"); }, "key 'u8'", "expected BOOL");
  expect_getter_bad(f, [&] { f.get_string("u8"); }, "key 'u8'", "is UINT8, expected STRING");
  expect_getter_bad(f, [&] { f.get_string_array("s"); }, "key 's'", "expected ARRAY[STRING]");
  expect_getter_bad(f, [&] { f.get_string_array("tok_types"); }, "key 'tok_types'", "is ARRAY[UINT8]");
  expect_getter_bad(f, [&] { f.get_i32_array("strs"); }, "key 'strs'", "expected ARRAY[INT32]");
  expect_getter_bad(f, [&] { f.get_i32_array("big_ints"); }, "key 'big_ints'", "element 1");
  expect_getter_bad(f, [&] { f.get_f32_array("tok_types"); }, "key 'tok_types'", "expected ARRAY[FLOAT32]");
  expect_getter_bad(f, [&] { f.get_u32("absent.key"); }, "key 'absent.key'", "missing");
  expect_getter_bad(f, [&] { f.info("absent"); }, "tensor 'absent'", "no such tensor");
  expect_getter_bad(f, [&] { f.data("absent"); }, "tensor 'absent'", "no such tensor");
}

TEST_F(GgufTest, TensorsRoundTripAtAlignments32And64) {
  for (uint32_t align : {0u, 32u, 64u}) {  // 0: no general.alignment key, the default 32
    SCOPED_TRACE("alignment " + std::to_string(align));
    const uint64_t want_align = align == 0 ? 32 : align;
    const std::vector<float> a = {1.f, -2.f, 3.5f, 0.f, 1e-3f, 7.f};
    const std::vector<float> h = {0.1f, -65504.f, 3.f};
    const auto q8 = pattern(2 * 3 * 34, 1), q4k = pattern(144, 9), i8 = pattern(5, 3), bf = pattern(2 * 7, 4);
    GgufWriter w;
    if (align != 0) w.set_alignment(align);
    w.add("general.architecture", V::str("llama"));
    w.add_tensor_f32("blk.0.a", {3, 2}, a);               // 2 rows of 3
    w.add_tensor("odd.i8", static_cast<uint32_t>(GgmlType::I8), {5}, i8);  // 5 bytes: the next needs padding
    w.add_tensor_f16("h", {3}, h);
    w.add_tensor("q8", kQ8_0, {64, 3}, q8);                 // 3 rows of 2 blocks
    w.add_tensor("q4k", kQ4_K, {256}, q4k);
    w.add_tensor("bf", static_cast<uint32_t>(GgmlType::BF16), {7, 1, 1, 1}, bf);
    w.add_tensor_f32("empty", {0, 4}, {});
    const std::string p = path("t.gguf");
    w.write(p);

    GgufFile f(p);
    EXPECT_EQ(f.alignment(), want_align);
    EXPECT_EQ(f.has("general.alignment"), align != 0);
    EXPECT_EQ(f.data_offset() % want_align, 0u);
    EXPECT_EQ(f.names(), (std::vector<std::string>{"blk.0.a", "odd.i8", "h", "q8", "q4k", "bf", "empty"}));
    for (const auto& t : f.tensors()) {
      EXPECT_EQ(t.offset % want_align, 0u) << t.name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data(t.name)) % want_align, 0u) << t.name;
      EXPECT_LE(f.data_offset() + t.offset + t.nbytes, f.file_size());
      EXPECT_TRUE(f.has_tensor(t.name));
    }
    const auto& ia = f.info("blk.0.a");
    EXPECT_EQ(ia.ne, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(ia.shape(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(ia.type, kF32);
    EXPECT_EQ(ia.ggml_type(), GgmlType::F32);
    EXPECT_EQ(ia.numel, 6);
    EXPECT_EQ(ia.nbytes, 24u);
    EXPECT_EQ(ia.offset, 0u);
    std::vector<float> ra(6);
    std::memcpy(ra.data(), f.data("blk.0.a"), 24);
    EXPECT_EQ(ra, a);
    EXPECT_EQ(f.info("odd.i8").nbytes, 5u);
    EXPECT_EQ(std::vector<uint8_t>(f.data("odd.i8"), f.data("odd.i8") + 5), i8);
    EXPECT_EQ(f.info("odd.i8").offset, want_align);  // 24 bytes padded up
    EXPECT_EQ(f.info("h").offset, 2 * want_align);   // then 5 bytes padded up
    for (size_t k = 0; k < h.size(); ++k) {
      uint16_t bits;
      std::memcpy(&bits, f.data("h") + 2 * k, 2);
      EXPECT_EQ(minfer::f16_bits_to_f32(bits), minfer::round_to(minfer::DType::F16, h[k]));
    }
    const auto& iq = f.info("q8");
    EXPECT_EQ(iq.shape(), (std::vector<int64_t>{3, 64}));
    EXPECT_EQ(iq.nbytes, q8.size());
    EXPECT_EQ(std::vector<uint8_t>(f.data("q8"), f.data("q8") + iq.nbytes), q8);
    EXPECT_EQ(f.info("q4k").nbytes, 144u);
    EXPECT_EQ(std::vector<uint8_t>(f.data("q4k"), f.data("q4k") + 144), q4k);
    EXPECT_EQ(f.info("bf").shape(), (std::vector<int64_t>{1, 1, 1, 7}));
    EXPECT_EQ(std::vector<uint8_t>(f.data("bf"), f.data("bf") + 14), bf);
    EXPECT_EQ(f.info("empty").numel, 0);
    EXPECT_EQ(f.info("empty").nbytes, 0u);
  }
}

TEST_F(GgufTest, Versions2And3) {
  for (uint32_t version : {2u, 3u}) {
    GgufWriter w(version);
    w.add("k", V::u32(1));
    w.add_tensor_f32("w", {2}, {1.f, 2.f});
    std::string name = "v";  // built in steps: GCC 12's -Wrestrict misfires on "v" + to_string(...)
    name += std::to_string(version);
    name += ".gguf";
    const std::string p = path(name);
    w.write(p);
    GgufFile f(p);
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.get_u32("k"), 1u);
    EXPECT_EQ(f.info("w").nbytes, 8u);
  }
  // the two layouts are identical but for the version field
  std::string v2 = read_bytes(path("v2.gguf")), v3 = read_bytes(path("v3.gguf"));
  ASSERT_EQ(v2.size(), v3.size());
  v2[4] = 3;
  EXPECT_EQ(v2, v3);
}

TEST_F(GgufTest, HeaderOnlyFiles) {
  write_bytes(path("h.gguf"), Raw().header(0, 0).b);  // 24 bytes, no padding, no data
  GgufFile f(path("h.gguf"));
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.tensors().empty());
  write_bytes(path("h2.gguf"), Raw().header(0, 1, 2).kv_u32("general.alignment", 4096).b);
  GgufFile f2(path("h2.gguf"));
  EXPECT_EQ(f2.alignment(), 4096u);
  EXPECT_EQ(f2.version(), 2u);
}

TEST_F(GgufTest, DescribeListsVersionCountsKeysAndTensors) {
  write_small_valid(path("d.gguf"));
  GgufFile f(path("d.gguf"));
  const std::string d = f.describe();
  EXPECT_NE(d.find("GGUF v3"), std::string::npos) << d;
  EXPECT_NE(d.find("metadata: 8 keys"), std::string::npos) << d;  // 7 added + general.alignment
  EXPECT_NE(d.find("tensors: 2"), std::string::npos) << d;
  EXPECT_NE(d.find("general.architecture: STRING = \"llama\""), std::string::npos) << d;
  EXPECT_NE(d.find("tokenizer.ggml.tokens: ARRAY[STRING] = [\"a\", \"\", \"bc\"]"), std::string::npos) << d;
  EXPECT_NE(d.find("y: Q8_0 ne [32, 2]"), std::string::npos) << d;
}

TEST_F(GgufTest, LargeTokenizerArrays) {
  constexpr size_t kN = 50000;
  std::vector<std::string> tokens(kN);
  std::vector<int32_t> types(kN);
  std::vector<float> scores(kN);
  for (size_t k = 0; k < kN; ++k) {
    tokens[k] = "tok" + std::to_string(k);
    types[k] = static_cast<int32_t>(k % 6);
    scores[k] = -0.5f * static_cast<float>(k);
  }
  GgufWriter w;
  w.add("tokenizer.ggml.tokens", V::str_array(tokens));
  w.add("tokenizer.ggml.token_type", V::i32_array(types));
  w.add("tokenizer.ggml.scores", V::f32_array(scores));
  w.write(path("tok.gguf"));
  GgufFile f(path("tok.gguf"));
  const auto& view = f.get_string_array_view("tokenizer.ggml.tokens");
  ASSERT_EQ(view.size(), kN);
  EXPECT_EQ(view[12345], "tok12345");
  EXPECT_EQ(&view, &f.get_string_array_view("tokenizer.ggml.tokens"));  // no copy
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), tokens);
  EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type"), types);
  EXPECT_EQ(f.get_f32_array("tokenizer.ggml.scores"), scores);
}

TEST_F(GgufTest, WriterRefusesBadContent) {
  const std::string p = path("bad.gguf");
  auto refuses = [&](const GgufWriter& w, const std::string& field, const std::string& detail) {
    try {
      w.write(p);
      ADD_FAILURE() << "writer accepted (expected " << field << ")";
    } catch (const BadInput& e) {
      EXPECT_EQ(e.file(), p);
      EXPECT_EQ(e.field(), field);
      EXPECT_NE(std::string(e.what()).find(detail), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_FALSE(fs::exists(p + ".tmp"));
  };
  {
    GgufWriter w;
    w.add("k", V::u8(1));
    w.add("k", V::u8(2));
    refuses(w, "key 'k'", "more than once");
  }
  {
    GgufWriter w;
    w.add("", V::u8(1));
    refuses(w, "metadata key #0", "length 0");
  }
  {
    GgufWriter w;
    w.add_tensor_f32("t", {1}, {1.f});
    w.add_tensor_f32("t", {1}, {1.f});
    refuses(w, "tensor 't'", "more than once");
  }
  {
    GgufWriter w;
    w.add_tensor("t", kF32, {3}, pattern(8, 0));
    refuses(w, "tensor 't'", "needs 12");
  }
  for (uint32_t a : {0u, 3u, 48u}) {
    GgufWriter w;
    w.set_alignment(a);
    refuses(w, "key 'general.alignment'", "power of two");
  }
  {
    GgufWriter w;
    w.add_tensor("t", kF32, {}, {});
    refuses(w, "tensor 't'", "n_dims 0");
  }
  {
    GgufWriter w;
    w.add_tensor("t", kF32, {1, 1, 1, 1, 1}, pattern(4, 0));
    refuses(w, "tensor 't'", "n_dims 5");
  }
  {
    GgufWriter w;
    w.add_tensor("t", 17, {1}, pattern(4, 0));
    refuses(w, "tensor 't'", "unknown ggml type 17");
  }
  {
    GgufWriter w;
    w.add_tensor("t", kQ8_0, {16}, pattern(34, 0));
    refuses(w, "tensor 't'", "not a multiple");
  }
  {
    GgufWriter w;
    w.add_tensor("t", kF32, {-1}, {});
    refuses(w, "tensor 't'", "negative");
  }
  {
    GgufWriter w;
    w.add_tensor_f32("", {1}, {1.f});
    refuses(w, "tensor #0", "length 0");
  }
  refuses(GgufWriter(1), "version", "not 1");
  EXPECT_THROW(V::array(GgufType::UINT8, {V::u8(1), V::i8(1)}), std::invalid_argument);
  GgufWriter w;
  EXPECT_THROW(w.add("general.alignment", V::u64(64)), std::invalid_argument);
  w.add("general.alignment", V::u32(128));  // the same as set_alignment(128)
  w.add_tensor_f32("t", {1}, {1.f});
  w.write(p);
  EXPECT_EQ(GgufFile(p).alignment(), 128u);
}

// ---------------------------------------------------------------- malformed files

TEST_F(GgufTest, MissingFileAndDirectory) {
  expect_bad(path("nope.gguf"), "file", "cannot open");
  expect_bad(dir_.string(), "file");
}

TEST_F(GgufTest, TruncatedAtEveryPrefix) {
  write_small_valid(path("ok.gguf"));
  const std::string good = read_bytes(path("ok.gguf"));
  ASSERT_GT(good.size(), 200u);
  { GgufFile f(path("ok.gguf")); }  // the whole file is valid
  const std::string p = path("t.gguf");
  for (size_t len = 0; len < good.size(); ++len) {
    write_bytes(p, good.substr(0, len));
    try {
      GgufFile f(p);
      ADD_FAILURE() << "prefix of " << len << " of " << good.size() << " bytes accepted";
    } catch (const BadInput& e) {
      EXPECT_EQ(e.file(), p);
      EXPECT_FALSE(e.field().empty());
      EXPECT_NE(std::string(e.what()).find(p + ": " + e.field() + ": "), std::string::npos) << e.what();
    }
  }
  write_bytes(p, good.substr(0, 2));
  expect_bad(p, "magic", "fewer than the 4-byte magic");
  write_bytes(p, good.substr(0, 6));
  expect_bad(p, "version", "needs 4 bytes at offset 4");
  write_bytes(p, good.substr(0, 20));
  expect_bad(p, "kv_count", "needs 8 bytes at offset 16");
  write_bytes(p, good.substr(0, good.size() - 1));
  expect_bad(p, "tensor 'y'", "runs past the end of the file");
}

TEST_F(GgufTest, BadMagic) {
  write_small_valid(path("ok.gguf"));
  std::string b = read_bytes(path("ok.gguf"));
  b.replace(0, 4, "GGML");
  expect_bad_bytes(path("m.gguf"), b, "magic", "found \"GGML\"");
  b.replace(0, 4, std::string("\0\x01GG", 4));
  expect_bad_bytes(path("m.gguf"), b, "magic", "\\x00\\x01GG");
  expect_bad_bytes(path("m.gguf"), "", "magic", "0 bytes");
}

TEST_F(GgufTest, UnsupportedVersions) {
  expect_bad_bytes(path("v.gguf"), Raw().header(0, 0, 1).b, "version", "version 1 is not supported");
  expect_bad_bytes(path("v.gguf"), Raw().header(0, 0, 4).b, "version", "version 4 is not supported");
  expect_bad_bytes(path("v.gguf"), Raw().header(0, 0, 0).b, "version", "version 0 is not supported");
}

TEST_F(GgufTest, BigEndianRefused) {
  // a big-endian v3 file: every field byte-swapped, the version reads as 0x03000000
  Raw be;
  be.b = "GGUF";
  be.b += std::string("\0\0\0\x03", 4);
  be.b += std::string(16, '\0');
  expect_bad_bytes(path("be.gguf"), be.b, "version", "big-endian");
  be.b[7] = 2;
  expect_bad_bytes(path("be.gguf"), be.b, "version", "version 2 byte-swapped");
}

TEST_F(GgufTest, BadAlignment) {
  for (uint32_t a : {0u, 3u, 96u}) {
    const std::string b =
        Raw().header(1, 1).kv_u32("general.alignment", a).tensor("w", {8}, kF32, 0).pad(32).data(32).b;
    expect_bad_bytes(path("a.gguf"), b, "key 'general.alignment'", "alignment " + std::to_string(a) + " is not a");
  }
  const std::string b = Raw().header(0, 1).str("general.alignment").u32(10).u64(32).b;  // UINT64
  expect_bad_bytes(path("a.gguf"), b, "key 'general.alignment'", "is UINT64, must be UINT32");
}

TEST_F(GgufTest, StringLengthPastEof) {
  // the key's length
  expect_bad_bytes(path("s.gguf"), Raw().header(0, 1).u64(kU64Max).b + std::string(20, 'k'), "metadata key #0",
                   "string length 18446744073709551615");
  expect_bad_bytes(path("s.gguf"), Raw().header(0, 1).u64(21).b + std::string(20, 'k'), "metadata key #0",
                   "runs past the end of the file (20 bytes remain)");
  // a string value's length
  expect_bad_bytes(path("s.gguf"), Raw().header(0, 1).str("name").u32(8).u64(1ull << 40).b + "abc", "key 'name'",
                   "string length 1099511627776");
  // a string inside an array
  expect_bad_bytes(path("s.gguf"), Raw().header(0, 1).str("arr").u32(9).u32(8).u64(2).str("ok").u64(99).b + "xy",
                   "key 'arr'", "element 1");
  // a tensor name
  expect_bad_bytes(path("s.gguf"), Raw().header(1, 0).u64(1000).b + std::string(40, 'n'), "tensor #0",
                   "runs past the end");
}

TEST_F(GgufTest, HugeArrayCount) {
  auto arr = [](uint32_t elem_type, uint64_t count) {
    return Raw().header(0, 1).str("arr").u32(9).u32(elem_type).u64(count).data(64).b;
  };
  expect_bad_bytes(path("c.gguf"), arr(0, 1ull << 62), "key 'arr'", "array count 4611686018427387904 of UINT8");
  // count * 8 wraps to 0 in 64 bits: must still be refused
  expect_bad_bytes(path("c.gguf"), arr(10, 1ull << 61), "key 'arr'", "array count 2305843009213693952 of UINT64");
  expect_bad_bytes(path("c.gguf"), arr(8, kU64Max), "key 'arr'", "of STRING (at least 8 bytes each)");
  expect_bad_bytes(path("c.gguf"), arr(9, 1ull << 60), "key 'arr'", "of ARRAY");
  expect_bad_bytes(path("c.gguf"), arr(6, 17), "key 'arr'", "does not fit in the 64 bytes left");
  expect_bad_bytes(path("c.gguf"), arr(13, 1), "key 'arr'", "array element type 13 is not a GGUF value type");
}

TEST_F(GgufTest, HugeTensorAndKvCounts) {
  expect_bad_bytes(path("n.gguf"), Raw().header(kU64Max, 0).data(100).b, "tensor_count", "18446744073709551615");
  expect_bad_bytes(path("n.gguf"), Raw().header(1ull << 40, 0).data(100).b, "tensor_count", "do not fit");
  expect_bad_bytes(path("n.gguf"), Raw().header(0, kU64Max).data(100).b, "kv_count", "18446744073709551615");
  expect_bad_bytes(path("n.gguf"), Raw().header(0, 8).data(100).b, "kv_count", "do not fit in the 100 bytes");
  // counts that fit the bytes after the header but not what remains after the metadata
  const std::string b = Raw().header(3, 1).kv_str("k", std::string(60, 'v')).data(40).b;
  expect_bad_bytes(path("n.gguf"), b, "tensor_count", "after the metadata");
}

TEST_F(GgufTest, DimsProductOverflow) {
  auto one = [](const std::vector<uint64_t>& ne, uint32_t type) {
    return Raw().header(1, 0).tensor("blk.0.attn_q.weight", ne, type, 0).pad(32).data(64).b;
  };
  const std::string field = "tensor 'blk.0.attn_q.weight'";
  expect_bad_bytes(path("d.gguf"), one({1ull << 32, 1ull << 32}, kF32), field,
                   "dims [4294967296, 4294967296]: product overflows 64 bits");
  expect_bad_bytes(path("d.gguf"), one({1ull << 32, 1ull << 32, 0}, kF32), field, "product overflows");
  expect_bad_bytes(path("d.gguf"), one({1ull << 32, 1ull << 31}, 24), field, "exceeds INT64_MAX");  // I8
  expect_bad_bytes(path("d.gguf"), one({1ull << 62}, kF32), field, "byte size as F32 overflows");
  expect_bad_bytes(path("d.gguf"), one({1ull << 63, 1}, kF32), field, "dims[0] = 9223372036854775808 exceeds");
}

TEST_F(GgufTest, OffsetPastEof) {
  const std::string base = Raw().header(1, 0).tensor("w", {8}, kF32, 0).pad(32).b;
  expect_bad_bytes(path("o.gguf"), base + std::string(31, 'x'), "tensor 'w'", "runs past the end of the file");
  const std::string far = Raw().header(1, 0).tensor("w", {8}, kF32, 1ull << 40).pad(32).data(32).b;
  expect_bad_bytes(path("o.gguf"), far, "tensor 'w'", "offset 1099511627776");
  const std::string wrap = Raw().header(1, 0).tensor("w", {8}, kF32, kU64Max - 31).pad(32).data(32).b;
  expect_bad_bytes(path("o.gguf"), wrap, "tensor 'w'", "past the end");
  // the aligned start of the data section itself lies past the end of the file
  const std::string b = Raw().header(1, 1).kv_u32("general.alignment", 1u << 20).tensor("w", {1}, kF32, 0).data(8).b;
  expect_bad_bytes(path("o.gguf"), b, "data section", "past the end of the file");
}

TEST_F(GgufTest, OverlappingTensors) {
  const std::string b =
      Raw().header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {16}, kF32, 32).pad(32).data(96).b;
  expect_bad_bytes(path("v.gguf"), b, "tensor 'b'", "data [32, 96) overlaps tensor 'a' [0, 64)");
  const std::string same = Raw().header(2, 0).tensor("a", {8}, kF32, 0).tensor("b", {8}, kF32, 0).pad(32).data(32).b;
  expect_bad_bytes(path("v.gguf"), same, "tensor 'b'", "overlaps tensor 'a'");
  // listed out of order: the later offset is reported, whatever the file order
  const std::string rev =
      Raw().header(2, 0).tensor("hi", {8}, kF32, 32).tensor("lo", {24}, kF32, 0).pad(32).data(96).b;
  expect_bad_bytes(path("v.gguf"), rev, "tensor 'hi'", "overlaps tensor 'lo'");
  // shared offsets are fine for tensors of no bytes; gaps between tensors are fine
  const std::string ok = Raw().header(3, 0).tensor("a", {8}, kF32, 0).tensor("z", {0}, kF32, 0)
                             .tensor("b", {8}, kF32, 64).pad(32).data(96).b;
  write_bytes(path("ok.gguf"), ok);
  EXPECT_EQ(GgufFile(path("ok.gguf")).tensors().size(), 3u);
}

TEST_F(GgufTest, MisalignedOffset) {
  const std::string b = Raw().header(1, 0).tensor("w", {4}, kF32, 16).pad(32).data(64).b;
  expect_bad_bytes(path("m.gguf"), b, "tensor 'w'", "offset 16 is not a multiple of the alignment 32");
  const std::string b64 =
      Raw().header(1, 1).kv_u32("general.alignment", 64).tensor("w", {4}, kF32, 32).pad(64).data(64).b;
  expect_bad_bytes(path("m.gguf"), b64, "tensor 'w'", "offset 32 is not a multiple of the alignment 64");
}

TEST_F(GgufTest, DuplicateNamesAndKeys) {
  const std::string t = Raw().header(2, 0).tensor("w", {8}, kF32, 0).tensor("w", {8}, kF32, 32).pad(32).data(64).b;
  expect_bad_bytes(path("u.gguf"), t, "tensor 'w'", "more than once (tensors #0 and #1)");
  const std::string k = Raw().header(0, 2).kv_u32("llama.block_count", 2).kv_u32("llama.block_count", 3).b;
  expect_bad_bytes(path("u.gguf"), k, "key 'llama.block_count'", "more than once");
}

TEST_F(GgufTest, NDimsOutOfRange) {
  const std::string zero = Raw().header(1, 0).str("w").u32(0).u32(kF32).u64(0).pad(32).data(32).b;
  expect_bad_bytes(path("n.gguf"), zero, "tensor 'w'", "n_dims 0 is outside 1..4");
  const std::string five = Raw().header(1, 0).tensor("w", {1, 1, 1, 1, 1}, kF32, 0).pad(32).data(32).b;
  expect_bad_bytes(path("n.gguf"), five, "tensor 'w'", "n_dims 5 is outside 1..4");
  const std::string four = Raw().header(1, 0).tensor("w", {2, 1, 1, 1}, kF32, 0).pad(32).data(32).b;
  write_bytes(path("ok.gguf"), four);
  EXPECT_EQ(GgufFile(path("ok.gguf")).info("w").ne.size(), 4u);
}

TEST_F(GgufTest, UnknownGgmlType) {
  for (uint32_t type : {4u, 17u, 31u, 1000u}) {
    const std::string b = Raw().header(1, 0).tensor("w", {32}, type, 0).pad(32).data(256).b;
    expect_bad_bytes(path("t.gguf"), b, "tensor 'w'", "unknown ggml type " + std::to_string(type));
  }
}

TEST_F(GgufTest, Ne0NotMultipleOfBlock) {
  const std::string q4k = Raw().header(1, 0).tensor("w", {100, 2}, kQ4_K, 0).pad(32).data(512).b;
  expect_bad_bytes(path("b.gguf"), q4k, "tensor 'w'", "ne[0] = 100 is not a multiple of the 256-element block of Q4_K");
  // the row count need not be: only ne[0] is blocked
  const std::string q8 = Raw().header(1, 0).tensor("w", {33}, kQ8_0, 0).pad(32).data(64).b;
  expect_bad_bytes(path("b.gguf"), q8, "tensor 'w'", "block of Q8_0");
  write_bytes(path("ok.gguf"), Raw().header(1, 0).tensor("w", {32, 3}, kQ8_0, 0).pad(32).data(102).b);
  EXPECT_EQ(GgufFile(path("ok.gguf")).info("w").nbytes, 102u);
}

TEST_F(GgufTest, BadValueTypesAndBools) {
  expect_bad_bytes(path("b.gguf"), Raw().header(0, 1).str("k").u32(13).u32(0).b, "key 'k'",
                   "value type 13 is not a GGUF value type");
  expect_bad_bytes(path("b.gguf"), Raw().header(0, 1).str("k").u32(7).u8(2).b, "key 'k'", "BOOL byte 2");
  expect_bad_bytes(path("b.gguf"), Raw().header(0, 1).str("k").u32(9).u32(7).u64(3).u8(0).u8(1).u8(255).b,
                   "key 'k'", "element 2: BOOL byte 255");
}

TEST_F(GgufTest, ArrayNestingDepthLimit) {
  // depth levels of ARRAY, the innermost an empty array of UINT8
  auto nested = [](int depth) {
    Raw r = Raw().header(0, 1).str("deep").u32(9);
    for (int k = 1; k < depth; ++k) r.u32(9).u64(1);
    return r.u32(0).u64(0).b;
  };
  write_bytes(path("ok.gguf"), nested(8));
  GgufFile f(path("ok.gguf"));
  EXPECT_EQ(f.value("deep").type_str(), "ARRAY[ARRAY[ARRAY[ARRAY[ARRAY[ARRAY[ARRAY[ARRAY[UINT8]]]]]]]]");
  expect_bad_bytes(path("d.gguf"), nested(9), "key 'deep'", "nested more than 8 levels deep");
  expect_bad_bytes(path("d.gguf"), nested(100000), "key 'deep'", "nested more than 8");
  // at most 65536 arrays inside arrays in the whole file (each costs far more memory than file bytes)
  auto wide = [](uint64_t n_inner) {
    Raw r = Raw().header(0, 1).str("wide").u32(9).u32(9).u64(n_inner);
    for (uint64_t k = 0; k < n_inner; ++k) r.u32(0).u64(0);
    return r.b;
  };
  write_bytes(path("ok.gguf"), wide(65536));
  EXPECT_EQ(GgufFile(path("ok.gguf")).value("wide").arrays.size(), 65536u);
  expect_bad_bytes(path("d.gguf"), wide(65537), "key 'wide'", "more than 65536 arrays inside arrays");
}

TEST_F(GgufTest, RenderingIsBounded) {
  // 512 arrays of 20 strings of 100 bytes (1 MB) under three levels of 8: unbounded, ~860 KB of text
  std::vector<V> level(8, V::str_array(std::vector<std::string>(20, std::string(100, 'x'))));
  for (int d = 0; d < 2; ++d) level = std::vector<V>(8, V::array(GgufType::ARRAY, level));
  GgufWriter w;
  w.add("big", V::array(GgufType::ARRAY, level));
  w.write(path("r.gguf"));
  GgufFile f(path("r.gguf"));
  const std::string s = f.value("big").to_string(1000);
  EXPECT_LT(s.size(), 4096u + 1000u);
  EXPECT_NE(s.find("... (8 items)]"), std::string::npos);
  EXPECT_LT(f.describe().size(), 6000u);
}

TEST_F(GgufTest, EmptyKeyAndEmptyTensorName) {
  expect_bad_bytes(path("e.gguf"), Raw().header(0, 1).kv_u32("", 1).b, "metadata key #0", "key has length 0");
  expect_bad_bytes(path("e.gguf"), Raw().header(0, 2).kv_u32("a", 1).kv_u32("", 1).b, "metadata key #1",
                   "length 0");
  expect_bad_bytes(path("e.gguf"), Raw().header(1, 0).tensor("", {8}, kF32, 0).pad(32).data(32).b, "tensor #0",
                   "name has length 0");
}

TEST_F(GgufTest, NamesInMessagesArePrintable) {
  const std::string b = Raw().header(1, 0).tensor("bad\n\xff", {8}, 99, 0).pad(32).data(32).b;
  expect_bad_bytes(path("p.gguf"), b, "tensor 'bad\\x0a\\xff'", "unknown ggml type 99");
}

// Every single-byte mutation in a sample of a valid file either opens (and then every tensor lies
// inside the file and every value can be rendered) or throws BadInput. Anything else fails or crashes.
TEST_F(GgufTest, MutationSweepNeverCrashes) {
  write_small_valid(path("ok.gguf"));
  const std::string good = read_bytes(path("ok.gguf"));
  size_t header_end = 0;
  {
    GgufFile f(path("ok.gguf"));
    header_end = f.data_offset();
  }
  const std::string p = path("m.gguf");
  int opened = 0, refused = 0;
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    std::string b = good;
    const int flips = 1 + i % 3;
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % (i % 5 == 0 ? b.size() : header_end);  // mostly header bytes
      const auto old = static_cast<uint8_t>(b[at]);
      b[at] = static_cast<char>(i % 2 ? rng() & 0xffu : old ^ (1u << (rng() % 8)));
    }
    write_bytes(p, b);
    try {
      GgufFile f(p);
      for (const auto& t : f.tensors()) {
        EXPECT_LE(f.data_offset() + t.offset + t.nbytes, b.size()) << t.name;
        EXPECT_EQ(t.offset % f.alignment(), 0u);
      }
      for (const auto& kv : f.metadata()) (void)kv.value.to_string(1000);
      (void)f.describe();
      ++opened;
    } catch (const BadInput& e) {
      EXPECT_EQ(e.file(), p);
      ++refused;
    }
  }
  EXPECT_GT(opened, 100);
  EXPECT_GT(refused, 100);
}

// ---------------------------------------------------------------- real file and fuzz seeds

// The real SmolLM2 GGUF (scripts/fetch_smollm2.sh) when the model cache holds it; skipped otherwise.
TEST(GgufRealFile, SmolLM2WhenPresent) {
  std::vector<std::string> candidates;
  if (const char* cache = std::getenv("MINFER_MODEL_CACHE")) candidates.push_back(cache);
#ifdef MINFER_SOURCE_DIR
  candidates.push_back(std::string(MINFER_SOURCE_DIR) + "/models");
#endif
  std::string p;
  for (const auto& c : candidates) {
    const std::string q = c + "/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (fs::exists(q)) p = q;
  }
  if (p.empty()) GTEST_SKIP() << "SmolLM2 GGUF not in the model cache (scripts/fetch_smollm2.sh)";
  GgufFile f(p);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("llama.block_count"), 30u);
  EXPECT_EQ(f.get_u32("llama.embedding_length"), 576u);
  EXPECT_EQ(f.get_f32("llama.rope.freq_base"), 100000.f);
  const auto& tokens = f.get_string_array_view("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f.tensors().size(), 272u);
  const auto& emb = f.info("token_embd.weight");
  EXPECT_EQ(emb.ne, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(emb.shape(), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(emb.ggml_type(), GgmlType::Q8_0);
  EXPECT_EQ(emb.nbytes, 49152u * 18 * 34);
  EXPECT_EQ(f.info("blk.0.ffn_down.weight").ggml_type(), GgmlType::Q4_1);
}

// The fuzz seeds in tests/fuzz/corpus are valid GGUF files. MINFER_REGEN_FUZZ_CORPUS=1 rewrites them.
TEST(GgufFuzzCorpus, SeedsOpen) {
#ifndef MINFER_SOURCE_DIR
  GTEST_SKIP() << "MINFER_SOURCE_DIR not defined";
#else
  const fs::path dir = fs::path(MINFER_SOURCE_DIR) / "tests" / "fuzz" / "corpus";
  const char* regen = std::getenv("MINFER_REGEN_FUZZ_CORPUS");
  if (regen != nullptr && std::string(regen) == "1") {
    write_small_valid((dir / "small_v3_align64.gguf").string());
    GgufWriter v2(2);
    v2.add("general.architecture", V::str("llama"));
    v2.add("tokenizer.ggml.token_type", V::i32_array({1, 2, 3}));
    v2.add_tensor_f16("h", {4, 2}, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f});
    v2.add_tensor("q4k", kQ4_K, {256}, pattern(144, 2));
    v2.write((dir / "v2_f16_q4k.gguf").string());
    GgufWriter meta;
    meta.add("nested", V::array(GgufType::ARRAY, {V::str_array({"a", ""}), V::array(GgufType::UINT64, {V::u64(9)})}));
    meta.add("f64", V::f64(2.5));
    meta.add("i16", V::i16(-3));
    meta.add("b", V::boolean(true));
    meta.write((dir / "metadata_only.gguf").string());
  }
  int seeds = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    GgufFile f(e.path().string());
    EXPECT_GE(f.metadata().size(), 1u) << e.path();
    ++seeds;
  }
  EXPECT_GE(seeds, 3);
#endif
}

}  // namespace
