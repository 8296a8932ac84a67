// engine/core/safetensors.cpp: the safetensors reader (mmap + a header validated field by field),
// checkpoint sources over one file / a model.safetensors directory / an index.json with shards,
// and the streaming writer. Every malformed-file case ends in BadInput(file, field, detail).
// Layout of a file: u64 little-endian N | N bytes of UTF-8 JSON header | data section (D bytes).
#include "engine/core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/core/atomic_file.h"
#include "engine/core/error.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo { const char* name; size_t size; };
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"I16", 2},  {"U16", 2}, {"I32", 4},     {"U32", 4},
    {"I64", 8},  {"U64", 8}, {"F16", 2}, {"BF16", 2}, {"F32", 4}, {"F64", 8},     {"F8_E4M3", 1},
    {"F8_E5M2", 1},
};

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parses the header text, failing on any object (at any depth) that repeats a key:
// nlohmann::json would silently keep one of them.
json parse_header_json(const std::string& path, const char* text, size_t n) {
  std::vector<std::set<std::string>> open_objects;  // keys seen so far, one set per open object
  std::string duplicate;
  auto cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) open_objects.emplace_back();
    if (ev == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (ev == json::parse_event_t::key && !open_objects.empty() && duplicate.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, text + n, cb);
  } catch (const json::exception& e) {
    throw BadInput(path, "header", std::string("not valid UTF-8 JSON: ") + e.what());
  }
  if (!duplicate.empty()) throw BadInput(path, duplicate, "name appears more than once in the header");
  if (!j.is_object()) throw BadInput(path, "header", std::string("JSON is a ") + j.type_name() + ", not an object");
  return j;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& m) {
  if (!m.is_object()) throw BadInput(path, "__metadata__", "must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) throw BadInput(path, "__metadata__." + k, "value must be a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

// A JSON number that is a non-negative integer, or nullopt.
std::optional<uint64_t> as_uint(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

std::vector<int64_t> parse_shape(const std::string& path, const std::string& name, const json& s) {
  const std::string field = name + ".shape";
  if (!s.is_array()) throw BadInput(path, field, "must be an array of non-negative integers");
  std::vector<int64_t> shape;
  for (const auto& d : s) {
    auto u = as_uint(d);
    if (!u) throw BadInput(path, field, "dimension " + d.dump() + " is not a non-negative integer");
    if (*u > static_cast<uint64_t>(INT64_MAX)) throw BadInput(path, field, "dimension " + d.dump() + " is too large");
    shape.push_back(static_cast<int64_t>(*u));
  }
  return shape;
}

// Bytes of a tensor, or BadInput if numel * dtype size overflows 64 bits.
uint64_t tensor_bytes(const std::string& path, const std::string& name, const std::vector<int64_t>& shape,
                      size_t esize) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      throw BadInput(path, name + ".shape", "element count of " + shape_str(shape) + " overflows 64 bits");
  }
  if (n > static_cast<uint64_t>(INT64_MAX))
    throw BadInput(path, name + ".shape", "element count of " + shape_str(shape) + " overflows int64");
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(esize), &bytes))
    throw BadInput(path, name + ".shape", "byte size of " + shape_str(shape) + " overflows 64 bits");
  return bytes;
}

std::pair<uint64_t, uint64_t> parse_offsets(const std::string& path, const std::string& name, const json& o,
                                            uint64_t data_size) {
  const std::string field = name + ".data_offsets";
  if (!o.is_array() || o.size() != 2) throw BadInput(path, field, "must be [begin, end]");
  auto b = as_uint(o[0]), e = as_uint(o[1]);
  if (!b || !e) throw BadInput(path, field, "offsets must be non-negative integers, got " + o.dump());
  if (*b > *e) throw BadInput(path, field, "begin " + std::to_string(*b) + " > end " + std::to_string(*e));
  if (*e > data_size)
    throw BadInput(path, field, "end " + std::to_string(*e) + " is past the data section (" +
                                    std::to_string(data_size) + " bytes)");
  return {*b, *e};
}

// Sorted by begin, the tensors must tile [0, data_size) exactly: no gap, no overlap, nothing after.
void check_tiling(const std::string& path, const std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>>& spans,
                  uint64_t data_size) {
  uint64_t pos = 0;
  std::string prev;
  for (const auto& [name, be] : spans) {
    const std::string field = name + ".data_offsets";
    if (be.first < pos)
      throw BadInput(path, field, "begin " + std::to_string(be.first) + " overlaps tensor " + prev +
                                      " (which ends at " + std::to_string(pos) + ")");
    if (be.first > pos) {
      if (prev.empty()) throw BadInput(path, field, "first tensor starts at " + std::to_string(be.first) + ", not 0");
      throw BadInput(path, field, "gap of " + std::to_string(be.first - pos) + " bytes after tensor " + prev);
    }
    pos = be.second;
    prev = name;
  }
  if (pos != data_size) {
    const std::string field = prev.empty() ? std::string("data") : prev + ".data_offsets";
    throw BadInput(path, field, "tensors end at byte " + std::to_string(pos) + " of the data section but the file holds " +
                                    std::to_string(data_size) + " (trailing bytes)");
  }
}


}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.size;
  return 0;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), file_(path, 8, "header length", "the 8-byte header length") {
  const size_t size = file_.size();
  {
    const uint8_t* base = file_.data();
    const uint64_t n = read_le_u64(base);
    if (n > kMaxHeaderBytes)
      throw BadInput(path, "header length", std::to_string(n) + " bytes exceeds the 100,000,000-byte limit");
    if (n > size - 8)
      throw BadInput(path, "header length", std::to_string(n) + " bytes runs past the end of the file (" +
                                               std::to_string(size) + " bytes)");
    const uint64_t data_size = size - 8 - n;
    data_base_ = base + 8 + n;
    json j = parse_header_json(path, reinterpret_cast<const char*>(base + 8), n);

    std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> spans;
    for (const auto& [name, e] : j.items()) {
      if (name == "__metadata__") { metadata_ = parse_metadata(path, e); continue; }
      if (!e.is_object()) throw BadInput(path, name, "entry must be an object {dtype, shape, data_offsets}");
      for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!e.contains(key)) throw BadInput(path, name + "." + key, "missing");
      const json& dt = e["dtype"];
      if (!dt.is_string()) throw BadInput(path, name + ".dtype", "must be a string");
      Entry ent;
      ent.meta.dtype = dt.get<std::string>();
      const size_t esize = safetensors_dtype_size(ent.meta.dtype);
      if (esize == 0) throw BadInput(path, name + ".dtype", "unknown dtype \"" + ent.meta.dtype + "\"");
      ent.meta.shape = parse_shape(path, name, e["shape"]);
      const uint64_t want = tensor_bytes(path, name, ent.meta.shape, esize);
      std::tie(ent.begin, ent.end) = parse_offsets(path, name, e["data_offsets"], data_size);
      if (ent.end - ent.begin != want)
        throw BadInput(path, name + ".data_offsets",
                       "holds " + std::to_string(ent.end - ent.begin) + " bytes but " + ent.meta.dtype + " " +
                           shape_str(ent.meta.shape) + " needs " + std::to_string(want));
      spans.push_back({name, {ent.begin, ent.end}});
      entries_.emplace(name, std::move(ent));
    }
    std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    check_tiling(path, spans, data_size);
  }
}

SafetensorsFile::~SafetensorsFile() = default;

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

const TensorMeta& SafetensorsFile::meta(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw BadInput(path_, name, "no such tensor in this file");
  return it->second.meta;
}

const uint8_t* SafetensorsFile::data(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw BadInput(path_, name, "no such tensor in this file");
  return data_base_ + it->second.begin;
}

size_t SafetensorsFile::nbytes(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw BadInput(path_, name, "no such tensor in this file");
  return static_cast<size_t>(it->second.end - it->second.begin);
}

namespace {

// The values of one tensor of `file` as float. Bytes may be unaligned (header length need not be a
// multiple of 8), so every element is read through memcpy.
std::vector<float> file_read_f32(const SafetensorsFile& file, const std::string& name) {
  const TensorMeta& m = file.meta(name);
  const uint8_t* p = file.data(name);  // (numel) elements of m.dtype
  const size_t n = static_cast<size_t>(m.numel());
  std::vector<float> out(n);
  if (m.dtype == "F32") {
    if (n != 0) std::memcpy(out.data(), p, n * 4);
  } else if (m.dtype == "F16" || m.dtype == "BF16") {
    const bool f16 = m.dtype == "F16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = f16 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h);
    }
  } else if (m.dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    throw BadInput(file.path(), name + ".dtype", m.dtype + " cannot be read as float (F32, F16, BF16, F64 only)");
  }
  return out;
}

// A source over one .safetensors file.
class SingleFileSource : public TensorSource {
 public:
  explicit SingleFileSource(const std::string& path) : file_(path) {}
  std::string describe() const override { return "checkpoint " + file_.path(); }
  std::vector<std::string> names() const override { return file_.names(); }
  std::optional<TensorMeta> meta(const std::string& name) const override {
    if (!file_.has(name)) return std::nullopt;
    return file_.meta(name);
  }
  std::string file_of(const std::string& name) const override { return file_.path(); }
  std::vector<float> read_f32(const std::string& name) const override { return file_read_f32(file_, name); }

 private:
  SafetensorsFile file_;
};

// A source over model.safetensors.index.json: each shard opened (and validated) once, up front.
class ShardedSource : public TensorSource {
 public:
  explicit ShardedSource(const std::string& dir);
  std::string describe() const override { return "checkpoint " + dir_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& [name, shard] : where_) out.push_back(name);
    return out;
  }
  std::optional<TensorMeta> meta(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) return std::nullopt;
    return it->second->meta(name);
  }
  std::string file_of(const std::string& name) const override {
    auto it = where_.find(name);
    return it == where_.end() ? index_path_ : it->second->path();
  }
  std::vector<float> read_f32(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) throw BadInput(index_path_, name, "not in weight_map");
    return file_read_f32(*it->second, name);
  }

 private:
  std::string dir_, index_path_;
  std::map<std::string, std::unique_ptr<SafetensorsFile>> shards_;  // shard file name -> file
  std::map<std::string, const SafetensorsFile*> where_;             // tensor name -> its shard
};

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput(path, "file", "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw BadInput(path, "file", std::string("not valid JSON: ") + e.what());
  }
}

// A shard name from the index must stay inside the checkpoint directory.
void check_shard_name(const std::string& index_path, const std::string& tensor, const std::string& shard) {
  const fs::path p(shard);
  bool bad = shard.empty() || p.is_absolute();
  for (const auto& part : p) bad = bad || part == "..";
  if (bad) throw BadInput(index_path, "weight_map." + tensor, "shard name \"" + shard + "\" is not a file inside the directory");
}

ShardedSource::ShardedSource(const std::string& dir)
    : dir_(dir), index_path_((fs::path(dir) / "model.safetensors.index.json").string()) {
  json j = read_json_file(index_path_);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw BadInput(index_path_, "weight_map", "missing or not an object of tensor name -> shard file");
  for (const auto& [name, v] : j["weight_map"].items()) {
    if (!v.is_string()) throw BadInput(index_path_, "weight_map." + name, "shard must be a file name string");
    const std::string shard = v.get<std::string>();
    check_shard_name(index_path_, name, shard);
    auto it = shards_.find(shard);
    if (it == shards_.end()) {
      const fs::path sp = fs::path(dir) / shard;
      if (!fs::is_regular_file(sp))
        throw BadInput(index_path_, "weight_map." + name, "shard file " + sp.string() + " does not exist");
      it = shards_.emplace(shard, std::make_unique<SafetensorsFile>(sp.string())).first;
    }
    if (!it->second->has(name))
      throw BadInput(it->second->path(), name, "listed in " + index_path_ + " but absent from this shard");
    where_[name] = it->second.get();
  }
}

}  // namespace

std::unique_ptr<TensorSource> open_checkpoint(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return std::make_unique<SingleFileSource>(path);
  if (!fs::is_directory(path, ec)) throw BadInput(path, "path", "no such file or directory");
  const fs::path dir(path);
  if (fs::exists(dir / "model.safetensors.index.json", ec)) return std::make_unique<ShardedSource>(path);
  if (fs::exists(dir / "model.safetensors", ec))
    return std::make_unique<SingleFileSource>((dir / "model.safetensors").string());
  throw BadInput(path, "model.safetensors", "directory holds neither model.safetensors nor model.safetensors.index.json");
}

namespace {

// The header JSON, laid out with data in the order given; padded with spaces to a multiple of 8.
std::string layout_header(const std::string& path, const std::vector<TensorToWrite>& tensors,
                          const std::map<std::string, std::string>& metadata, std::vector<uint64_t>& sizes) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t pos = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || !seen.insert(t.name).second)
      throw BadInput(path, t.name, "tensor name is reserved or given more than once");
    const size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) throw BadInput(path, t.name + ".dtype", "unknown dtype \"" + t.dtype + "\"");
    for (int64_t d : t.shape)
      if (d < 0) throw BadInput(path, t.name + ".shape", "negative dimension in " + shape_str(t.shape));
    const uint64_t bytes = tensor_bytes(path, t.name, t.shape, esize);
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {pos, pos + bytes}}};
    sizes.push_back(bytes);
    pos += bytes;
  }
  std::string s = h.dump();
  s.append((8 - s.size() % 8) % 8, ' ');
  return s;
}


}  // namespace

void write_safetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<uint64_t> sizes;
  const std::string header = layout_header(path, tensors, metadata, sizes);
  AtomicFile f(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  f.write(len, 8);
  f.write(header);
  std::vector<uint8_t> buf;  // (nbytes) of one tensor at a time
  for (size_t i = 0; i < tensors.size(); ++i) {
    buf.assign(sizes[i], 0);
    if (tensors[i].fill) tensors[i].fill(buf.data(), buf.size());
    f.write(buf.data(), buf.size());
  }
  f.commit();
}

}  // namespace minfer
