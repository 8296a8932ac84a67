// engine/core/presets.cpp: named model configs (tiny CPU-test models per family, the published HF
// shapes of real models, and synthetic mixtral-architecture "seed" models), their deterministic
// random weights (engine/core/rng.h), open_model ("preset:NAME" or a checkpoint path) and
// export_checkpoint (config.json + safetensors, sharded with an index past max_shard_bytes).
//
// Seed models (mixtral architecture, 8 experts, top-2, vocab 32000, rope theta 1e6, rms eps 1e-5):
//   seed-small : L 12, H  768, nh 12, nkv 4, hd  64, Im 2048, max_pos  4096   (~0.5B params)
//   seed-medium: L 24, H 1024, nh 16, nkv 4, hd  64, Im 2816, max_pos  4096   (~1.8B params)
//   seed-large : L 32, H 4096, nh 32, nkv 8, hd 128, Im 5632, max_pos 32768   (~19B params, ~39 GB bf16)
// GQA 3:1 / 4:1 / 4:1 as in current models; Im ~2.7x H for the small ones, and 1.375x H for the large
// one so that its bf16 weights fit one 80 GB GPU with room for the KV cache.
//
// Weight scales (uniform in +-a) keep activations O(1) through the layers:
//   linear (out, in): a = sqrt(3 / in) (unit variance out for unit variance in); norms: 1 +- 0.1;
//   biases: +-0.05; embed_tokens: +-1 (untied); lm_head and a tied embedding: a = 2 sqrt(3 / H), so
//   logits over a normalised hidden state have a standard deviation near 2 (not saturated).
#include "engine/core/presets.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/core/atomic_file.h"
#include "engine/core/error.h"
#include "engine/core/gguf_model.h"
#include "engine/core/rng.h"
#include "engine/core/safetensors.h"

namespace minfer {

namespace fs = std::filesystem;

namespace {

// ---- configs -------------------------------------------------------------------------------------

ModelConfig base(Arch a, const char* type, int L, int H, int I, int nh, int nkv, int hd, int V, int max_pos) {
  ModelConfig c;
  c.arch = a;
  c.model_type = type;
  c.layers = L;
  c.hidden = H;
  c.intermediate = I;
  c.heads = nh;
  c.kv_heads = nkv;
  c.head_dim = hd;
  c.vocab = V;
  c.max_position = max_pos;
  if (a == Arch::Qwen2) c.attention_bias = true;
  if (a == Arch::Qwen3 || a == Arch::Qwen3Moe) c.qk_norm = QkNorm::PerHead;
  if (a == Arch::Olmoe) c.qk_norm = QkNorm::Full;
  return c;
}

void set_moe(ModelConfig& c, int E, int k, int Im, bool norm_topk) {
  c.num_experts = E;
  c.top_k = k;
  c.moe_intermediate = Im;
  c.norm_topk_prob = norm_topk;
  c.router_order = c.arch == Arch::Mixtral ? RouterOrder::TopkThenSoftmax : RouterOrder::SoftmaxThenTopk;
  if (c.arch != Arch::Qwen3Moe) c.intermediate = 0;
}

void set_tokens(ModelConfig& c, int bos, int eos, DType dt) {
  c.bos_token_id = bos;
  c.eos_token_id = eos;
  c.torch_dtype = dt;
}

ModelConfig tiny(Arch a, const char* type) {
  ModelConfig c = base(a, type, 2, 64, 128, 4, 2, 16, 256, 1024);
  c.rms_eps = 1e-6;
  c.rope_theta = 10000.0;
  set_tokens(c, 1, 2, DType::F32);
  if (a == Arch::Qwen2) c.tie_embeddings = true;
  if (a == Arch::Mixtral) set_moe(c, 4, 2, 32, true);
  if (a == Arch::Olmoe) set_moe(c, 4, 2, 32, false);
  if (a == Arch::Qwen3Moe) {
    set_moe(c, 4, 2, 32, true);
    c.mlp_only_layers = {0};  // layer 0 dense (I 128), layer 1 MoE: both FFN kinds in one model
  }
  return c;
}

ModelConfig qwen3_0_6b() {
  ModelConfig c = base(Arch::Qwen3, "qwen3", 28, 1024, 3072, 16, 8, 128, 151936, 40960);
  c.rms_eps = 1e-6;
  c.rope_theta = 1e6;
  c.tie_embeddings = true;
  set_tokens(c, 151643, 151645, DType::BF16);
  return c;
}

ModelConfig qwen2_5_0_5b() {
  ModelConfig c = base(Arch::Qwen2, "qwen2", 24, 896, 4864, 14, 2, 64, 151936, 32768);
  c.rms_eps = 1e-6;
  c.rope_theta = 1e6;
  c.tie_embeddings = true;
  set_tokens(c, 151643, 151643, DType::BF16);
  return c;
}

ModelConfig llama_3_1_8b() {
  ModelConfig c = base(Arch::Llama, "llama", 32, 4096, 14336, 32, 8, 128, 128256, 131072);
  c.rms_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = RopeScaling{true, 8.0, 1.0, 4.0, 8192};
  set_tokens(c, 128000, 128001, DType::BF16);
  return c;
}

ModelConfig qwen3_30b_a3b() {
  ModelConfig c = base(Arch::Qwen3Moe, "qwen3_moe", 48, 2048, 6144, 32, 4, 128, 151936, 40960);
  c.rms_eps = 1e-6;
  c.rope_theta = 1e6;
  set_moe(c, 128, 8, 768, true);
  set_tokens(c, 151643, 151645, DType::BF16);
  return c;
}

ModelConfig mixtral_8x7b() {
  ModelConfig c = base(Arch::Mixtral, "mixtral", 32, 4096, 14336, 32, 8, 128, 32000, 32768);
  c.rms_eps = 1e-5;
  c.rope_theta = 1e6;
  set_moe(c, 8, 2, 14336, true);
  set_tokens(c, 1, 2, DType::BF16);
  return c;
}

ModelConfig olmoe_1b_7b() {
  ModelConfig c = base(Arch::Olmoe, "olmoe", 16, 2048, 1024, 16, 16, 128, 50304, 4096);
  c.rms_eps = 1e-5;
  c.rope_theta = 10000.0;
  set_moe(c, 64, 8, 1024, false);
  set_tokens(c, -1, 50279, DType::BF16);
  return c;
}

ModelConfig seed(int L, int H, int nh, int nkv, int Im, int max_pos) {
  ModelConfig c = base(Arch::Mixtral, "mixtral", L, H, Im, nh, nkv, H / nh, 32000, max_pos);
  c.rms_eps = 1e-5;
  c.rope_theta = 1e6;
  set_moe(c, 8, 2, Im, true);
  set_tokens(c, 1, 2, DType::BF16);
  return c;
}

const std::vector<std::pair<std::string, std::function<ModelConfig()>>>& table() {
  static const std::vector<std::pair<std::string, std::function<ModelConfig()>>> t = {
      {"tiny", [] { return tiny(Arch::Llama, "llama"); }},
      {"tiny-qwen2", [] { return tiny(Arch::Qwen2, "qwen2"); }},
      {"tiny-qwen3", [] { return tiny(Arch::Qwen3, "qwen3"); }},
      {"tiny-qwen3-moe", [] { return tiny(Arch::Qwen3Moe, "qwen3_moe"); }},
      {"tiny-mixtral", [] { return tiny(Arch::Mixtral, "mixtral"); }},
      {"tiny-olmoe", [] { return tiny(Arch::Olmoe, "olmoe"); }},
      {"qwen3-0.6b", qwen3_0_6b},
      {"qwen2.5-0.5b", qwen2_5_0_5b},
      {"llama-3.1-8b", llama_3_1_8b},
      {"qwen3-30b-a3b", qwen3_30b_a3b},
      {"mixtral-8x7b", mixtral_8x7b},
      {"olmoe-1b-7b", olmoe_1b_7b},
      {"seed-small", [] { return seed(12, 768, 12, 4, 2048, 4096); }},
      {"seed-medium", [] { return seed(24, 1024, 16, 4, 2816, 4096); }},
      {"seed-large", [] { return seed(32, 4096, 32, 8, 5632, 32768); }},
  };
  return t;
}

// ---- weights -------------------------------------------------------------------------------------

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Value = offset + scale * uniform(-1, 1).
struct Scale { float offset, scale; };

Scale scale_for(const std::string& name, const std::vector<int64_t>& shape, const ModelConfig& c) {
  const float head = 2.0f * std::sqrt(3.0f / static_cast<float>(c.hidden));
  if (ends_with(name, "norm.weight")) return {1.0f, 0.1f};  // every RMSNorm weight
  if (ends_with(name, ".bias")) return {0.0f, 0.05f};
  if (name == "lm_head.weight") return {0.0f, head};
  if (name == "model.embed_tokens.weight") return {0.0f, c.tie_embeddings ? head : 1.0f};
  const int64_t fan_in = shape.back();
  return {0.0f, std::sqrt(3.0f / static_cast<float>(fan_in))};
}

void generate(uint64_t key, Scale s, DType storage, float* out, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) out[i] = round_to(storage, s.offset + s.scale * rng::uniform_pm1(key, i));
}

class PresetSource : public TensorSource {
 public:
  PresetSource(std::string name, ModelConfig cfg, DType storage, uint64_t seed)
      : name_(std::move(name)), cfg_(std::move(cfg)), storage_(storage), seed_(seed) {
    for (const WeightSpec& s : weight_map(cfg_)) shapes_[s.hf_name] = s.shape;
  }
  std::string describe() const override { return "preset:" + name_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    out.reserve(shapes_.size());
    for (const auto& kv : shapes_) out.push_back(kv.first);
    return out;  // std::map: already sorted
  }
  std::optional<TensorMeta> meta(const std::string& name) const override {
    auto it = shapes_.find(name);
    if (it == shapes_.end()) return std::nullopt;
    const char* dt = storage_ == DType::F32 ? "F32" : storage_ == DType::F16 ? "F16" : "BF16";
    return TensorMeta{it->second, dt};
  }
  std::string file_of(const std::string&) const override { return describe(); }
  std::vector<float> read_f32(const std::string& name) const override;

 private:
  std::string name_;
  ModelConfig cfg_;
  DType storage_;
  uint64_t seed_;
  std::map<std::string, std::vector<int64_t>> shapes_;
};

std::vector<float> PresetSource::read_f32(const std::string& name) const {
  auto it = shapes_.find(name);
  if (it == shapes_.end()) throw BadInput(describe(), name, "missing");
  int64_t n = 1;
  for (int64_t d : it->second) n *= d;
  std::vector<float> out(static_cast<size_t>(n));
  const uint64_t key = rng::tensor_key(seed_, name);
  const Scale s = scale_for(name, it->second, cfg_);
  const size_t total = out.size();
  const size_t threads = total < (1u << 20) ? 1 : std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    pool.emplace_back(generate, key, s, storage_, out.data(), total * t / threads, total * (t + 1) / threads);
  }
  generate(key, s, storage_, out.data(), 0, total / threads);
  for (auto& th : pool) th.join();
  return out;
}

// ---- export --------------------------------------------------------------------------------------

const char* st_dtype(DType t) { return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16"; }

void write_text_atomic(const fs::path& path, const std::string& text) { write_file_atomic(path.string(), text); }

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

// Tensor names (in src order) grouped into shards of at most max_bytes (a larger tensor sits alone).
std::vector<std::vector<std::string>> plan_shards(const TensorSource& src, DType dtype, uint64_t max_bytes,
                                                  uint64_t* total) {
  std::vector<std::vector<std::string>> shards(1);
  uint64_t cur = 0;
  *total = 0;
  for (const std::string& name : src.names()) {
    auto m = src.meta(name);
    if (!m) throw BadInput(src.describe(), name, "listed but has no metadata");
    const uint64_t bytes = static_cast<uint64_t>(m->numel()) * dtype_size(dtype);
    if (max_bytes > 0 && cur > 0 && cur + bytes > max_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(name);
    cur += bytes;
    *total += bytes;
  }
  return shards;
}

void write_shard(const TensorSource& src, const std::vector<std::string>& names, const fs::path& path,
                 DType dtype) {
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : names) {
    TensorToWrite t;
    t.name = name;
    t.dtype = st_dtype(dtype);
    t.shape = src.meta(name)->shape;
    t.fill = [&src, name, dtype](uint8_t* dst, size_t nbytes) {
      std::vector<float> v = src.read_f32(name);
      if (v.size() * dtype_size(dtype) != nbytes) throw BadInput(src.file_of(name), name, "size changed during export");
      for (size_t i = 0; i < v.size(); ++i) store_as(dtype, dst, i, v[i]);
    };
    tensors.push_back(std::move(t));
  }
  write_safetensors(path.string(), std::move(tensors), {{"format", "pt"}});
}

// Removes weight files of an earlier export that the new one does not hold.
void remove_stale(const fs::path& dir, const std::vector<std::string>& keep) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string n = entry.path().filename().string();
    bool weights = (n.rfind("model", 0) == 0 && ends_with(n, ".safetensors")) || n == "model.safetensors.index.json";
    if (weights && std::find(keep.begin(), keep.end(), n) == keep.end()) fs::remove(entry.path());
  }
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (const auto& kv : table()) out.push_back(kv.first);
  return out;
}

ModelConfig preset_config(const std::string& name) {
  for (const auto& [n, make] : table()) {
    if (n != name) continue;
    ModelConfig c = make();
    validate_config(c, "preset:" + name);
    return c;
  }
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown preset \"" + name + "\" (known: " + known + ")");
}

std::unique_ptr<TensorSource> preset_source(const std::string& name, DType storage, uint64_t seed) {
  ModelConfig c = preset_config(name);
  if (seed == 0) seed = rng::fnv1a64("minfer-preset:" + name);
  return std::make_unique<PresetSource>(name, std::move(c), storage, seed);
}

std::unique_ptr<TensorSource> preset_source(const std::string& name, DType storage) {
  return preset_source(name, storage, 0);
}

LoadedModel open_model(const std::string& spec, DType storage, uint64_t seed) {
  LoadedModel m;
  m.spec = spec;
  const std::string prefix = "preset:";
  if (spec.rfind(prefix, 0) == 0) {
    std::string name = spec.substr(prefix.size());
    m.config = preset_config(name);
    m.source = preset_source(name, storage, seed);
    return m;
  }
  fs::path p(spec);
  if (!fs::exists(p))
    throw BadInput(spec, "(path)", "no such file or directory (expected a checkpoint, a .gguf file or preset:NAME)");
  if (is_gguf_path(spec) && fs::is_regular_file(p)) {
    auto file = std::make_shared<const GgufFile>(spec);
    m.config = config_from_gguf(*file);
    m.source = gguf_tensor_source(file, m.config);
    return m;
  }
  fs::path dir = fs::is_directory(p) ? p : p.parent_path();
  if (dir.empty()) dir = ".";
  m.config = load_config_json((dir / "config.json").string());
  m.source = open_checkpoint(spec);
  return m;
}

LoadedModel open_model(const std::string& spec, DType storage) { return open_model(spec, storage, 0); }

void export_checkpoint(const ModelConfig& cfg, const TensorSource& src, const std::string& out_dir, DType dtype,
                       uint64_t max_shard_bytes) {
  fs::path dir(out_dir);
  fs::create_directories(dir);
  uint64_t total = 0;
  auto shards = plan_shards(src, dtype, max_shard_bytes, &total);
  std::vector<std::string> files;
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < shards.size(); ++i) {
    files.push_back(shards.size() == 1 ? "model.safetensors" : shard_name(i, shards.size()));
    write_shard(src, shards[i], dir / files.back(), dtype);
    for (const auto& name : shards[i]) index["weight_map"][name] = files.back();
  }
  if (shards.size() > 1) {
    write_text_atomic(dir / "model.safetensors.index.json", index.dump(2) + "\n");
    files.push_back("model.safetensors.index.json");
  }
  ModelConfig out = cfg;
  out.torch_dtype = dtype;
  write_text_atomic(dir / "config.json", config_to_hf_json(out).dump(2) + "\n");
  remove_stale(dir, files);
}

}  // namespace minfer
