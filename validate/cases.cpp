// validate/cases.cpp: the case lists shared by validate_all and bench_all (DESIGN.md section 3).
// Each sweep lists odd sizes (1, 3, 17, 1023 tokens; hidden 896 and 1000; 14 heads over 2 KV heads)
// beside labelled real model shapes at 1..16384 tokens, in fp32, fp16 and bf16. The largest cases
// move hundreds of MB per launch so that bench measures bandwidth, not launch latency.
// quick: the cases marked quick below (a few odd sizes and one mid-size real shape per sweep).
// Whole-model sweeps: "model" (validate_all: tiny presets of each dense family in fp32 at batch 1
// and 3, prompts 1, 7, 33 and a ragged batch, a few decode steps; bf16 over 64 decode steps; one
// real-shape preset in the full list) and "e2e" (bench_all: four models x batch {1,4,16,32} x
// prompt {128,512,2048,8192}, bf16, 64 new tokens).
#include <algorithm>
#include <set>
#include <stdexcept>

#include "engine/core/error.h"
#include "validate/case.h"

namespace minfer::val {

namespace {

constexpr int kValidate = 1, kBench = 2;

// One shape of a sweep before it is multiplied by the three dtypes.
struct Shape {
  std::vector<int64_t> values;  // in sweep_axes(sweep) order
  std::string label;
  bool quick = false;
  int uses = kValidate | kBench;  // which drivers list it (CaseUse)
};

const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};
const int64_t kRealTokens[] = {1, 16, 256, 4096, 16384};  // real shapes at these token counts
const int64_t kOddTokens[] = {1, 3, 17, 1023};

// Real model shapes (hidden sizes, heads, vocab) used across the sweeps.
struct Model {
  const char* label;
  int64_t hidden, inter, heads, kv_heads, head_dim, vocab;
  bool qk_norm, llama3;
};
const Model kModels[] = {
    {"qwen3-0.6b", 1024, 3072, 16, 8, 128, 151936, true, false},
    {"qwen2.5-0.5b", 896, 4864, 14, 2, 64, 151936, false, false},
    {"llama-3.1-8b", 4096, 14336, 32, 8, 128, 128256, false, true},
    {"qwen3-30b-a3b", 2048, 768, 32, 4, 128, 151936, true, false},  // inter: one expert's
};

// A real shape is quick at 256 tokens for the first model only.
bool quick_real(const Model& m, int64_t t) { return &m == &kModels[0] && t == 256; }
bool quick_odd(int64_t t) { return t == 3 || t == 17; }

std::vector<Shape> norm_shapes() {
  std::vector<Shape> v;
  for (int64_t r : kOddTokens)
    for (int64_t h : {896, 1000})
      for (int64_t res : {0, 1}) v.push_back({{r, h, res}, "", quick_odd(r)});
  for (const Model& m : kModels)
    for (int64_t r : kRealTokens)
      for (int64_t res : {0, 1}) v.push_back({{r, m.hidden, res}, m.label, quick_real(m, r)});
  return v;
}

std::vector<Shape> rope_shapes() {
  std::vector<Shape> v;
  for (int64_t t : kOddTokens)
    for (int64_t qk : {0, 1}) v.push_back({{t, 14, 2, 64, qk, 0}, "", quick_odd(t)});
  for (int64_t t : {3, 17}) v.push_back({{t, 32, 8, 128, 0, 1}, "", t == 3});  // llama3 scaling, odd T
  for (int64_t t : {5, 1023}) v.push_back({{t, 8, 1, 256, 1, 0}, "", false});  // head_dim 256, MQA
  for (const Model& m : kModels)
    for (int64_t t : kRealTokens)
      v.push_back({{t, m.heads, m.kv_heads, m.head_dim, m.qk_norm ? 1 : 0, m.llama3 ? 1 : 0}, m.label,
                   quick_real(m, t)});
  return v;
}

std::vector<Shape> swiglu_shapes() {
  std::vector<Shape> v;
  for (int64_t r : kOddTokens)
    for (int64_t i : {896, 1000}) v.push_back({{r, i}, "", quick_odd(r)});
  for (const Model& m : kModels) {
    std::string label = m.label;
    if (label == "qwen3-30b-a3b") label += "-expert";
    for (int64_t r : kRealTokens) v.push_back({{r, m.inter}, label, quick_real(m, r)});
  }
  return v;
}

std::vector<Shape> embedding_shapes() {
  std::vector<Shape> v;
  for (int64_t t : kOddTokens) {
    v.push_back({{t, 1000, 896}, "", quick_odd(t)});
    v.push_back({{t, 32003, 1000}, "", false});
  }
  for (const Model& m : kModels)
    for (int64_t t : kRealTokens) v.push_back({{t, m.vocab, m.hidden}, m.label, quick_real(m, t)});
  return v;
}

// An odd size may coincide with a real shape (1 row of hidden 896 is also Qwen2.5-0.5B's): keep one
// case, with the label, quick if either was.
std::vector<Shape> dedupe(const std::vector<Shape>& in) {
  std::vector<Shape> out;
  for (const Shape& s : in) {
    auto same = std::find_if(out.begin(), out.end(), [&](const Shape& o) { return o.values == s.values; });
    if (same == out.end()) { out.push_back(s); continue; }
    if (same->label.empty()) same->label = s.label;
    same->quick = same->quick || s.quick;
    same->uses |= s.uses;
  }
  return out;
}

// model sweep, per preset: {batch, prompt_len, ragged, steps, flash}; fp32 a few steps with each
// attention backend (flash 1: the default; 0: simple), fp16 and bf16 64 steps with the default.
const char* const kModelPresets[] = {"tiny", "tiny-qwen2", "tiny-qwen3"};
constexpr int64_t kFp32Steps = 4, kBf16Steps = 64;

std::vector<Shape> model_shapes(DType dt) {
  std::vector<Shape> v;
  for (const char* p : kModelPresets) {
    if (dt == DType::F32) {
      for (int64_t flash : {1, 0}) {
        for (int64_t len : {1, 7, 33}) v.push_back({{1, len, 0, kFp32Steps, flash}, p, len == 7});
        for (int64_t len : {1, 7}) v.push_back({{3, len, 0, kFp32Steps, flash}, p, false});
        v.push_back({{3, 33, 1, kFp32Steps, flash}, p, true});  // prompts 33, 1, 7
      }
    } else {
      v.push_back({{1, 33, 0, kBf16Steps, 1}, p, false});
      v.push_back({{3, 33, 1, kBf16Steps, 1}, p, true});
    }
  }
  // A real shape (896 hidden, 14 heads over 2 KV heads, 151936 vocab); the scalar reference takes
  // about a minute for it, so it is in the full list only.
  if (dt == DType::F32) v.push_back({{1, 7, 0, 2, 1}, "qwen2.5-0.5b", false});
  return v;
}

// e2e sweep: {batch, prompt_len, new_tokens}; seed-medium is MoE (listed so that the CSV says why
// it has no numbers).
const char* const kE2eModels[] = {"qwen3-0.6b", "qwen2.5-0.5b", "llama-3.1-8b", "seed-medium"};
constexpr int64_t kE2eNewTokens = 64;  // step 1 eager, 63 graph steps timed

std::vector<Shape> e2e_shapes() {
  std::vector<Shape> v;
  for (const char* m : kE2eModels) {
    const std::string name = m;
    for (int64_t b : {1, 4, 16, 32})
      for (int64_t p : {128, 512, 2048, 8192}) {
        const bool quick = (b == 1 && p == 128) || (name == "qwen3-0.6b" && b == 16 && p == 512) ||
                           (name == "llama-3.1-8b" && b == 4 && p == 2048);
        v.push_back({{b, p, kE2eNewTokens}, m, quick});
      }
  }
  return v;
}

// attention (prefill) sweep: {batch, seqlen, heads, kv_heads, head_dim, causal, ragged, prefix}.
// Validate grid: batch 1, 3, 16 (ragged when > 1) x lengths 1..1000; 2048 at batch 1 and 3; 8192
// at batch 1 with the GQA head shapes only (the scalar reference is the cost; past 4e9 multiply-adds
// the runner checks sampled rows); chunked prefill (a cached prefix of 17 or 1000 tokens). Bench
// grid of issue 4: lengths 128..16384 x batch 1, 4, 16, 32 (at most 32768 tokens per launch) x heads
// 8, 16, 32 (MHA) x head_dim 64, 128 x causal, uniform lengths.
struct HeadShape { int64_t heads, kv_heads; };
const HeadShape kAttnHeads[] = {{16, 16}, {14, 2}, {32, 8}};

std::vector<Shape> attention_shapes() {
  std::vector<Shape> v;
  for (const HeadShape& h : kAttnHeads)
    for (int64_t hd : {64, 128})
      for (int64_t causal : {0, 1}) {
        for (int64_t b : {1, 3, 16})
          for (int64_t s : {1, 17, 128, 1000})
            v.push_back({{b, s, h.heads, h.kv_heads, hd, causal, b > 1 ? 1 : 0, 0}, "",
                         h.heads == 14 && hd == 64 && causal == 1 && ((b == 1 && s == 17) || (b == 3 && s == 128))});
        for (int64_t b : {1, 3}) v.push_back({{b, 2048, h.heads, h.kv_heads, hd, causal, b > 1 ? 1 : 0, 0}, "", false});
        if (h.heads != h.kv_heads) v.push_back({{1, 8192, h.heads, h.kv_heads, hd, causal, 0, 0}, "", false});
        for (int64_t s : {1, 17, 128})
          for (int64_t prefix : {17, 1000})
            v.push_back({{3, s, h.heads, h.kv_heads, hd, causal, 1, prefix}, "",
                         h.heads == 32 && hd == 128 && causal == 1 && s == 17 && prefix == 1000});
      }
  v.push_back({{3, 128, 16, 16, 128, 1, 0, 0}, "", true});  // uniform batch, MHA
  for (Shape& s : v) s.uses = s.quick ? kValidate | kBench : kValidate;
  for (int64_t s : {128, 512, 1024, 2048, 4096, 8192, 16384})
    for (int64_t b : {1, 4, 16, 32}) {
      if (b * s > 32768) continue;
      for (int64_t h : {8, 16, 32})
        for (int64_t hd : {64, 128})
          for (int64_t causal : {0, 1}) v.push_back({{b, s, h, h, hd, causal, 0, 0}, "", false, kBench});
    }
  return v;
}

// decode sweep: {batch, kv_len, heads, kv_heads, head_dim, paged, ragged}. Validate grid: batch 1,
// 3, 16 (ragged when > 1) x cache 1..8192 x heads 16/16, 14/2, 32/8 x head_dim 64, 128 x paged or
// not (paged=1: pages of 16 tokens), pages of 24 and 32 tokens (paged=24, 32), and MQA 64/1 and 32/1
// (more than 16 heads per KV head: two head groups). Bench grid of issue
// 4: batch 1..64 x cache 1k..32k (at most 262144 cached tokens per launch) x GQA 32/8, 16/8, d 128.
std::vector<Shape> decode_shapes() {
  std::vector<Shape> v;
  for (const HeadShape& h : kAttnHeads)
    for (int64_t hd : {64, 128})
      for (int64_t paged : {0, 1})
        for (int64_t b : {1, 3, 16})
          for (int64_t len : {1, 17, 128, 1000, 2048, 8192})
            v.push_back({{b, len, h.heads, h.kv_heads, hd, paged, b > 1 ? 1 : 0}, "",
                         h.heads == 14 && hd == 64 && len == 1000 && b == 3});
  v.push_back({{3, 1000, 64, 1, 128, 1, 1}, "", true});
  v.push_back({{1, 17, 32, 1, 64, 0, 0}, "", false});
  for (int64_t page : {24, 32}) v.push_back({{3, 1000, 32, 8, 128, page, 1}, "", false});  // other page sizes
  for (Shape& s : v) s.uses = s.quick ? kValidate | kBench : kValidate;
  for (int64_t b : {1, 4, 16, 32, 64})
    for (int64_t len : {1024, 4096, 8192, 16384, 32768}) {
      if (b * len > 262144) continue;
      for (const HeadShape& h : {HeadShape{32, 8}, HeadShape{16, 8}})
        for (int64_t paged : {0, 1}) v.push_back({{b, len, h.heads, h.kv_heads, 128, paged, 0}, "", false, kBench});
    }
  return v;
}

std::vector<Shape> shapes_of(const std::string& sweep) {
  if (sweep == "norm") return dedupe(norm_shapes());
  if (sweep == "rope") return dedupe(rope_shapes());
  if (sweep == "swiglu") return dedupe(swiglu_shapes());
  if (sweep == "embedding") return dedupe(embedding_shapes());
  if (sweep == "attention") return dedupe(attention_shapes());
  if (sweep == "decode") return dedupe(decode_shapes());
  throw UsageError("unknown sweep '" + sweep + "' (known: norm, rope, swiglu, embedding, attention, decode, model, e2e)");
}

std::vector<Case> model_cases(const std::string& sweep, bool quick) {
  const std::vector<std::string> names = sweep_axes(sweep);
  std::vector<Case> out;
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    if (sweep == "e2e" && dt != DType::BF16) continue;
    for (const Shape& s : sweep == "model" ? model_shapes(dt) : e2e_shapes()) {
      if (quick && !s.quick) continue;
      Case c{sweep, dt, {}, s.label};
      for (size_t i = 0; i < names.size(); ++i) c.axes.emplace_back(names[i], s.values[i]);
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace

int64_t Case::axis(const std::string& name) const {
  for (const auto& [k, v] : axes)
    if (k == name) return v;
  throw std::out_of_range("case " + id() + " has no axis '" + name + "'");
}

std::string Case::id() const {
  std::string s = sweep + "/" + dtype_name(dtype);
  if (is_model_sweep(sweep)) s += "/" + label;  // the model is part of a whole-model case
  for (const auto& [k, v] : axes) s += "/" + k + "=" + std::to_string(v);
  return s;
}

std::vector<std::string> sweep_names() { return {"embedding", "norm", "rope", "swiglu"}; }

std::vector<std::string> sweep_axes(const std::string& sweep) {
  if (sweep == "norm") return {"rows", "hidden", "residual"};
  if (sweep == "rope") return {"tokens", "heads", "kv_heads", "head_dim", "qk_norm", "llama3"};
  if (sweep == "swiglu") return {"rows", "inter"};
  if (sweep == "embedding") return {"tokens", "vocab", "hidden"};
  if (sweep == "attention") return {"batch", "seqlen", "heads", "kv_heads", "head_dim", "causal", "ragged", "prefix"};
  if (sweep == "decode") return {"batch", "kv_len", "heads", "kv_heads", "head_dim", "paged", "ragged"};
  if (sweep == "model") return {"batch", "prompt_len", "ragged", "steps", "flash"};
  if (sweep == "e2e") return {"batch", "prompt_len", "new_tokens"};
  throw UsageError("unknown sweep '" + sweep + "' (known: norm, rope, swiglu, embedding, attention, decode, model, e2e)");
}

std::vector<std::string> model_sweep_names() { return {"model", "e2e"}; }

bool is_model_sweep(const std::string& sweep) { return sweep == "model" || sweep == "e2e"; }

std::vector<int> case_prompt_lens(const Case& c) {
  const int batch = static_cast<int>(c.axis("batch")), len = static_cast<int>(c.axis("prompt_len"));
  const bool ragged = c.sweep == "model" && c.axis("ragged") != 0;
  const int cycle[] = {len, 1, 7, 33};
  std::vector<int> out;
  for (int b = 0; b < batch; ++b) out.push_back(ragged ? cycle[b % 4] : len);
  return out;
}

std::vector<Case> sweep_cases(const std::string& sweep, bool quick, CaseUse use) {
  if (is_model_sweep(sweep)) return model_cases(sweep, quick);
  const std::vector<std::string> names = sweep_axes(sweep);
  const int want = use == CaseUse::Validate ? kValidate : use == CaseUse::Bench ? kBench : kValidate | kBench;
  std::vector<Case> out;
  for (DType dt : kDtypes) {
    for (const Shape& s : shapes_of(sweep)) {
      if (quick && !s.quick) continue;
      if (!(s.uses & want)) continue;
      Case c{sweep, dt, {}, s.label};
      for (size_t i = 0; i < names.size(); ++i) c.axes.emplace_back(names[i], s.values[i]);
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<Case> select_cases(const std::vector<std::string>& sweeps, const std::string& sweep_arg,
                               const std::string& dtype, bool quick, const std::vector<std::string>& case_ids,
                               CaseUse use) {
  const std::set<std::string> wanted(case_ids.begin(), case_ids.end());
  std::set<std::string> found;
  std::vector<Case> out;
  for (const auto& sw : sweeps)
    for (auto& c : sweep_cases(sw, quick && wanted.empty(), wanted.empty() ? use : CaseUse::Any)) {
      if (dtype != "all" && dtype_name(c.dtype) != dtype) continue;
      if (!wanted.empty() && !wanted.count(c.id())) continue;
      found.insert(c.id());
      out.push_back(std::move(c));
    }
  for (const auto& id : wanted)
    if (!found.count(id)) throw UsageError("--case " + id + ": no such case in sweep '" + sweep_arg + "'");
  return out;
}

}  // namespace minfer::val
