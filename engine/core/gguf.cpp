// engine/core/gguf.cpp: the GGUF reader (mmap; each field bounds-checked and validated as it is read;
// see gguf.h for the layout) and the GGUF writer. Every malformed-file case ends in
// BadInput(file, field, detail); fields read "magic", "version", "tensor_count", "kv_count",
// "metadata key #3", "key 'general.alignment'", "tensor #7", "tensor 'blk.0.attn_q.weight'", "data section".
// Counts read from the file are checked against the bytes left in it before anything is reserved, and
// every size is computed with overflow checks: what a hostile header makes us allocate stays within a
// small multiple of the file's own size.
#include "engine/core/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "engine/core/atomic_file.h"
#include "engine/core/dtype.h"
#include "engine/core/error.h"

namespace minfer {
namespace {

constexpr uint32_t kMaxArrayDepth = 8;  // an ARRAY holds ARRAYs at most this many levels deep
// Arrays held inside arrays, over the whole file. Each costs a GgufValue (~120 bytes) for 12 file
// bytes; the cap keeps that memory small (real files hold none).
constexpr uint64_t kMaxNestedArrays = 1u << 16;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
constexpr uint32_t kLastType = static_cast<uint32_t>(GgufType::FLOAT64);
// The fewest bytes a metadata entry can take: key length, one key byte, value type, a 1-byte value.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
// The fewest bytes a tensor info can take: name length, one name byte, n_dims, one dim, type, offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr uint64_t kNoElem = std::numeric_limits<uint64_t>::max();

std::string u2s(uint64_t v) { return std::to_string(v); }

// Bytes of one element of a fixed-size type; 0 for STRING and ARRAY.
uint64_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: case GgufType::ARRAY: return 0;
  }
  return 0;
}

// The fewest bytes one element of type t takes in a file (a string: its length; an array: type + count).
uint64_t min_size(GgufType t) {
  if (t == GgufType::STRING) return 8;
  if (t == GgufType::ARRAY) return 4 + 8;
  return fixed_size(t);
}

bool is_uint(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}
bool is_sint(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

uint64_t load_le(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned k = n; k-- > 0;) v = (v << 8) | p[k];
  return v;
}

// Bit-exact reinterpretation of an unsigned integer as a signed or floating type of the same size.
template <typename To, typename From>
To bit_cast_as(From from) {
  static_assert(sizeof(To) == sizeof(From), "sizes differ");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

void decode_scalar(GgufType t, const uint8_t* p, GgufValue& v) {
  v.type = t;
  switch (t) {
    case GgufType::UINT8: case GgufType::BOOL: v.u = p[0]; break;
    case GgufType::UINT16: v.u = load_le(p, 2); break;
    case GgufType::UINT32: v.u = load_le(p, 4); break;
    case GgufType::UINT64: v.u = load_le(p, 8); break;
    case GgufType::INT8: v.i = bit_cast_as<int8_t>(p[0]); break;
    case GgufType::INT16: v.i = bit_cast_as<int16_t>(static_cast<uint16_t>(load_le(p, 2))); break;
    case GgufType::INT32: v.i = bit_cast_as<int32_t>(static_cast<uint32_t>(load_le(p, 4))); break;
    case GgufType::INT64: v.i = bit_cast_as<int64_t>(load_le(p, 8)); break;
    case GgufType::FLOAT32: v.f = bit_cast_as<float>(static_cast<uint32_t>(load_le(p, 4))); break;
    case GgufType::FLOAT64: v.f = bit_cast_as<double>(load_le(p, 8)); break;
    case GgufType::STRING: case GgufType::ARRAY: break;
  }
}

// Printable ASCII as is, every other byte as \xNN; at most `limit` bytes shown.
std::string printable(std::string_view s, size_t limit) {
  std::string out;
  const size_t n = std::min(s.size(), limit);
  for (size_t k = 0; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > n) out += "...";
  return out;
}

// A key or tensor name as it appears in a field: 'blk.0.attn_q.weight'.
std::string quote(std::string_view s) { return "'" + printable(s, 160) + "'"; }

std::string dims_str(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (size_t k = 0; k < ne.size(); ++k) s += (k ? ", " : "") + u2s(ne[k]);
  return s + "]";
}


// Reads little-endian fields of a mapped file, every read bounds-checked. Errors name `field`
// and `what` (and the array element, when one is given).
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* base, uint64_t size) : path_(path), base_(base), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  const uint8_t* take(uint64_t n, const std::string& field, const char* what, uint64_t elem = kNoElem) {
    if (n > left())
      throw BadInput(path_, field, where(what, elem) + ": needs " + u2s(n) + " bytes at offset " + u2s(pos_) +
                                       " but the file ends at " + u2s(size_));
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u32(const std::string& field, const char* what, uint64_t elem = kNoElem) {
    return static_cast<uint32_t>(load_le(take(4, field, what, elem), 4));
  }
  uint64_t u64(const std::string& field, const char* what, uint64_t elem = kNoElem) {
    return load_le(take(8, field, what, elem), 8);
  }
  // A GGUF string: u64 length, then that many bytes. The view points into the mapping.
  std::string_view str(const std::string& field, const char* what, uint64_t elem = kNoElem) {
    const uint64_t at = pos_;
    const uint64_t n = u64(field, what, elem);
    if (n > left())
      throw BadInput(path_, field, where(what, elem) + ": string length " + u2s(n) + " at offset " + u2s(at) +
                                       " runs past the end of the file (" + u2s(left()) + " bytes remain)");
    return {reinterpret_cast<const char*>(take(n, field, what, elem)), static_cast<size_t>(n)};
  }
  const std::string& path() const { return path_; }

 private:
  static std::string where(const char* what, uint64_t elem) {
    return elem == kNoElem ? std::string(what) : "element " + u2s(elem) + ": " + what;
  }
  const std::string& path_;
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Reads an ARRAY value (element type, count, elements) into v. `depth` counts the arrays around it;
// `nested` the arrays inside arrays read so far in the file.
void read_array(Cursor& c, const std::string& field, uint32_t depth, uint64_t& nested, GgufValue& v) {
  if (depth >= kMaxArrayDepth)
    throw BadInput(c.path(), field, "arrays nested more than " + u2s(kMaxArrayDepth) + " levels deep");
  v.type = GgufType::ARRAY;
  const uint32_t et = c.u32(field, "array element type");
  if (et > kLastType)
    throw BadInput(c.path(), field, "array element type " + u2s(et) + " is not a GGUF value type (0..12)");
  v.elem_type = static_cast<GgufType>(et);
  v.count = c.u64(field, "array count");
  const uint64_t per = min_size(v.elem_type);
  if (v.count > c.left() / per)
    throw BadInput(c.path(), field, "array count " + u2s(v.count) + " of " + gguf_type_name(v.elem_type) +
                                        " (at least " + u2s(per) + " bytes each) does not fit in the " +
                                        u2s(c.left()) + " bytes left in the file");
  switch (v.elem_type) {
    case GgufType::STRING:
      v.strings.reserve(static_cast<size_t>(v.count));
      for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(c.str(field, "array string", k));
      break;
    case GgufType::ARRAY:
      if (v.count > kMaxNestedArrays - nested)
        throw BadInput(c.path(), field, "array of " + u2s(v.count) + " arrays: the metadata would hold more than " +
                                            u2s(kMaxNestedArrays) + " arrays inside arrays");
      nested += v.count;
      v.arrays.reserve(static_cast<size_t>(v.count));
      for (uint64_t k = 0; k < v.count; ++k) read_array(c, field, depth + 1, nested, v.arrays.emplace_back());
      break;
    case GgufType::BOOL:
      v.elems = c.take(v.count, field, "array elements");
      for (uint64_t k = 0; k < v.count; ++k)
        if (v.elems[k] > 1)
          throw BadInput(c.path(), field,
                         "element " + u2s(k) + ": BOOL byte " + u2s(v.elems[k]) + " is neither 0 nor 1");
      break;
    default:
      v.elems = c.take(v.count * per, field, "array elements");  // no overflow: count <= left / per
      break;
  }
}

void read_value(Cursor& c, GgufType t, const std::string& field, uint64_t& nested, GgufValue& v) {
  if (t == GgufType::ARRAY) return read_array(c, field, 0, nested, v);
  v.type = t;
  if (t == GgufType::STRING) {
    v.str = c.str(field, "string value");
    return;
  }
  decode_scalar(t, c.take(fixed_size(t), field, "value"), v);
  if (t == GgufType::BOOL && v.u > 1)
    throw BadInput(c.path(), field, "BOOL byte " + u2s(v.u) + " is neither 0 nor 1");
}

// Elements and bytes of a tensor of layout `info` and dims `ne`, or BadInput(path, field) if ne[0] is
// not a multiple of the block or a product overflows.
std::pair<int64_t, uint64_t> tensor_size(const std::string& path, const std::string& field,
                                         const std::vector<uint64_t>& ne, const GgmlTypeInfo& info) {
  uint64_t numel = 1;
  for (uint64_t d : ne)
    if (__builtin_mul_overflow(numel, d, &numel))
      throw BadInput(path, field, "dims " + dims_str(ne) + ": product overflows 64 bits");
  if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw BadInput(path, field, "dims " + dims_str(ne) + ": element count " + u2s(numel) + " exceeds INT64_MAX");
  const auto block = static_cast<uint64_t>(info.block_elems);
  if (ne[0] % block != 0)
    throw BadInput(path, field, "dims " + dims_str(ne) + ": ne[0] = " + u2s(ne[0]) + " is not a multiple of the " +
                                    u2s(block) + "-element block of " + info.name);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel / block, static_cast<uint64_t>(info.block_bytes), &nbytes))
    throw BadInput(path, field, "dims " + dims_str(ne) + ": byte size as " + info.name + " overflows 64 bits");
  return {static_cast<int64_t>(numel), nbytes};
}

// "GGUF" then version 2 or 3; anything else (version 1, a big-endian file) refused by name.
uint32_t read_magic_and_version(Cursor& c) {
  const uint8_t* magic = c.take(4, "magic", "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0)
    throw BadInput(c.path(), "magic",
                   "expected \"GGUF\", found \"" + printable({reinterpret_cast<const char*>(magic), 4}, 4) + "\"");
  const uint32_t version = c.u32("version", "version");
  if (version == 2 || version == 3) return version;
  const uint32_t swapped = __builtin_bswap32(version);
  if (version == 1) throw BadInput(c.path(), "version", "GGUF version 1 is not supported (only versions 2 and 3)");
  if (swapped >= 1 && swapped <= 3)
    throw BadInput(c.path(), "version",
                   "reads as " + u2s(version) + ", which is version " + u2s(swapped) +
                       " byte-swapped: a big-endian GGUF file; only little-endian files are supported");
  throw BadInput(c.path(), "version", "GGUF version " + u2s(version) + " is not supported (only versions 2 and 3)");
}

// `count` items of at least `min_bytes` each must fit in the bytes left after `after`.
void check_count(const Cursor& c, const char* field, uint64_t count, uint64_t min_bytes, const char* items,
                 const char* after) {
  if (count > c.left() / min_bytes)
    throw BadInput(c.path(), field, u2s(count) + " " + items + " (at least " + u2s(min_bytes) +
                                        " bytes each) do not fit in the " + u2s(c.left()) + " bytes after the " +
                                        after);
}

// Metadata entry #k: a non-empty key, a value type, the value.
GgufKv read_kv(Cursor& c, uint64_t k, uint64_t& nested) {
  const std::string kfield = "metadata key #" + u2s(k);
  const std::string_view key = c.str(kfield, "key");
  if (key.empty()) throw BadInput(c.path(), kfield, "key has length 0");
  const std::string field = "key " + quote(key);
  GgufKv kv;
  kv.key = std::string(key);
  const uint32_t t = c.u32(field, "value type");
  if (t > kLastType) throw BadInput(c.path(), field, "value type " + u2s(t) + " is not a GGUF value type (0..12)");
  read_value(c, static_cast<GgufType>(t), field, nested, kv.value);
  return kv;
}

// general.alignment (UINT32, a power of two) when present, else 32.
uint64_t alignment_of(const std::string& path, const GgufValue* a) {
  if (a == nullptr) return kDefaultAlignment;
  const std::string field = "key 'general.alignment'";
  if (a->type != GgufType::UINT32) throw BadInput(path, field, "is " + a->type_str() + ", must be UINT32");
  if (a->u == 0 || (a->u & (a->u - 1)) != 0)
    throw BadInput(path, field, "alignment " + u2s(a->u) + " is not a power of two");
  return a->u;
}

// Tensor info #k: name, n_dims (1..4), dims, a known ggml type whose block divides ne[0], offset.
GgufTensorInfo read_tensor_info(Cursor& c, uint64_t k) {
  const std::string tfield = "tensor #" + u2s(k);
  const std::string_view name = c.str(tfield, "name");
  if (name.empty()) throw BadInput(c.path(), tfield, "name has length 0");
  const std::string field = "tensor " + quote(name);
  GgufTensorInfo t;
  t.name = std::string(name);
  const uint32_t n_dims = c.u32(field, "n_dims");
  if (n_dims == 0 || n_dims > kMaxDims) throw BadInput(c.path(), field, "n_dims " + u2s(n_dims) + " is outside 1..4");
  std::vector<uint64_t> ne;
  for (uint32_t d = 0; d < n_dims; ++d) {
    ne.push_back(c.u64(field, "dims"));
    if (ne.back() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw BadInput(c.path(), field, "dims[" + u2s(d) + "] = " + u2s(ne.back()) + " exceeds INT64_MAX");
  }
  t.type = c.u32(field, "type");
  const std::optional<GgmlTypeInfo> info = ggml_type_info(t.type);
  if (!info) throw BadInput(c.path(), field, "unknown ggml type " + u2s(t.type));
  std::tie(t.numel, t.nbytes) = tensor_size(c.path(), field, ne, *info);
  for (uint64_t d : ne) t.ne.push_back(static_cast<int64_t>(d));
  t.offset = c.u64(field, "offset");
  return t;
}

// Every tensor aligned, inside the data section of `data_size` bytes, and overlapping no other.
void check_tensor_ranges(const std::string& path, const std::vector<GgufTensorInfo>& tensors, uint64_t alignment,
                         uint64_t data_size) {
  for (const GgufTensorInfo& t : tensors) {
    const std::string field = "tensor " + quote(t.name);
    if (t.offset % alignment != 0)
      throw BadInput(path, field, "offset " + u2s(t.offset) + " is not a multiple of the alignment " + u2s(alignment));
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw BadInput(path, field, "data at offset " + u2s(t.offset) + " + " + u2s(t.nbytes) +
                                      " bytes runs past the end of the file (the data section holds " +
                                      u2s(data_size) + " bytes)");
  }
  std::vector<size_t> order(tensors.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(tensors[a].offset, tensors[a].nbytes, a) < std::tie(tensors[b].offset, tensors[b].nbytes, b);
  });
  const GgufTensorInfo* last = nullptr;  // of the tensors so far, the one ending last
  for (size_t k : order) {
    const GgufTensorInfo& t = tensors[k];
    if (t.nbytes == 0) continue;  // holds no bytes, overlaps nothing
    const uint64_t last_end = last == nullptr ? 0 : last->offset + last->nbytes;
    if (last != nullptr && t.offset < last_end)
      throw BadInput(path, "tensor " + quote(t.name),
                     "data [" + u2s(t.offset) + ", " + u2s(t.offset + t.nbytes) + ") overlaps tensor " +
                         quote(last->name) + " [" + u2s(last->offset) + ", " + u2s(last_end) + ")");
    if (last == nullptr || t.offset + t.nbytes > last_end) last = &t;
  }
}

std::string float_str(double f) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", f);
  return buf;
}

// An integer value as T when it is of an integer type and fits.
template <typename T>
std::optional<T> int_as(const GgufValue& v) {
  constexpr T lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  if (is_uint(v.type)) {
    if (v.u > static_cast<uint64_t>(hi)) return std::nullopt;
    return static_cast<T>(v.u);
  }
  if (is_sint(v.type)) {
    if (v.i < 0) {
      if (v.i < static_cast<int64_t>(lo)) return std::nullopt;
    } else if (static_cast<uint64_t>(v.i) > static_cast<uint64_t>(hi)) {
      return std::nullopt;
    }
    return static_cast<T>(v.i);
  }
  return std::nullopt;
}

template <typename T>
T int_or_throw(const std::string& path, const std::string& field, const GgufValue& v, const char* want) {
  if (std::optional<T> r = int_as<T>(v)) return *r;
  if (is_uint(v.type) || is_sint(v.type))
    throw BadInput(path, field, v.type_str() + " value " + v.to_string() + " does not fit " + want);
  throw BadInput(path, field, "is " + v.type_str() + ", expected an integer type whose value fits " + want);
}

constexpr size_t kRenderBudget = 4096;  // characters of one rendered value, before it is cut short

// Appends v to out: scalars in full (strings cut at 80 bytes), arrays as "[a, b, ... (N items)]" with
// at most max_items per level and about kRenderBudget characters in all.
void render_value(const GgufValue& v, size_t max_items, std::string& out) {
  switch (v.type) {
    case GgufType::UINT8: case GgufType::UINT16: case GgufType::UINT32: case GgufType::UINT64: out += u2s(v.u); return;
    case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64:
      out += std::to_string(v.i);
      return;
    case GgufType::FLOAT32: case GgufType::FLOAT64: out += float_str(v.f); return;
    case GgufType::BOOL: out += v.u ? "true" : "false"; return;
    case GgufType::STRING: out += "\"" + printable(v.str, 80) + "\""; return;
    case GgufType::ARRAY: break;
  }
  out += "[";
  const uint64_t shown = std::min<uint64_t>(v.count, max_items);
  uint64_t k = 0;
  for (; k < shown && out.size() < kRenderBudget; ++k) {
    if (k != 0) out += ", ";
    if (v.elem_type == GgufType::ARRAY) {
      render_value(v.arrays[static_cast<size_t>(k)], max_items, out);
    } else {
      render_value(v.element(k), max_items, out);
    }
  }
  if (k < v.count) out += std::string(k != 0 ? ", " : "") + "... (" + u2s(v.count) + " items)";
  out += "]";
}

}  // namespace

// ---------------------------------------------------------------- values

const char* gguf_type_name(GgufType t) {
  static const char* const kNames[] = {"UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32", "FLOAT32",
                                       "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
  const auto k = static_cast<uint32_t>(t);
  return k <= kLastType ? kNames[k] : "?";
}

GgufValue GgufValue::element(uint64_t k) const {
  if (type != GgufType::ARRAY || k >= count)
    throw std::out_of_range("GgufValue::element(" + u2s(k) + ") of a " + type_str() + " of " + u2s(count));
  if (elem_type == GgufType::ARRAY) return arrays[static_cast<size_t>(k)];
  GgufValue e;
  e.type = elem_type;
  if (elem_type == GgufType::STRING) {
    e.str = strings[static_cast<size_t>(k)];
  } else {
    decode_scalar(elem_type, elems + k * fixed_size(elem_type), e);
  }
  return e;
}

std::string GgufValue::type_str() const {
  if (type != GgufType::ARRAY) return gguf_type_name(type);
  if (elem_type != GgufType::ARRAY) return std::string("ARRAY[") + gguf_type_name(elem_type) + "]";
  // the inner type of an array of arrays: that of its first element, when it has one
  return "ARRAY[" + (arrays.empty() ? std::string("ARRAY") : arrays[0].type_str()) + "]";
}

std::string GgufValue::to_string(size_t max_items) const {
  std::string out;
  render_value(*this, max_items, out);
  return out;
}

std::vector<int64_t> GgufTensorInfo::shape() const { return {ne.rbegin(), ne.rend()}; }

// ---------------------------------------------------------------- GgufFile

GgufFile::GgufFile(const std::string& path)
    : path_(path), file_(path, 4, "magic", "the 4-byte magic \"GGUF\""), size_(file_.size()) {
  parse();
}

GgufFile::~GgufFile() = default;

void GgufFile::parse() {
  Cursor c(path_, file_.data(), size_);
  version_ = read_magic_and_version(c);
  const uint64_t tensor_count = c.u64("tensor_count", "tensor_count");
  const uint64_t kv_count = c.u64("kv_count", "kv_count");
  check_count(c, "kv_count", kv_count, kMinKvBytes, "metadata entries", "header");
  check_count(c, "tensor_count", tensor_count, kMinTensorInfoBytes, "tensor infos", "header");

  uint64_t nested = 0;  // arrays inside arrays
  for (uint64_t k = 0; k < kv_count; ++k) {
    GgufKv kv = read_kv(c, k, nested);
    if (!kv_index_.emplace(kv.key, kvs_.size()).second)
      throw BadInput(path_, "key " + quote(kv.key), "key appears more than once in the metadata");
    kvs_.push_back(std::move(kv));
  }
  alignment_ = alignment_of(path_, find("general.alignment"));

  check_count(c, "tensor_count", tensor_count, kMinTensorInfoBytes, "tensor infos", "metadata");
  tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t k = 0; k < tensor_count; ++k) {
    GgufTensorInfo t = read_tensor_info(c, k);
    auto [it, fresh] = tensor_index_.emplace(t.name, tensors_.size());
    if (!fresh)
      throw BadInput(path_, "tensor " + quote(t.name),
                     "name appears more than once (tensors #" + u2s(it->second) + " and #" + u2s(k) + ")");
    tensors_.push_back(std::move(t));
  }

  const uint64_t header_end = c.pos();
  data_offset_ = header_end + (alignment_ - header_end % alignment_) % alignment_;
  if (tensors_.empty()) return;  // the data section may then be absent
  if (data_offset_ > size_)
    throw BadInput(path_, "data section", "starts at byte " + u2s(data_offset_) + " (the header ends at " +
                                              u2s(header_end) + ", aligned to " + u2s(alignment_) +
                                              "), past the end of the file (" + u2s(size_) + " bytes)");
  check_tensor_ranges(path_, tensors_, alignment_, size_ - data_offset_);
}

std::string GgufFile::field_of_key(const std::string& key) const { return "key " + quote(key); }

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufValue& GgufFile::value(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw BadInput(path_, field_of_key(key), "missing from the metadata");
  return *v;
}

uint32_t GgufFile::get_u32(const std::string& key) const {
  return int_or_throw<uint32_t>(path_, field_of_key(key), value(key), "UINT32");
}
uint64_t GgufFile::get_u64(const std::string& key) const {
  return int_or_throw<uint64_t>(path_, field_of_key(key), value(key), "UINT64");
}
int32_t GgufFile::get_i32(const std::string& key) const {
  return int_or_throw<int32_t>(path_, field_of_key(key), value(key), "INT32");
}
int64_t GgufFile::get_i64(const std::string& key) const {
  return int_or_throw<int64_t>(path_, field_of_key(key), value(key), "INT64");
}

double GgufFile::get_f64(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::FLOAT32 && v.type != GgufType::FLOAT64)
    throw BadInput(path_, field_of_key(key), "is " + v.type_str() + ", expected FLOAT64 or FLOAT32");
  return v.f;
}

float GgufFile::get_f32(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::FLOAT32 && v.type != GgufType::FLOAT64)
    throw BadInput(path_, field_of_key(key), "is " + v.type_str() + ", expected FLOAT32 or FLOAT64");
  if (std::isfinite(v.f) && std::fabs(v.f) > static_cast<double>(FLT_MAX))
    throw BadInput(path_, field_of_key(key), "FLOAT64 value " + v.to_string() + " does not fit FLOAT32");
  return static_cast<float>(v.f);
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::BOOL) throw BadInput(path_, field_of_key(key), "is " + v.type_str() + ", expected BOOL");
  return v.u != 0;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::STRING) throw BadInput(path_, field_of_key(key), "is " + v.type_str() + ", expected STRING");
  return std::string(v.str);
}

const std::vector<std::string_view>& GgufFile::get_string_array_view(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::ARRAY || v.elem_type != GgufType::STRING)
    throw BadInput(path_, field_of_key(key), "is " + v.type_str() + ", expected ARRAY[STRING]");
  return v.strings;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const std::vector<std::string_view>& views = get_string_array_view(key);
  return {views.begin(), views.end()};
}

std::vector<int32_t> GgufFile::get_i32_array(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::ARRAY || !(is_uint(v.elem_type) || is_sint(v.elem_type)))
    throw BadInput(path_, field_of_key(key),
                   "is " + v.type_str() + ", expected ARRAY[INT32] (or of another integer type)");
  std::vector<int32_t> out(static_cast<size_t>(v.count));
  for (uint64_t k = 0; k < v.count; ++k) {
    const GgufValue e = v.element(k);
    const std::optional<int32_t> r = int_as<int32_t>(e);
    if (!r)
      throw BadInput(path_, field_of_key(key), "element " + u2s(k) + ": " + e.type_str() + " value " + e.to_string() +
                                                   " does not fit INT32");
    out[static_cast<size_t>(k)] = *r;
  }
  return out;
}

std::vector<float> GgufFile::get_f32_array(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::ARRAY || (v.elem_type != GgufType::FLOAT32 && v.elem_type != GgufType::FLOAT64))
    throw BadInput(path_, field_of_key(key), "is " + v.type_str() + ", expected ARRAY[FLOAT32] or ARRAY[FLOAT64]");
  std::vector<float> out(static_cast<size_t>(v.count));
  for (uint64_t k = 0; k < v.count; ++k) {
    const double x = v.element(k).f;
    if (std::isfinite(x) && std::fabs(x) > static_cast<double>(FLT_MAX))
      throw BadInput(path_, field_of_key(key), "element " + u2s(k) + ": FLOAT64 value " + float_str(x) +
                                                   " does not fit FLOAT32");
    out[static_cast<size_t>(k)] = static_cast<float>(x);
  }
  return out;
}

std::vector<std::string> GgufFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const GgufTensorInfo& t : tensors_) out.push_back(t.name);
  return out;
}

const GgufTensorInfo& GgufFile::info(const std::string& name) const {
  auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) throw BadInput(path_, "tensor " + quote(name), "no such tensor in this file");
  return tensors_[it->second];
}

const uint8_t* GgufFile::data(const std::string& name) const {
  const GgufTensorInfo& t = info(name);
  return file_.data() + data_offset_ + t.offset;
}

std::string GgufFile::describe() const {
  std::ostringstream s;
  s << "GGUF v" << version_ << " " << path_ << ": " << size_ << " bytes, alignment " << alignment_
    << ", data section at byte " << data_offset_ << "\n";
  s << "metadata: " << kvs_.size() << " keys\n";
  for (const GgufKv& kv : kvs_)
    s << "  " << printable(kv.key, 160) << ": " << kv.value.type_str() << " = " << kv.value.to_string() << "\n";
  s << "tensors: " << tensors_.size() << "\n";
  for (const GgufTensorInfo& t : tensors_) {
    s << "  " << printable(t.name, 160) << ": " << ggml_type_name(t.type) << " ne [";
    for (size_t d = 0; d < t.ne.size(); ++d) s << (d ? ", " : "") << t.ne[d];
    s << "], offset " << t.offset << ", " << t.nbytes << " bytes\n";
  }
  return s.str();
}

// ---------------------------------------------------------------- GgufWriter

namespace {

void put_le(std::string& b, uint64_t v, unsigned n) {
  for (unsigned k = 0; k < n; ++k) b.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

std::string le_bytes(uint64_t v, unsigned n) {
  std::string b;
  put_le(b, v, n);
  return b;
}

void put_str(std::string& b, std::string_view s) {
  put_le(b, s.size(), 8);
  b.append(s);
}


// The bytes of a tensor to write (n_dims 1..4, dims >= 0, a known type whose block divides ne[0]),
// which must equal `given`.
uint64_t checked_tensor_bytes(const std::string& path, const std::string& name, uint32_t type,
                              const std::vector<int64_t>& dims, uint64_t given) {
  const std::string field = "tensor " + quote(name);
  if (dims.empty() || dims.size() > kMaxDims)
    throw BadInput(path, field, "n_dims " + u2s(dims.size()) + " is outside 1..4");
  std::vector<uint64_t> ne;
  for (int64_t d : dims) {
    if (d < 0) throw BadInput(path, field, "dims: negative dimension " + std::to_string(d));
    ne.push_back(static_cast<uint64_t>(d));
  }
  const std::optional<GgmlTypeInfo> info = ggml_type_info(type);
  if (!info) throw BadInput(path, field, "unknown ggml type " + u2s(type));
  const uint64_t nbytes = tensor_size(path, field, ne, *info).second;
  if (given != nbytes)
    throw BadInput(path, field, "given " + u2s(given) + " bytes but " + info->name + " dims " + dims_str(ne) +
                                    " needs " + u2s(nbytes));
  return nbytes;
}

}  // namespace

using Value = GgufWriter::Value;

Value Value::u8(uint8_t v) { return Value(GgufType::UINT8, le_bytes(v, 1)); }
Value Value::i8(int8_t v) { return Value(GgufType::INT8, le_bytes(bit_cast_as<uint8_t>(v), 1)); }
Value Value::u16(uint16_t v) { return Value(GgufType::UINT16, le_bytes(v, 2)); }
Value Value::i16(int16_t v) { return Value(GgufType::INT16, le_bytes(bit_cast_as<uint16_t>(v), 2)); }
Value Value::u32(uint32_t v) { return Value(GgufType::UINT32, le_bytes(v, 4)); }
Value Value::i32(int32_t v) { return Value(GgufType::INT32, le_bytes(bit_cast_as<uint32_t>(v), 4)); }
Value Value::f32(float v) { return Value(GgufType::FLOAT32, le_bytes(bit_cast_as<uint32_t>(v), 4)); }
Value Value::boolean(bool v) { return Value(GgufType::BOOL, le_bytes(v ? 1 : 0, 1)); }
Value Value::u64(uint64_t v) { return Value(GgufType::UINT64, le_bytes(v, 8)); }
Value Value::i64(int64_t v) { return Value(GgufType::INT64, le_bytes(bit_cast_as<uint64_t>(v), 8)); }
Value Value::f64(double v) { return Value(GgufType::FLOAT64, le_bytes(bit_cast_as<uint64_t>(v), 8)); }
Value Value::str(std::string_view v) {
  std::string b;
  put_str(b, v);
  return Value(GgufType::STRING, b);
}

Value Value::array(GgufType elem_type, const std::vector<Value>& items) {
  if (static_cast<uint32_t>(elem_type) > kLastType)
    throw std::invalid_argument("GgufWriter::Value::array: element type " + u2s(static_cast<uint32_t>(elem_type)));
  std::string b;
  put_le(b, static_cast<uint32_t>(elem_type), 4);
  put_le(b, items.size(), 8);
  for (size_t k = 0; k < items.size(); ++k) {
    if (items[k].type_ != elem_type)
      throw std::invalid_argument("GgufWriter::Value::array: item " + u2s(k) + " is " + gguf_type_name(items[k].type_) +
                                  ", not " + gguf_type_name(elem_type));
    b += items[k].bytes_;
  }
  return Value(GgufType::ARRAY, b);
}

Value Value::str_array(const std::vector<std::string>& v) {
  std::string b;
  put_le(b, static_cast<uint32_t>(GgufType::STRING), 4);
  put_le(b, v.size(), 8);
  for (const std::string& s : v) put_str(b, s);
  return Value(GgufType::ARRAY, b);
}

Value Value::i32_array(const std::vector<int32_t>& v) {
  std::string b;
  put_le(b, static_cast<uint32_t>(GgufType::INT32), 4);
  put_le(b, v.size(), 8);
  for (int32_t x : v) put_le(b, bit_cast_as<uint32_t>(x), 4);
  return Value(GgufType::ARRAY, b);
}

Value Value::f32_array(const std::vector<float>& v) {
  std::string b;
  put_le(b, static_cast<uint32_t>(GgufType::FLOAT32), 4);
  put_le(b, v.size(), 8);
  for (float x : v) put_le(b, bit_cast_as<uint32_t>(x), 4);
  return Value(GgufType::ARRAY, b);
}

void GgufWriter::add(const std::string& key, const Value& v) {
  if (key == "general.alignment") {
    if (v.type() != GgufType::UINT32)
      throw std::invalid_argument(std::string("GgufWriter: general.alignment must be UINT32, not ") +
                                  gguf_type_name(v.type()));
    set_alignment(static_cast<uint32_t>(load_le(reinterpret_cast<const uint8_t*>(v.encoded().data()), 4)));
    return;
  }
  kvs_.emplace_back(key, v);
}

void GgufWriter::add_tensor(const std::string& name, uint32_t ggml_type, std::vector<int64_t> ne,
                            std::vector<uint8_t> bytes) {
  tensors_.push_back({name, ggml_type, std::move(ne), std::move(bytes)});
}

void GgufWriter::add_tensor_f32(const std::string& name, std::vector<int64_t> ne, const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  for (size_t k = 0; k < values.size(); ++k) {
    const uint32_t b = f32_bits(values[k]);
    for (unsigned j = 0; j < 4; ++j) bytes[4 * k + j] = static_cast<uint8_t>(b >> (8 * j));
  }
  add_tensor(name, static_cast<uint32_t>(GgmlType::F32), std::move(ne), std::move(bytes));
}

void GgufWriter::add_tensor_f16(const std::string& name, std::vector<int64_t> ne, const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 2);
  for (size_t k = 0; k < values.size(); ++k) {
    const uint16_t h = f32_to_f16_bits(values[k]);
    bytes[2 * k] = static_cast<uint8_t>(h & 0xff);
    bytes[2 * k + 1] = static_cast<uint8_t>(h >> 8);
  }
  add_tensor(name, static_cast<uint32_t>(GgmlType::F16), std::move(ne), std::move(bytes));
}

std::string GgufWriter::layout(const std::string& path, std::vector<uint64_t>& offsets) const {
  if (version_ != 2 && version_ != 3)
    throw BadInput(path, "version", "GgufWriter writes versions 2 and 3, not " + u2s(version_));
  const uint64_t align = alignment_;
  if (align == 0 || (align & (align - 1)) != 0)
    throw BadInput(path, "key 'general.alignment'", "alignment " + u2s(align) + " is not a power of two");

  std::string h = "GGUF";
  put_le(h, version_, 4);
  put_le(h, tensors_.size(), 8);
  put_le(h, kvs_.size() + (explicit_alignment_ ? 1 : 0), 8);
  if (explicit_alignment_) {
    put_str(h, "general.alignment");
    put_le(h, static_cast<uint32_t>(GgufType::UINT32), 4);
    put_le(h, alignment_, 4);
  }
  std::set<std::string> seen;
  for (size_t k = 0; k < kvs_.size(); ++k) {
    const auto& [key, v] = kvs_[k];
    if (key.empty()) throw BadInput(path, "metadata key #" + u2s(k), "key has length 0");
    if (!seen.insert(key).second) throw BadInput(path, "key " + quote(key), "key given more than once");
    put_str(h, key);
    put_le(h, static_cast<uint32_t>(v.type()), 4);
    h += v.encoded();
  }

  seen.clear();
  offsets.clear();
  uint64_t pos = 0;  // in the data section
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Tensor& t = tensors_[k];
    if (t.name.empty()) throw BadInput(path, "tensor #" + u2s(k), "name has length 0");
    if (!seen.insert(t.name).second) throw BadInput(path, "tensor " + quote(t.name), "name given more than once");
    const uint64_t nbytes = checked_tensor_bytes(path, t.name, t.type, t.ne, t.bytes.size());
    pos += (align - pos % align) % align;
    offsets.push_back(pos);
    pos += nbytes;
    put_str(h, t.name);
    put_le(h, t.ne.size(), 4);
    for (int64_t d : t.ne) put_le(h, static_cast<uint64_t>(d), 8);
    put_le(h, t.type, 4);
    put_le(h, offsets.back(), 8);
  }
  h.append((align - h.size() % align) % align, '\0');
  return h;
}

void GgufWriter::write(const std::string& path) const {
  std::vector<uint64_t> offsets;  // (tensors) in the data section
  const std::string header = layout(path, offsets);
  AtomicFile f(path);
  f.write(header);
  uint64_t at = 0;  // bytes of the data section written
  for (size_t k = 0; k < tensors_.size(); ++k) {
    f.write_zeros(offsets[k] - at);
    f.write(tensors_[k].bytes.data(), tensors_[k].bytes.size());
    at = offsets[k] + tensors_[k].bytes.size();
  }
  f.commit();
}

}  // namespace minfer
