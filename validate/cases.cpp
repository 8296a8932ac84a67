// validate/cases.cpp: the case lists shared by validate_all and bench_all (DESIGN.md section 3).
// Each sweep lists odd sizes (1, 3, 17, 1023 tokens; hidden 896 and 1000; 14 heads over 2 KV heads)
// beside labelled real model shapes at 1..16384 tokens, in fp32, fp16 and bf16. The largest cases
// move hundreds of MB per launch so that bench measures bandwidth, not launch latency.
// quick: the cases marked quick below (a few odd sizes and one mid-size real shape per sweep).
#include <algorithm>
#include <stdexcept>

#include "engine/core/error.h"
#include "validate/case.h"

namespace minfer::val {

namespace {

// One shape of a sweep before it is multiplied by the three dtypes.
struct Shape {
  std::vector<int64_t> values;  // in sweep_axes(sweep) order
  std::string label;
  bool quick = false;
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
  }
  return out;
}

std::vector<Shape> shapes_of(const std::string& sweep) {
  if (sweep == "norm") return dedupe(norm_shapes());
  if (sweep == "rope") return dedupe(rope_shapes());
  if (sweep == "swiglu") return dedupe(swiglu_shapes());
  if (sweep == "embedding") return dedupe(embedding_shapes());
  throw UsageError("unknown sweep '" + sweep + "' (known: norm, rope, swiglu, embedding)");
}

}  // namespace

int64_t Case::axis(const std::string& name) const {
  for (const auto& [k, v] : axes)
    if (k == name) return v;
  throw std::out_of_range("case " + id() + " has no axis '" + name + "'");
}

std::string Case::id() const {
  std::string s = sweep + "/" + dtype_name(dtype);
  for (const auto& [k, v] : axes) s += "/" + k + "=" + std::to_string(v);
  return s;
}

std::vector<std::string> sweep_names() { return {"embedding", "norm", "rope", "swiglu"}; }

std::vector<std::string> sweep_axes(const std::string& sweep) {
  if (sweep == "norm") return {"rows", "hidden", "residual"};
  if (sweep == "rope") return {"tokens", "heads", "kv_heads", "head_dim", "qk_norm", "llama3"};
  if (sweep == "swiglu") return {"rows", "inter"};
  if (sweep == "embedding") return {"tokens", "vocab", "hidden"};
  throw UsageError("unknown sweep '" + sweep + "' (known: norm, rope, swiglu, embedding)");
}

std::vector<Case> sweep_cases(const std::string& sweep, bool quick) {
  const std::vector<std::string> names = sweep_axes(sweep);
  std::vector<Case> out;
  for (DType dt : kDtypes) {
    for (const Shape& s : shapes_of(sweep)) {
      if (quick && !s.quick) continue;
      Case c{sweep, dt, {}, s.label};
      for (size_t i = 0; i < names.size(); ++i) c.axes.emplace_back(names[i], s.values[i]);
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace minfer::val
