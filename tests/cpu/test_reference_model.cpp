// tests/cpu/test_reference_model.cpp: properties of the reference forward (reference/model.h) on
// hand-built tiny configs of every family (no presets, no files): KV-cache decode equals prefill,
// ragged batches equal sequences run alone, causality, tied head, MoE with uniform routing equals
// the mean of the experts, QK-norm kinds, rounding of activations, and hand-composed single tokens.
// Legend: H hidden, V vocab, I intermediate, Im moe_intermediate, E experts, T tokens.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/core/presets.h"
#include "reference/model.h"
#include "reference/ops.h"

namespace minfer::ref {
namespace {

ModelConfig tiny_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.hidden = 16;
  c.intermediate = 24;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 8;  // q_dim 32 != H on purpose
  c.vocab = 37;
  c.max_position = 64;
  c.rms_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.eos_token_id = -1;
  switch (arch) {
    case Arch::Llama: c.model_type = "llama"; break;
    case Arch::Qwen2: c.model_type = "qwen2"; c.attention_bias = true; c.tie_embeddings = true; break;
    case Arch::Qwen3: c.model_type = "qwen3"; c.qk_norm = QkNorm::PerHead; break;
    case Arch::Qwen3Moe:
      c.model_type = "qwen3_moe";
      c.qk_norm = QkNorm::PerHead;
      c.num_experts = 4;
      c.top_k = 2;
      c.moe_intermediate = 12;
      c.norm_topk_prob = true;
      c.decoder_sparse_step = 2;  // layer 0 dense, layer 1 MoE
      break;
    case Arch::Mixtral:
      c.model_type = "mixtral";
      c.num_experts = 4;
      c.top_k = 2;
      c.moe_intermediate = 12;
      c.intermediate = 0;
      c.router_order = RouterOrder::TopkThenSoftmax;
      c.norm_topk_prob = true;
      break;
    case Arch::Olmoe:
      c.model_type = "olmoe";
      c.qk_norm = QkNorm::Full;
      c.num_experts = 4;
      c.top_k = 2;
      c.moe_intermediate = 12;
      c.intermediate = 0;
      break;
  }
  return c;
}

HostTensor rand_tensor(std::vector<int64_t> shape, std::mt19937& g, float scale, float offset = 0) {
  HostTensor t;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  t.shape = std::move(shape);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  t.data.resize(static_cast<size_t>(n));
  for (float& x : t.data) x = offset + scale * u(g);
  return t;
}

LayerWeights rand_layer(const ModelConfig& c, int l, std::mt19937& g) {
  const int64_t H = c.hidden, q = c.q_dim(), kv = c.kv_dim(), I = c.intermediate, E = c.num_experts,
                Im = c.moe_intermediate;
  LayerWeights w;
  w.attn_norm = rand_tensor({H}, g, 0.2f, 1.0f);
  w.ffn_norm = rand_tensor({H}, g, 0.2f, 1.0f);
  w.wq = rand_tensor({q, H}, g, 0.4f);
  w.wk = rand_tensor({kv, H}, g, 0.4f);
  w.wv = rand_tensor({kv, H}, g, 0.4f);
  w.wo = rand_tensor({H, q}, g, 0.3f);
  if (c.attention_bias) {
    w.bq = rand_tensor({q}, g, 0.5f);
    w.bk = rand_tensor({kv}, g, 0.5f);
    w.bv = rand_tensor({kv}, g, 0.5f);
  }
  if (c.qk_norm == QkNorm::PerHead) {
    w.q_norm = rand_tensor({c.head_dim}, g, 0.2f, 1.0f);
    w.k_norm = rand_tensor({c.head_dim}, g, 0.2f, 1.0f);
  } else if (c.qk_norm == QkNorm::Full) {
    w.q_norm = rand_tensor({q}, g, 0.2f, 1.0f);
    w.k_norm = rand_tensor({kv}, g, 0.2f, 1.0f);
  }
  if (c.layer_is_moe(l)) {
    w.router = rand_tensor({E, H}, g, 0.8f);
    w.expert_gate = rand_tensor({E, Im, H}, g, 0.4f);
    w.expert_up = rand_tensor({E, Im, H}, g, 0.4f);
    w.expert_down = rand_tensor({E, H, Im}, g, 0.3f);
  } else {
    w.w_gate = rand_tensor({I, H}, g, 0.4f);
    w.w_up = rand_tensor({I, H}, g, 0.4f);
    w.w_down = rand_tensor({H, I}, g, 0.3f);
  }
  return w;
}

ModelWeights rand_weights(const ModelConfig& c, uint32_t seed) {
  std::mt19937 g(seed);
  ModelWeights w;
  w.embed = rand_tensor({c.vocab, c.hidden}, g, 1.0f);
  for (int l = 0; l < c.layers; ++l) w.layers.push_back(rand_layer(c, l, g));
  w.final_norm = rand_tensor({c.hidden}, g, 0.2f, 1.0f);
  if (!c.tie_embeddings) w.lm_head = rand_tensor({c.vocab, c.hidden}, g, 0.5f);
  return w;
}

std::vector<int32_t> tokens(int n, uint32_t seed, int vocab) {
  std::mt19937 g(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(g() % static_cast<uint32_t>(vocab));
  return t;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

std::vector<float> slice(const std::vector<float>& v, int64_t from_row, int64_t rows, int64_t width) {
  return {v.begin() + from_row * width, v.begin() + (from_row + rows) * width};
}

// Logits of one sequence run alone in a fresh batch of one.
std::vector<float> run_alone(const ModelConfig& c, const ModelWeights& w, const std::vector<int32_t>& t) {
  Model m(c, w, DType::F32);
  m.reset(1);
  return m.forward({t});
}

class RefModelFamily : public ::testing::TestWithParam<Arch> {
 protected:
  ModelConfig cfg = tiny_config(GetParam());
  ModelWeights w = rand_weights(cfg, 1234);
};

TEST_P(RefModelFamily, DecodeTokenByTokenEqualsPrefill) {
  const std::vector<int32_t> seq = tokens(20, 7, cfg.vocab);
  const std::vector<float> prefill = run_alone(cfg, w, seq);
  ASSERT_EQ(prefill.size(), seq.size() * cfg.vocab);
  Model m(cfg, w, DType::F32);
  m.reset(1);
  std::vector<float> decode;
  // a short prefill, then one token at a time through the cache
  for (size_t i = 0; i < seq.size(); i += (i == 0 ? 5 : 1)) {
    const size_t n = i == 0 ? 5 : 1;
    const std::vector<float> l = m.forward({{seq.begin() + i, seq.begin() + i + n}});
    decode.insert(decode.end(), l.begin(), l.end());
  }
  EXPECT_EQ(m.cached(0), 20);
  EXPECT_LT(max_abs_diff(decode, prefill), 1e-6);
  for (float x : prefill) ASSERT_TRUE(std::isfinite(x));
}

TEST_P(RefModelFamily, RaggedBatchEqualsEachSequenceAlone) {
  const std::vector<std::vector<int32_t>> a = {tokens(6, 1, cfg.vocab), {}, tokens(3, 2, cfg.vocab)};
  const std::vector<std::vector<int32_t>> b = {tokens(2, 3, cfg.vocab), tokens(4, 4, cfg.vocab), {}};
  Model m(cfg, w, DType::F32);
  m.reset(3);
  const std::vector<float> la = m.forward(a), lb = m.forward(b);
  const int64_t V = cfg.vocab;
  ASSERT_EQ(la.size(), static_cast<size_t>(9 * V));
  ASSERT_EQ(lb.size(), static_cast<size_t>(6 * V));
  EXPECT_EQ(m.cached(0), 8);
  EXPECT_EQ(m.cached(1), 4);
  EXPECT_EQ(m.cached(2), 3);
  // sequence 0: 6 then 2 tokens; sequence 1: nothing then 4; sequence 2: 3 then nothing
  std::vector<int32_t> s0 = a[0];
  s0.insert(s0.end(), b[0].begin(), b[0].end());
  const std::vector<float> r0 = run_alone(cfg, w, s0), r1 = run_alone(cfg, w, b[1]), r2 = run_alone(cfg, w, a[2]);
  EXPECT_LT(max_abs_diff(slice(la, 0, 6, V), slice(r0, 0, 6, V)), 1e-6);
  EXPECT_LT(max_abs_diff(slice(la, 6, 3, V), r2), 1e-6);
  EXPECT_LT(max_abs_diff(slice(lb, 0, 2, V), slice(r0, 6, 2, V)), 1e-6);
  EXPECT_LT(max_abs_diff(slice(lb, 2, 4, V), r1), 1e-6);
}

TEST_P(RefModelFamily, LogitsDoNotDependOnLaterTokens) {
  const std::vector<int32_t> seq = tokens(12, 9, cfg.vocab);
  std::vector<int32_t> other = seq;
  for (size_t i = 7; i < other.size(); ++i) other[i] = (other[i] + 5) % cfg.vocab;
  const int64_t V = cfg.vocab;
  const std::vector<float> a = run_alone(cfg, w, seq), b = run_alone(cfg, w, other);
  EXPECT_LT(max_abs_diff(slice(a, 0, 7, V), slice(b, 0, 7, V)), 1e-12);
  EXPECT_GT(max_abs_diff(slice(a, 7, 5, V), slice(b, 7, 5, V)), 1e-3);  // and do depend on their own
  // earlier tokens do matter for later logits (attention mixes positions)
  std::vector<int32_t> third = seq;
  third[0] = (third[0] + 1) % cfg.vocab;
  const std::vector<float> c3 = run_alone(cfg, w, third);
  EXPECT_GT(max_abs_diff(slice(a, 11, 1, V), slice(c3, 11, 1, V)), 1e-4);
}

TEST_P(RefModelFamily, Bf16ActivationsAreRoundedAndClose) {
  const std::vector<int32_t> seq = tokens(10, 11, cfg.vocab);
  Model m(cfg, w, DType::BF16);
  m.reset(1);
  const std::vector<float> lb = m.forward({seq}), lf = run_alone(cfg, w, seq);
  double num = 0, den = 0;
  bool any_differs = false;
  for (size_t i = 0; i < lb.size(); ++i) {
    ASSERT_EQ(lb[i], round_to(DType::BF16, lb[i])) << "logit " << i << " is not a bf16 value";
    num += (double(lb[i]) - lf[i]) * (double(lb[i]) - lf[i]);
    den += double(lf[i]) * lf[i];
    any_differs = any_differs || lb[i] != lf[i];
  }
  EXPECT_TRUE(any_differs);
  EXPECT_LT(std::sqrt(num / den), 3e-2);
}

TEST_P(RefModelFamily, GenerateGreedyFollowsArgmax) {
  const std::vector<int32_t> prompt = tokens(4, 13, cfg.vocab);
  Model m(cfg, w, DType::F32);
  const std::vector<int32_t> gen = m.generate_greedy(prompt, 6);
  ASSERT_EQ(gen.size(), 6u);
  std::vector<int32_t> seq = prompt;
  for (int32_t next : gen) {
    const std::vector<float> l = run_alone(cfg, w, seq);
    const float* last = l.data() + l.size() - cfg.vocab;
    EXPECT_EQ(next, std::max_element(last, last + cfg.vocab) - last);
    seq.push_back(next);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, RefModelFamily,
                         ::testing::Values(Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Qwen3Moe, Arch::Mixtral,
                                           Arch::Olmoe),
                         [](const ::testing::TestParamInfo<Arch>& i) { return std::string(arch_name(i.param)); });

// --- single token composed by hand from the ops ------------------------------------------------

std::vector<float> lin(const HostTensor& w, const std::vector<float>& x, int64_t out, const HostTensor* b = nullptr) {
  std::vector<float> y(static_cast<size_t>(out));
  linear(DType::F32, x.data(), w.data.data(), b && !b->empty() ? b->data.data() : nullptr, y.data(), 1,
         static_cast<int64_t>(x.size()), out);
  return y;
}
std::vector<float> rms(const HostTensor& w, const std::vector<float>& x, double eps) {
  std::vector<float> y(x.size());
  rmsnorm(DType::F32, x.data(), nullptr, nullptr, w.data.data(), y.data(), 1, static_cast<int64_t>(x.size()), eps);
  return y;
}
std::vector<float> plus(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> y(a.size());
  for (size_t i = 0; i < a.size(); ++i) y[i] = a[i] + b[i];
  return y;
}

std::vector<float> swiglu_by_hand(const std::vector<float>& g, const std::vector<float>& u) {
  std::vector<float> a(g.size());
  for (size_t i = 0; i < g.size(); ++i) a[i] = static_cast<float>(g[i] / (1 + std::exp(-double(g[i]))) * u[i]);
  return a;
}

// Rows [from, from + n) of a row-major tensor whose rows are `width` wide.
HostTensor rows_of(const HostTensor& t, int64_t from, int64_t n, int64_t width) {
  HostTensor r;
  r.shape = {n, width};
  r.data.assign(t.data.begin() + from * width, t.data.begin() + (from + n) * width);
  return r;
}

// MoE FFN of one token: router, route (ref::moe_route is tested on its own), weighted experts.
std::vector<float> moe_by_hand(const ModelConfig& c, const LayerWeights& L, const std::vector<float>& x) {
  const int64_t H = c.hidden, Im = c.moe_intermediate;
  const std::vector<float> logits = lin(L.router, x, c.num_experts);
  std::vector<int32_t> ids(static_cast<size_t>(c.top_k));
  std::vector<float> wts(ids.size());
  moe_route(logits.data(), 1, c.num_experts, c.top_k, c.router_order, c.norm_topk_prob, ids.data(), wts.data());
  std::vector<double> acc(static_cast<size_t>(H), 0.0);
  for (int j = 0; j < c.top_k; ++j) {
    const int64_t e = ids[j];
    const std::vector<float> a = swiglu_by_hand(lin(rows_of(L.expert_gate, e * Im, Im, H), x, Im),
                                                lin(rows_of(L.expert_up, e * Im, Im, H), x, Im));
    const std::vector<float> d = lin(rows_of(L.expert_down, e * H, H, Im), a, H);
    for (int64_t i = 0; i < H; ++i) acc[i] += double(wts[j]) * d[i];
  }
  return {acc.begin(), acc.end()};
}

// Logits of a one-layer model for a single token. Attention over one key returns v, so
// o = wo . expand_gqa(wv . norm1(x) + bv) whatever q, k, RoPE and QK-norm do.
std::vector<float> first_token_by_hand(const ModelConfig& c, const ModelWeights& w, int32_t id) {
  const LayerWeights& L = w.layers[0];
  std::vector<float> x(w.embed.data.begin() + id * c.hidden, w.embed.data.begin() + (id + 1) * c.hidden);
  const std::vector<float> v = lin(L.wv, rms(L.attn_norm, x, c.rms_eps), c.kv_dim(), &L.bv);
  std::vector<float> o(static_cast<size_t>(c.q_dim()));
  const int group = c.heads / c.kv_heads;
  for (int h = 0; h < c.heads; ++h)
    for (int d = 0; d < c.head_dim; ++d) o[h * c.head_dim + d] = v[(h / group) * c.head_dim + d];
  const std::vector<float> hres = plus(x, lin(L.wo, o, c.hidden));
  const std::vector<float> n2 = rms(L.ffn_norm, hres, c.rms_eps);
  std::vector<float> f;
  if (c.layer_is_moe(0)) {
    f = moe_by_hand(c, L, n2);
  } else {
    f = lin(L.w_down, swiglu_by_hand(lin(L.w_gate, n2, c.intermediate), lin(L.w_up, n2, c.intermediate)), c.hidden);
  }
  const std::vector<float> out = plus(hres, f);
  return lin(w.head(), rms(w.final_norm, out, c.rms_eps), c.vocab);
}

TEST(RefModel, FirstTokenComposedByHand) {
  for (Arch arch : {Arch::Qwen2, Arch::Mixtral, Arch::Olmoe, Arch::Qwen3Moe}) {
    ModelConfig c = tiny_config(arch);  // qwen2: biases and tied head
    c.layers = 1;
    c.decoder_sparse_step = 1;
    const ModelWeights w = rand_weights(c, 99);
    for (int32_t id : {0, 5, 36}) {
      EXPECT_LT(max_abs_diff(run_alone(c, w, {id}), first_token_by_hand(c, w, id)), 1e-5)
          << arch_name(arch) << " token " << id;
    }
  }
}

TEST(RefModel, TiedHeadUsesTheEmbedding) {
  ModelConfig tied = tiny_config(Arch::Llama);
  tied.tie_embeddings = true;
  ModelWeights wt = rand_weights(tied, 5);
  ModelConfig untied = tied;
  untied.tie_embeddings = false;
  ModelWeights wu = wt;
  wu.lm_head = wt.embed;
  const std::vector<int32_t> seq = tokens(5, 3, tied.vocab);
  const std::vector<float> a = run_alone(tied, wt, seq), b = run_alone(untied, wu, seq);
  EXPECT_LT(max_abs_diff(a, b), 1e-12);
  for (float& x : wu.lm_head.data) x *= -0.5f;
  EXPECT_GT(max_abs_diff(a, run_alone(untied, wu, seq)), 1e-2);
  // an untied config without an lm_head is refused, naming the slot
  wu.lm_head = HostTensor{};
  try {
    Model m(untied, wu, DType::F32);
    FAIL() << "missing lm_head accepted";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), "lm_head");
  }
}

TEST(RefModel, QwenBiasIsUsed) {
  const ModelConfig c = tiny_config(Arch::Qwen2);
  ModelWeights w = rand_weights(c, 21);
  const std::vector<int32_t> seq = tokens(4, 1, c.vocab);
  const std::vector<float> a = run_alone(c, w, seq);
  for (float& x : w.layers[0].bk.data) x += 0.5f;
  EXPECT_GT(max_abs_diff(a, run_alone(c, w, seq)), 1e-4);
}

// Scaling query (or key) rows [from, to) (exact in fp32) with rms_eps 0: a QK-norm over a span
// containing the scaled rows undoes the scale; attention without one sees different scores.
double q_scale_effect(Arch arch, int64_t from, int64_t to, bool key = false) {
  ModelConfig c = tiny_config(arch);
  c.rms_eps = 0;
  ModelWeights w = rand_weights(c, 31);
  const std::vector<int32_t> seq = tokens(6, 2, c.vocab);
  const std::vector<float> a = run_alone(c, w, seq);
  HostTensor& wq = key ? w.layers[0].wk : w.layers[0].wq;  // (nh*hd, H) or (nkv*hd, H)
  for (int64_t r = from; r < to; ++r)
    for (int64_t j = 0; j < c.hidden; ++j) wq.data[r * c.hidden + j] *= 4.0f;
  return max_abs_diff(a, run_alone(c, w, seq));
}

TEST(RefModel, PerHeadQkNormVersusFullWidth) {
  const int64_t hd = 8, q_dim = 32;
  // one head scaled: per-head norm (qwen3) undoes it; the full-width norm (olmoe) mixes heads
  EXPECT_LT(q_scale_effect(Arch::Qwen3, hd, 2 * hd), 1e-5);
  EXPECT_LT(q_scale_effect(Arch::Qwen3Moe, hd, 2 * hd), 1e-5);
  EXPECT_GT(q_scale_effect(Arch::Olmoe, hd, 2 * hd), 1e-4);
  EXPECT_GT(q_scale_effect(Arch::Llama, hd, 2 * hd), 1e-4);
  // the whole projection scaled: both kinds of QK-norm undo it, none does not
  EXPECT_LT(q_scale_effect(Arch::Olmoe, 0, q_dim), 1e-5);
  EXPECT_LT(q_scale_effect(Arch::Qwen3, 0, q_dim), 1e-5);
  EXPECT_GT(q_scale_effect(Arch::Mixtral, 0, q_dim), 1e-4);
  // the same for keys (nkv*hd = 16 rows)
  EXPECT_LT(q_scale_effect(Arch::Qwen3, hd, 2 * hd, true), 1e-5);
  EXPECT_GT(q_scale_effect(Arch::Olmoe, hd, 2 * hd, true), 1e-4);
  EXPECT_LT(q_scale_effect(Arch::Olmoe, 0, 2 * hd, true), 1e-5);
  EXPECT_GT(q_scale_effect(Arch::Llama, 0, 2 * hd, true), 1e-4);
}

// MoE with top_k == E and equal router rows routes 1/E to every expert: the output equals a dense
// SwiGLU whose gate/up stack the experts' rows and whose down concatenates their columns / E.
ModelWeights dense_equivalent(const ModelConfig& moe, const ModelWeights& wm) {
  ModelWeights wd = wm;
  const int64_t E = moe.num_experts, Im = moe.moe_intermediate, H = moe.hidden;
  for (LayerWeights& L : wd.layers) {
    L.w_gate = L.expert_gate;  // (E, Im, H) is (E*Im, H)
    L.w_up = L.expert_up;
    L.w_down.data.assign(static_cast<size_t>(H * E * Im), 0.0f);  // (H, E*Im)
    for (int64_t e = 0; e < E; ++e)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < Im; ++j)
          L.w_down.data[i * E * Im + e * Im + j] = L.expert_down.data[(e * H + i) * Im + j] / static_cast<float>(E);
    L.router = L.expert_gate = L.expert_up = L.expert_down = HostTensor{};
  }
  return wd;
}

void expect_uniform_moe_is_mean(Arch moe_arch, Arch dense_arch) {
  ModelConfig moe = tiny_config(moe_arch);
  moe.top_k = moe.num_experts;
  moe.decoder_sparse_step = 1;
  ModelWeights wm = rand_weights(moe, 77);
  for (LayerWeights& L : wm.layers) std::fill(L.router.data.begin(), L.router.data.end(), 0.125f);
  ModelConfig dense = tiny_config(dense_arch);
  dense.intermediate = moe.num_experts * moe.moe_intermediate;
  const ModelWeights wd = dense_equivalent(moe, wm);
  const std::vector<int32_t> seq = tokens(7, 4, moe.vocab);
  const std::vector<float> a = run_alone(moe, wm, seq), b = run_alone(dense, wd, seq);
  EXPECT_LT(max_abs_diff(a, b), 2e-5);
  // sanity: unequal routing changes the result
  for (float& x : wm.layers[1].router.data) x = -x * 3 + 0.7f;
  wm.layers[1].router.data[5] = 4.0f;
  moe.top_k = 2;
  EXPECT_GT(max_abs_diff(a, run_alone(moe, wm, seq)), 1e-4);
}

TEST(RefModel, UniformMoeEqualsMeanOfExperts) {
  expect_uniform_moe_is_mean(Arch::Qwen3Moe, Arch::Qwen3);
  expect_uniform_moe_is_mean(Arch::Mixtral, Arch::Llama);
}

TEST(RefModel, RefusesBadRequests) {
  const ModelConfig c = tiny_config(Arch::Llama);
  const ModelWeights w = rand_weights(c, 3);
  Model m(c, w, DType::F32);
  m.reset(2);
  EXPECT_THROW(m.forward({{1, 2}}), UsageError);  // batch is 2
  EXPECT_THROW(m.forward({tokens(c.max_position + 1, 1, c.vocab), {}}), UsageError);
  EXPECT_EQ(m.cached(0), 0);
  EXPECT_TRUE(m.forward({{}, {}}).empty());
  ModelWeights bad = w;
  bad.layers[1].wk.data.pop_back();
  try {
    Model b(c, bad, DType::F32);
    FAIL() << "short wk accepted";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), "layers.1.wk");
  }
}

TEST(RefModel, Llama3ScalingChangesOnlyLongWavelengths) {
  ModelConfig c = tiny_config(Arch::Llama);
  const ModelWeights w = rand_weights(c, 8);
  const std::vector<int32_t> seq = tokens(16, 5, c.vocab);
  const std::vector<float> plain = run_alone(c, w, seq);
  c.rope_scaling.llama3 = true;
  c.rope_scaling.factor = 8;
  c.rope_scaling.original_max_position = 4;  // every wavelength > 2pi is scaled; the first is too
  EXPECT_GT(max_abs_diff(plain, run_alone(c, w, seq)), 1e-4);
  c.rope_scaling.original_max_position = 1;  // low-frequency wavelength 1, high 0.25: all scaled
  c.rope_scaling.factor = 1;                 // ... by 1: identical to plain
  EXPECT_LT(max_abs_diff(plain, run_alone(c, w, seq)), 1e-12);
}

// The one test on presets (engine/core/presets.h): every tiny preset loads through the weight map
// and runs a few hundred tokens; decoding the tail through the cache equals one prefill.
TEST(RefModel, TinyPresetsPrefillEqualsDecode) {
  for (const char* name : {"tiny", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe", "tiny-mixtral", "tiny-olmoe"}) {
    const LoadedModel lm = open_model(std::string("preset:") + name, DType::F32);
    const ModelWeights w = load_weights(lm.config, *lm.source, DType::F32);
    const std::vector<int32_t> seq = tokens(200, 17, lm.config.vocab);
    Model m(lm.config, w, DType::F32);
    m.reset(2);
    const int64_t V = lm.config.vocab;
    const std::vector<float> full = m.forward({seq, {seq.begin(), seq.begin() + 190}});
    ASSERT_EQ(full.size(), static_cast<size_t>(390 * V)) << name;
    std::vector<float> tail;
    for (size_t i = 190; i < seq.size(); ++i) {
      const std::vector<float> l = m.forward({{}, {seq[i]}});
      tail.insert(tail.end(), l.begin(), l.end());
    }
    EXPECT_EQ(m.cached(1), 200) << name;
    EXPECT_LT(max_abs_diff(tail, slice(full, 190, 10, V)), 1e-6) << name;
    double spread = 0;  // the logits are not degenerate
    for (int64_t i = 0; i < V; ++i) spread = std::max(spread, std::fabs(double(full[i]) - full[V + i]));
    EXPECT_GT(spread, 1e-3) << name;
  }
}

}  // namespace
}  // namespace minfer::ref
