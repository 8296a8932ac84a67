// tests/cpu/test_safetensors.cpp: the safetensors reader, writer and checkpoint sources.
// Round trips in F32/F16/BF16, sharded checkpoints through an index, every malformed-file case of
// DESIGN.md section 8 / ANCHORS.md (each must be a BadInput naming the file and the field, never a
// crash), a deterministic mutation sweep, and the CLI's exit code 2 on bad checkpoints.
#include <sys/wait.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/dtype.h"
#include "engine/core/error.h"
#include "engine/core/safetensors.h"

namespace fs = std::filesystem;
using minfer::BadInput;
using minfer::DType;

namespace {

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minfer_st_XXXXXX").string();
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

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file with the given header text and `data_bytes` bytes of data (a non-zero pattern).
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string data(data_bytes, '\0');
  for (size_t i = 0; i < data_bytes; ++i) data[i] = static_cast<char>(i * 7 + 1);
  return le64(header.size()) + header + data;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b,
                  uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(b) + "," + std::to_string(e) + "]}";
}

// Opening `path` must throw BadInput whose file is `path`, whose field contains `field`, and whose
// message names both.
void expect_bad(const std::string& path, const std::string& field, const std::string& detail_part = "") {
  try {
    minfer::SafetensorsFile f(path);
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

// A bad file with the given header and data size: BadInput naming `field`.
void expect_bad_header(const std::string& path, const std::string& header, size_t data, const std::string& field,
                       const std::string& detail_part = "") {
  write_bytes(path, raw_file(header, data));
  expect_bad(path, field, detail_part);
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + 0.1f) + 1e-3f * i;
  return v;
}

minfer::TensorToWrite tensor_of(const std::string& name, DType t, std::vector<int64_t> shape,
                                const std::vector<float>& vals) {
  minfer::TensorToWrite w;
  w.name = name;
  w.dtype = t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16";
  w.shape = std::move(shape);
  w.fill = [t, vals](uint8_t* dst, size_t nbytes) {
    ASSERT_EQ(nbytes, vals.size() * minfer::dtype_size(t));
    for (size_t i = 0; i < vals.size(); ++i) minfer::store_as(t, dst, i, vals[i]);
  };
  return w;
}

// ---------------------------------------------------------------- round trips

TEST_F(SafetensorsTest, RoundTripAllThreeDtypes) {
  const auto a = ramp(3 * 5, 2.5f), b = ramp(7, 100.f), c = ramp(2 * 3 * 2, 0.01f);
  std::vector<minfer::TensorToWrite> ts;
  ts.push_back(tensor_of("z.f32", DType::F32, {3, 5}, a));
  ts.push_back(tensor_of("a.f16", DType::F16, {7}, b));
  ts.push_back(tensor_of("m.bf16", DType::BF16, {2, 3, 2}, c));
  const std::string p = path("rt.safetensors");
  minfer::write_safetensors(p, ts, {{"format", "pt"}});
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  const std::string bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u) << "header is padded to a multiple of 8";
  EXPECT_EQ(bytes.size(), 8 + n + a.size() * 4 + b.size() * 2 + c.size() * 2);

  minfer::SafetensorsFile f(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a.f16", "m.bf16", "z.f32"}));
  EXPECT_EQ(f.meta("a.f16").dtype, "F16");
  EXPECT_EQ(f.meta("m.bf16").shape, (std::vector<int64_t>{2, 3, 2}));
  EXPECT_EQ(f.nbytes("z.f32"), 60u);
  // data in the order given: z first, then a, then m
  EXPECT_LT(f.data("z.f32"), f.data("a.f16"));
  EXPECT_LT(f.data("a.f16"), f.data("m.bf16"));

  auto src = minfer::open_checkpoint(p);
  const auto ra = src->read_f32("z.f32"), rb = src->read_f32("a.f16"), rc = src->read_f32("m.bf16");
  ASSERT_EQ(ra.size(), a.size());
  ASSERT_EQ(rb.size(), b.size());
  ASSERT_EQ(rc.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(ra[i], a[i]);
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(rb[i], minfer::round_to(DType::F16, b[i]));
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(rc[i], minfer::round_to(DType::BF16, c[i]));
  // the narrow values really were rounded (the test would not notice a silent F32 write otherwise)
  bool any_rounded = false;
  for (size_t i = 0; i < c.size(); ++i) any_rounded = any_rounded || rc[i] != c[i];
  EXPECT_TRUE(any_rounded);
  EXPECT_EQ(src->file_of("a.f16"), p);
  EXPECT_FALSE(src->meta("nope").has_value());
}

TEST_F(SafetensorsTest, DirectoryWithModelSafetensors) {
  minfer::write_safetensors(path("model.safetensors"), {tensor_of("w", DType::F32, {4}, {1, 2, 3, 4})});
  auto src = minfer::open_checkpoint(dir_.string());
  EXPECT_EQ(src->names(), std::vector<std::string>{"w"});
  EXPECT_EQ(src->read_f32("w"), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(src->file_of("w"), path("model.safetensors"));
}

TEST_F(SafetensorsTest, ZeroSizedAndEmpty) {
  minfer::write_safetensors(path("e.safetensors"), {tensor_of("e", DType::F32, {0, 4}, {}),
                                                     tensor_of("x", DType::BF16, {2}, {1.f, -2.f})});
  auto src = minfer::open_checkpoint(path("e.safetensors"));
  EXPECT_TRUE(src->read_f32("e").empty());
  EXPECT_EQ(src->read_f32("x"), (std::vector<float>{1.f, -2.f}));
  write_bytes(path("empty.safetensors"), raw_file("{}", 0));
  minfer::SafetensorsFile f(path("empty.safetensors"));
  EXPECT_TRUE(f.names().empty());
}

TEST_F(SafetensorsTest, ReadsF64AndRefusesIntegers) {
  std::string data(8 + 8 + 4, '\0');
  const double d0 = 0.1, d1 = -3.0;
  std::memcpy(&data[0], &d0, 8);
  std::memcpy(&data[8], &d1, 8);
  const int32_t i0 = 7;
  std::memcpy(&data[16], &i0, 4);
  std::string h = "{" + entry("d", "F64", "[2]", 0, 16) + "," + entry("i", "I32", "[1]", 16, 20) + "}";
  write_bytes(path("d.safetensors"), le64(h.size()) + h + data);
  auto src = minfer::open_checkpoint(path("d.safetensors"));
  EXPECT_EQ(src->read_f32("d"), (std::vector<float>{0.1f, -3.0f}));
  try {
    src->read_f32("i");
    ADD_FAILURE() << "I32 read as float";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), "i.dtype");
  }
}

TEST_F(SafetensorsTest, WriterRefusesBadInput) {
  EXPECT_THROW(minfer::write_safetensors(path("x.safetensors"),
                                         {tensor_of("a", DType::F32, {1}, {1}), tensor_of("a", DType::F32, {1}, {2})}),
               BadInput);
  minfer::TensorToWrite t;
  t.name = "q";
  t.dtype = "F12";
  t.shape = {1};
  EXPECT_THROW(minfer::write_safetensors(path("x.safetensors"), {t}), BadInput);
  EXPECT_FALSE(fs::exists(path("x.safetensors")));
  EXPECT_FALSE(fs::exists(path("x.safetensors.tmp")));
}

TEST(SafetensorsDtype, Sizes) {
  EXPECT_EQ(minfer::safetensors_dtype_size("F32"), 4u);
  EXPECT_EQ(minfer::safetensors_dtype_size("BF16"), 2u);
  EXPECT_EQ(minfer::safetensors_dtype_size("F8_E4M3"), 1u);
  EXPECT_EQ(minfer::safetensors_dtype_size("U64"), 8u);
  EXPECT_EQ(minfer::safetensors_dtype_size("BOOL"), 1u);
  EXPECT_EQ(minfer::safetensors_dtype_size("f32"), 0u);
  EXPECT_EQ(minfer::safetensors_dtype_size("F128"), 0u);
}

// ---------------------------------------------------------------- sharded checkpoints

class ShardedTest : public SafetensorsTest {
 protected:
  void write_shards() {
    minfer::write_safetensors(path("model-00001-of-00002.safetensors"),
                              {tensor_of("a", DType::BF16, {2, 2}, {1, 2, 3, 4}), tensor_of("b", DType::F32, {3}, {5, 6, 7})});
    minfer::write_safetensors(path("model-00002-of-00002.safetensors"), {tensor_of("c", DType::F16, {1}, {0.5f})});
  }
  void write_index(const std::string& weight_map) {
    write_bytes(path("model.safetensors.index.json"),
                "{\"metadata\":{\"total_size\":22},\"weight_map\":{" + weight_map + "}}");
  }
};

TEST_F(ShardedTest, ReadsThroughIndex) {
  write_shards();
  write_index(R"("a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",)"
              R"("c":"model-00002-of-00002.safetensors")");
  auto src = minfer::open_checkpoint(dir_.string());
  EXPECT_EQ(src->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(src->read_f32("a"), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(src->read_f32("b"), (std::vector<float>{5, 6, 7}));
  EXPECT_EQ(src->read_f32("c"), (std::vector<float>{0.5f}));
  EXPECT_EQ(src->meta("a")->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(src->file_of("b"), path("model-00001-of-00002.safetensors"));
  EXPECT_EQ(src->file_of("c"), path("model-00002-of-00002.safetensors"));
  EXPECT_NE(src->describe().find(dir_.string()), std::string::npos);
}

TEST_F(ShardedTest, MissingShardNamesIndexAndShard) {
  write_shards();
  write_index(R"("a":"model-00001-of-00002.safetensors","c":"model-00003-of-00002.safetensors")");
  try {
    minfer::open_checkpoint(dir_.string());
    ADD_FAILURE() << "missing shard accepted";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), path("model.safetensors.index.json"));
    EXPECT_EQ(e.field(), "weight_map.c");
    EXPECT_NE(std::string(e.what()).find("model-00003-of-00002.safetensors"), std::string::npos) << e.what();
  }
}

TEST_F(ShardedTest, NameMissingInShard) {
  write_shards();
  write_index(R"("a":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors")");
  try {
    minfer::open_checkpoint(dir_.string());
    ADD_FAILURE() << "name missing in its shard accepted";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), path("model-00001-of-00002.safetensors"));
    EXPECT_EQ(e.field(), "c");
  }
}

TEST_F(ShardedTest, BadIndexAndBadShard) {
  write_shards();
  write_bytes(path("model.safetensors.index.json"), "{\"weight_map\": [1,2]}");
  EXPECT_THROW(minfer::open_checkpoint(dir_.string()), BadInput);
  write_bytes(path("model.safetensors.index.json"), "{not json");
  EXPECT_THROW(minfer::open_checkpoint(dir_.string()), BadInput);
  write_index(R"("a":"../model-00001-of-00002.safetensors")");
  EXPECT_THROW(minfer::open_checkpoint(dir_.string()), BadInput);
  // a malformed shard is reported with the shard's own path
  write_bytes(path("model-00002-of-00002.safetensors"), "xyz");
  write_index(R"("c":"model-00002-of-00002.safetensors")");
  try {
    minfer::open_checkpoint(dir_.string());
    ADD_FAILURE();
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), path("model-00002-of-00002.safetensors"));
    EXPECT_EQ(e.field(), "header length");
  }
}

TEST_F(SafetensorsTest, MissingPathsAndEmptyDirectory) {
  EXPECT_THROW(minfer::open_checkpoint(path("does-not-exist")), BadInput);
  try {
    minfer::open_checkpoint(dir_.string());
    ADD_FAILURE();
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), dir_.string());
  }
  expect_bad(path("nope.safetensors"), "file");
}

// ---------------------------------------------------------------- malformed files

TEST_F(SafetensorsTest, TruncatedBeforeHeaderLength) {
  write_bytes(path("t.safetensors"), std::string("\x10\x00\x00", 3));
  expect_bad(path("t.safetensors"), "header length");
  write_bytes(path("t.safetensors"), "");
  expect_bad(path("t.safetensors"), "header length");
}

TEST_F(SafetensorsTest, TruncatedData) {
  minfer::write_safetensors(path("ok.safetensors"), {tensor_of("w", DType::F32, {8}, ramp(8, 1.f))});
  std::string bytes = read_bytes(path("ok.safetensors"));
  write_bytes(path("t.safetensors"), bytes.substr(0, bytes.size() - 5));
  expect_bad(path("t.safetensors"), "w.data_offsets", "past the data section");
}

TEST_F(SafetensorsTest, HeaderLengthPastFile) {
  write_bytes(path("h.safetensors"), le64(1000) + "{}");
  expect_bad(path("h.safetensors"), "header length", "past the end");
  write_bytes(path("h.safetensors"), le64(UINT64_MAX) + "{}");
  expect_bad(path("h.safetensors"), "header length");
}

TEST_F(SafetensorsTest, HeaderLongerThan100MB) {
  write_bytes(path("h.safetensors"), le64(100'000'001) + "{}");
  expect_bad(path("h.safetensors"), "header length", "100,000,000");
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  expect_bad_header(path("j.safetensors"), "{\"a\": {\"dtype\": ", 0, "header", "JSON");
  expect_bad_header(path("j.safetensors"), "hello", 0, "header");
  expect_bad_header(path("j.safetensors"), std::string("{\"\xff\xfe\":1}"), 0, "header");  // not UTF-8
}

TEST_F(SafetensorsTest, HeaderNotObject) {
  expect_bad_header(path("o.safetensors"), "[1, 2, 3]", 0, "header", "not an object");
  expect_bad_header(path("o.safetensors"), "42", 0, "header");
  expect_bad_header(path("o.safetensors"), "{\"w\": 5}", 0, "w");
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  expect_bad_header(path("r.safetensors"), "{" + entry("w", "F32", "[4]", 0, 16) + "}", 8, "w.data_offsets",
                    "past the data section");
  expect_bad_header(path("r.safetensors"), "{" + entry("w", "F32", "[0]", 9, 4) + "}", 8, "w.data_offsets", "begin");
  expect_bad_header(path("r.safetensors"), R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4,
                    "w.data_offsets");
  expect_bad_header(path("r.safetensors"), R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4,
                    "w.data_offsets");
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  expect_bad_header(path("v.safetensors"),
                    "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", 12,
                    "b.data_offsets", "overlaps tensor a");
  // the same range twice
  expect_bad_header(path("v.safetensors"),
                    "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 0, 8) + "}", 8,
                    "data_offsets", "overlaps");
}

TEST_F(SafetensorsTest, GapBetweenTensors) {
  expect_bad_header(path("g.safetensors"),
                    "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 12, 20) + "}", 20,
                    "b.data_offsets", "gap of 4 bytes after tensor a");
}

TEST_F(SafetensorsTest, NotStartingAtZero) {
  expect_bad_header(path("z.safetensors"), "{" + entry("a", "F32", "[2]", 4, 12) + "}", 12, "a.data_offsets",
                    "starts at 4");
}

TEST_F(SafetensorsTest, NotEndingAtEof) {
  expect_bad_header(path("e.safetensors"), "{" + entry("a", "F32", "[2]", 0, 8) + "}", 12, "a.data_offsets",
                    "trailing");
  expect_bad_header(path("e.safetensors"), "{}", 3, "data", "trailing");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expect_bad_header(path("d.safetensors"), "{" + entry("a", "F12", "[2]", 0, 8) + "}", 8, "a.dtype", "F12");
  expect_bad_header(path("d.safetensors"), R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8, "a.dtype");
  expect_bad_header(path("d.safetensors"), R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "a.dtype", "missing");
}

TEST_F(SafetensorsTest, ShapeByteMismatch) {
  expect_bad_header(path("m.safetensors"), "{" + entry("a", "F32", "[3]", 0, 8) + "}", 8, "a.data_offsets",
                    "needs 12");
  expect_bad_header(path("m.safetensors"), "{" + entry("a", "BF16", "[2,2]", 0, 16) + "}", 16, "a.data_offsets",
                    "needs 8");
}

TEST_F(SafetensorsTest, ShapeProductOverflow) {
  // 2^32 * 2^32 * 2 overflows the element count; 2^62 F32 overflows the byte count.
  expect_bad_header(path("p.safetensors"), "{" + entry("a", "U8", "[4294967296,4294967296,2]", 0, 0) + "}", 0,
                    "a.shape", "overflows");
  expect_bad_header(path("p.safetensors"), "{" + entry("a", "F32", "[4611686018427387904]", 0, 0) + "}", 0,
                    "a.shape", "overflows");
  expect_bad_header(path("p.safetensors"), "{" + entry("a", "U8", "[18446744073709551615]", 0, 0) + "}", 0,
                    "a.shape");
  // a zero dimension makes a huge product harmless only if nothing overflows before it
  expect_bad_header(path("p.safetensors"), "{" + entry("a", "U8", "[4294967296,4294967296,4294967296,0]", 0, 0) + "}",
                    0, "a.shape", "overflows");
}

TEST_F(SafetensorsTest, NegativeOrNonIntegerDims) {
  expect_bad_header(path("n.safetensors"), "{" + entry("a", "F32", "[-1,4]", 0, 0) + "}", 0, "a.shape", "-1");
  expect_bad_header(path("n.safetensors"), "{" + entry("a", "F32", "[2.5]", 0, 0) + "}", 0, "a.shape");
  expect_bad_header(path("n.safetensors"), "{" + entry("a", "F32", "\"[2]\"", 0, 0) + "}", 0, "a.shape");
}

TEST_F(SafetensorsTest, DuplicateNames) {
  expect_bad_header(path("u.safetensors"),
                    "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8) + "}", 8, "a",
                    "more than once");
  // duplicates inside an entry are refused too
  expect_bad_header(path("u.safetensors"), R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})",
                    4, "dtype", "more than once");
}

TEST_F(SafetensorsTest, BadMetadata) {
  expect_bad_header(path("md.safetensors"), R"({"__metadata__":{"format":1}})", 0, "__metadata__.format");
  expect_bad_header(path("md.safetensors"), R"({"__metadata__":[1]})", 0, "__metadata__");
  write_bytes(path("ok.safetensors"), raw_file(R"({"__metadata__":{"format":"pt"}})", 0));
  minfer::SafetensorsFile f(path("ok.safetensors"));
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

// Every truncation of a valid file and many single-byte mutations of it: each either opens (and
// every tensor then lies inside the file) or throws BadInput. Anything else fails the test or crashes.
TEST_F(SafetensorsTest, MutationSweepNeverCrashes) {
  minfer::write_safetensors(path("ok.safetensors"),
                            {tensor_of("x", DType::F32, {3}, ramp(3, 1.f)), tensor_of("y", DType::BF16, {2, 2}, ramp(4, 1.f))},
                            {{"format", "pt"}});
  const std::string good = read_bytes(path("ok.safetensors"));
  const std::string p = path("m.safetensors");
  int opened = 0, refused = 0;
  auto attempt = [&](const std::string& bytes) {
    write_bytes(p, bytes);
    try {
      minfer::SafetensorsFile f(p);
      for (const auto& n : f.names()) {
        const uint8_t* d = f.data(n);
        (void)d;
        EXPECT_LE(f.nbytes(n), bytes.size());
      }
      ++opened;
    } catch (const BadInput& e) {
      EXPECT_EQ(e.file(), p);
      ++refused;
    }
  };
  for (size_t len = 0; len < good.size(); ++len) attempt(good.substr(0, len));
  std::mt19937 rng(1234);
  ASSERT_EQ(good[1], 0) << "the sweep assumes a header shorter than 256 bytes";
  const size_t header_end = 8 + static_cast<uint8_t>(good[0]);  // header length < 256 here
  for (int i = 0; i < 500; ++i) {
    std::string b = good;
    const size_t at = rng() % (i % 4 == 0 ? b.size() : header_end);  // mostly header bytes
    b[at] = static_cast<char>(rng() & 0xff);
    attempt(b);
  }
  EXPECT_GT(refused, static_cast<int>(good.size()) - 1);  // every strict truncation is refused
  EXPECT_GT(opened, 0);                                  // mutations of data bytes still open
}

// ---------------------------------------------------------------- the CLI on bad checkpoints

const char* kTinyLlamaConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 256,
  "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
  "tie_word_embeddings": false, "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2
})";

struct CliResult { int exit_code; std::string err; };

CliResult run_cli_info(const std::string& model_dir, const std::string& err_path) {
  const std::string cmd = std::string("'") + MINFER_CLI_PATH + "' info --model '" + model_dir + "' >/dev/null 2>'" +
                          err_path + "'";
  const int st = std::system(cmd.c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, read_bytes(err_path)};
}

TEST_F(SafetensorsTest, CliExitsTwoAndNamesTheFile) {
  const fs::path model = dir_ / "ckpt";
  fs::create_directory(model);
  write_bytes((model / "config.json").string(), kTinyLlamaConfig);
  const std::string st = (model / "model.safetensors").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"header length past file", le64(4096) + "{}"},
      {"unknown dtype", raw_file("{" + entry("model.embed_tokens.weight", "F12", "[2]", 0, 8) + "}", 8)},
      {"overlap", raw_file("{" + entry("model.norm.weight", "F32", "[2]", 0, 8) + "," +
                               entry("model.embed_tokens.weight", "F32", "[2]", 4, 12) + "}", 12)},
      {"truncated", std::string("\x01\x02", 2)},
  };
  for (const auto& [what, bytes] : cases) {
    write_bytes(st, bytes);
    const CliResult r = run_cli_info(model.string(), path("stderr.txt"));
    EXPECT_EQ(r.exit_code, 2) << what << ": stderr: " << r.err;
    EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << what << ": stderr: " << r.err;
  }
}

}  // namespace
