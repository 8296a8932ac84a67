// engine/core/gguf.h: GGUF reader (versions 2 and 3, little-endian) and a small GGUF writer.
// GgufFile memory-maps the file read-only and validates everything on construction; every malformed
// file ends in BadInput naming the file and the field ("m.gguf: tensor 'blk.0.attn_q.weight': dims
// [4294967296, 4294967296]: product overflows 64 bits"), never in a crash, an overflow or an
// allocation the file's size does not justify.
// Layout of a file (all little-endian; v2 and v3 are identical):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x  { string key | u32 value type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
//   padding to the alignment (general.alignment, UINT32, default 32) | data section
// A string is u64 length + bytes (no NUL); an ARRAY value is u32 element type + u64 count + elements.
// Limits beyond the format: arrays nest at most 8 deep, at most 65536 arrays sit inside arrays in one
// file, n_dims is 1..4, keys and tensor names are non-empty and unique. Gaps between tensors and
// bytes after the last one are allowed; overlaps are not.
// Dimension legend: ne[0] is the row length (fastest varying), ne[1] the number of rows, ...
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/ggml_types.h"
#include "engine/core/mapped_file.h"

namespace minfer {

// The metadata value types (GGUF numbering).
enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);  // "UINT32"; "?" for a value outside the enum

// One parsed metadata value. Scalars are widened; strings and fixed-size array elements stay in the
// file mapping (valid while the GgufFile that made them lives).
struct GgufValue {
  GgufType type = GgufType::UINT8;
  uint64_t u = 0;        // UINT8, UINT16, UINT32, UINT64; BOOL as 0 or 1
  int64_t i = 0;         // INT8, INT16, INT32, INT64
  double f = 0.0;        // FLOAT32 (exactly), FLOAT64
  std::string_view str;  // STRING
  // ARRAY only:
  GgufType elem_type = GgufType::UINT8;
  uint64_t count = 0;                     // number of elements
  const uint8_t* elems = nullptr;         // fixed-size elem_type: (count * size) bytes, little-endian, unaligned
  std::vector<std::string_view> strings;  // elem_type STRING: (count)
  std::vector<GgufValue> arrays;          // elem_type ARRAY: (count), each an ARRAY value

  // Element k of an ARRAY (k < count) as a value of its own; std::out_of_range past the end.
  GgufValue element(uint64_t k) const;
  std::string type_str() const;                        // "UINT32", "ARRAY[STRING]", "ARRAY[ARRAY[INT32]]"
  // For dumps: "42", "\"llama\"", "[1, 2, ... (9 items)]": at most max_items per array level, strings cut
  // at 80 bytes, about 4 KB in all.
  std::string to_string(size_t max_items = 8) const;
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // (n_dims) GGUF order: ne[0] = row length (fastest varying), ne[1] = rows, ...
  uint32_t type = 0;        // a GgmlType id, validated (ggml_type_info holds it)
  int64_t numel = 0;
  uint64_t nbytes = 0;      // numel / block_elems * block_bytes
  uint64_t offset = 0;      // from the start of the data section; a multiple of the alignment

  std::vector<int64_t> shape() const;  // row-major, ne reversed: {..., rows, cols}
  GgmlType ggml_type() const { return static_cast<GgmlType>(type); }
};

// One .gguf file, memory-mapped read-only. Construction validates the header, every metadata value,
// every tensor info, the alignment and the tensors' byte ranges (inside the file, aligned, no overlap).
class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file byte where the data section starts
  size_t file_size() const { return size_; }

  // Metadata. Getters throw BadInput(file, "key 'K'", ...) naming the key and the expected type when
  // the key is absent or its value has another type or does not fit.
  const std::vector<GgufKv>& metadata() const { return kvs_; }  // file order: every key with its value
  bool has(const std::string& key) const { return kv_index_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const;  // nullptr if absent
  const GgufValue& value(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;  // any integer type whose value fits
  uint64_t get_u64(const std::string& key) const;  // any integer type whose value fits
  int32_t get_i32(const std::string& key) const;   // any integer type whose value fits
  int64_t get_i64(const std::string& key) const;   // any integer type whose value fits
  float get_f32(const std::string& key) const;     // FLOAT32, or FLOAT64 within float range
  double get_f64(const std::string& key) const;    // FLOAT32 or FLOAT64
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  // Zero-copy: views into the mapping, valid while this file lives.
  const std::vector<std::string_view>& get_string_array_view(const std::string& key) const;
  std::vector<int32_t> get_i32_array(const std::string& key) const;  // integer elements that fit int32
  std::vector<float> get_f32_array(const std::string& key) const;    // FLOAT32 or FLOAT64 elements

  // Tensors. info/data throw BadInput(file, "tensor 'N'", ...) for an absent name.
  std::vector<std::string> names() const;  // file order
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // file order
  bool has_tensor(const std::string& name) const { return tensor_index_.count(name) != 0; }
  const GgufTensorInfo& info(const std::string& name) const;
  // (nbytes) raw bytes inside the mapping, aligned to min(alignment, page size).
  const uint8_t* data(const std::string& name) const;

  // Multi-line dump: version, sizes, kv count and every key with its type and value (long arrays
  // abridged), tensor count and every tensor with type, ne, offset and bytes.
  std::string describe() const;

 private:
  void parse();
  std::string field_of_key(const std::string& key) const;

  std::string path_;
  MappedFile file_;
  size_t size_ = 0;  // file_.size()
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string, size_t> kv_index_;  // key -> index in kvs_
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;  // name -> index in tensors_
};

// Writes a GGUF file (for tests now, and for tools later). Values and tensors are collected first;
// write() validates them (keys and names non-empty and unique, a power-of-two alignment, n_dims 1..4,
// known types, ne[0] a multiple of the block, byte counts matching) and throws BadInput naming the
// output file and the field, then writes path + ".tmp" and renames it.
class GgufWriter {
 public:
  // One value to write, built with the named constructors; arrays may nest.
  class Value {
   public:
    static Value u8(uint8_t v);
    static Value i8(int8_t v);
    static Value u16(uint16_t v);
    static Value i16(int16_t v);
    static Value u32(uint32_t v);
    static Value i32(int32_t v);
    static Value f32(float v);
    static Value boolean(bool v);
    static Value str(std::string_view v);
    static Value u64(uint64_t v);
    static Value i64(int64_t v);
    static Value f64(double v);
    // Every item must have type elem_type (std::invalid_argument otherwise).
    static Value array(GgufType elem_type, const std::vector<Value>& items);
    static Value str_array(const std::vector<std::string>& v);
    static Value i32_array(const std::vector<int32_t>& v);
    static Value f32_array(const std::vector<float>& v);

    GgufType type() const { return type_; }
    const std::string& encoded() const { return bytes_; }  // the value's bytes after its type tag

   private:
    Value(GgufType t, std::string bytes) : type_(t), bytes_(std::move(bytes)) {}
    GgufType type_;
    std::string bytes_;
  };

  explicit GgufWriter(uint32_t version = 3) : version_(version) {}

  // Written as general.alignment (UINT32); without a call the key is absent and the alignment is 32.
  void set_alignment(uint32_t alignment) { alignment_ = alignment; explicit_alignment_ = true; }
  // A UINT32 general.alignment is the same as set_alignment; any other type for it: std::invalid_argument.
  void add(const std::string& key, const Value& v);
  void add_tensor(const std::string& name, uint32_t ggml_type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);
  void add_tensor_f32(const std::string& name, std::vector<int64_t> ne, const std::vector<float>& values);
  void add_tensor_f16(const std::string& name, std::vector<int64_t> ne, const std::vector<float>& values);
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };
  // Validates everything and returns the header (padded to the alignment); offsets: (tensors) in the
  // data section.
  std::string layout(const std::string& path, std::vector<uint64_t>& offsets) const;

  uint32_t version_;
  uint32_t alignment_ = 32;
  bool explicit_alignment_ = false;
  std::vector<std::pair<std::string, Value>> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace minfer
