// reference/ops.cpp: the scalar reference ops of reference/ops.h (the spec every kernel is checked
// against). Every sum is a double; each op rounds its output to `dtype` once, where the kernel stores.
// Legend: T tokens, V vocab, H hidden, R rows, I intermediate, nh/nkv heads, hd head_dim,
//         P positions, E experts, k experts per token, Tq new queries, Tk keys in the cache.
#include "reference/ops.h"

#include "engine/core/rope_freq.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace minfer::ref {
namespace {

float rnd(DType t, double x) { return round_to(t, static_cast<float>(x)); }

// 1 / sqrt(mean(v^2) + eps) over n values.
double inv_rms(const double* v /*(n)*/, int64_t n, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += v[i] * v[i];
  return 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
}

// Per-head RMSNorm in place (no rounding): v = v * inv_rms(v) * w.
void head_norm(double* v /*(hd)*/, const float* w /*(hd)*/, int hd, double eps) {
  const double r = inv_rms(v, hd, eps);
  for (int i = 0; i < hd; ++i) v[i] = v[i] * r * static_cast<double>(w[i]);
}

// Rotate one head vector by the angles of one table row; half-split pairs (i, i + hd/2).
void rotate_half(double* v /*(hd)*/, const double* cs /*(hd/2,2)*/, int hd) {
  const int half = hd / 2;
  for (int i = 0; i < half; ++i) {
    const double c = cs[2 * i], s = cs[2 * i + 1];
    const double a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

// Norm (optional), rotate and round `heads` head vectors of one token in place.
void rope_token(DType dtype, float* x /*(heads,hd)*/, int heads, int hd, const double* cs /*(hd/2,2)*/,
                const float* norm /*(hd)|null*/, double eps) {
  std::vector<double> v(static_cast<size_t>(hd));
  for (int h = 0; h < heads; ++h) {
    float* xh = x + static_cast<int64_t>(h) * hd;
    for (int i = 0; i < hd; ++i) v[i] = xh[i];
    if (norm) head_norm(v.data(), norm, hd, eps);
    rotate_half(v.data(), cs, hd);
    for (int i = 0; i < hd; ++i) xh[i] = rnd(dtype, v[i]);
  }
}

// The top-k indices of p (E) by value, ties to the lower index, in descending order.
std::vector<int> top_k_indices(const double* p /*(E)*/, int experts, int k) {
  std::vector<int> idx(static_cast<size_t>(experts));
  for (int e = 0; e < experts; ++e) idx[e] = e;
  std::stable_sort(idx.begin(), idx.end(), [p](int a, int b) { return p[a] > p[b]; });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

// Softmax of n values in double, in place (max subtracted).
void softmax(double* x /*(n)*/, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace

void embedding(DType dtype, const int32_t* ids, const float* table, float* out, int64_t num_tokens,
               int64_t vocab, int64_t hidden) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    float* o = out + t * hidden;  // (H)
    const int32_t id = ids[t];
    if (id < 0 || id >= vocab) {
      std::fill(o, o + hidden, 0.0f);
      continue;
    }
    const float* row = table + static_cast<int64_t>(id) * hidden;  // (H)
    for (int64_t j = 0; j < hidden; ++j) o[j] = round_to(dtype, row[j]);
  }
}

void rmsnorm(DType dtype, const float* x, const float* residual_in, float* residual_out, const float* weight,
             float* out, int64_t rows, int64_t hidden, double eps) {
  if (residual_in && !residual_out) throw std::invalid_argument("ref::rmsnorm: residual_in without residual_out");
  std::vector<double> s(static_cast<size_t>(hidden));  // (H) the row being normalised
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r * hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      double v = x[base + j];
      if (residual_in) {
        v = rnd(dtype, v + static_cast<double>(residual_in[base + j]));  // norm of the rounded sum
        residual_out[base + j] = static_cast<float>(v);
      }
      s[j] = v;
    }
    const double inv = inv_rms(s.data(), hidden, eps);
    for (int64_t j = 0; j < hidden; ++j) out[base + j] = rnd(dtype, s[j] * inv * static_cast<double>(weight[j]));
  }
}

std::vector<double> rope_inv_freq(const ModelConfig& cfg) { return rope_inverse_frequencies(cfg); }

std::vector<double> rope_cos_sin(const ModelConfig& cfg, int64_t positions) {
  const std::vector<double> inv = rope_inv_freq(cfg);
  const int64_t half = static_cast<int64_t>(inv.size());
  std::vector<double> t(static_cast<size_t>(positions * half * 2));  // (P, hd/2, 2)
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(p) * inv[i];
      t[(p * half + i) * 2] = std::cos(a);
      t[(p * half + i) * 2 + 1] = std::sin(a);
    }
  }
  return t;
}

void rope(DType dtype, float* q, float* k, int64_t q_stride, int64_t k_stride, const int32_t* positions,
          const double* cos_sin, const float* q_norm, const float* k_norm, double norm_eps, int64_t num_tokens,
          int64_t max_positions, int heads, int kv_heads, int head_dim) {
  const int64_t row = static_cast<int64_t>(head_dim / 2) * 2;  // table entries per position
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int32_t pos = positions[t];
    if (pos < 0 || pos >= max_positions)
      throw std::out_of_range("ref::rope: position " + std::to_string(pos) + " outside the table of " +
                              std::to_string(max_positions));
    const double* cs = cos_sin + pos * row;  // (hd/2, 2)
    rope_token(dtype, q + t * q_stride, heads, head_dim, cs, q_norm, norm_eps);
    if (k) rope_token(dtype, k + t * k_stride, kv_heads, head_dim, cs, k_norm, norm_eps);
  }
}

void swiglu(DType dtype, const float* gate_up, float* out, int64_t rows, int64_t inter, int64_t in_stride,
            int64_t out_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * in_stride;  // (2I): [gate | up]
    float* o = out + r * out_stride;           // (I)
    for (int64_t j = 0; j < inter; ++j) {
      const double gv = g[j], uv = g[inter + j];
      o[j] = rnd(dtype, gv / (1.0 + std::exp(-gv)) * uv);
    }
  }
}

void linear(DType dtype, const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t in,
            int64_t out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;  // (K)
    for (int64_t n = 0; n < out; ++n) {
      const float* wn = w + n * in;  // (K)
      double acc = b ? static_cast<double>(b[n]) : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(xr[i]) * static_cast<double>(wn[i]);
      y[r * out + n] = rnd(dtype, acc);
    }
  }
}

void attention(DType dtype, const float* q, const float* k, const float* v, float* out, int64_t tq, int64_t tk,
               int heads, int kv_heads, int head_dim, bool causal, double scale) {
  if (tq > tk) throw std::invalid_argument("ref::attention: more queries than keys");
  const int group = heads / kv_heads;
  const int64_t q_row = static_cast<int64_t>(heads) * head_dim, kv_row = static_cast<int64_t>(kv_heads) * head_dim;
  std::vector<double> p(static_cast<size_t>(tk)), acc(static_cast<size_t>(head_dim));
  for (int64_t i = 0; i < tq; ++i) {
    const int64_t visible = causal ? tk - tq + i + 1 : tk;  // keys [0, visible)
    for (int h = 0; h < heads; ++h) {
      const float* qh = q + i * q_row + static_cast<int64_t>(h) * head_dim;  // (hd)
      const int64_t kv_off = static_cast<int64_t>(h / group) * head_dim;
      for (int64_t j = 0; j < visible; ++j) {
        const float* kj = k + j * kv_row + kv_off;  // (hd)
        double dot = 0;
        for (int d = 0; d < head_dim; ++d) dot += static_cast<double>(qh[d]) * static_cast<double>(kj[d]);
        p[j] = dot * scale;
      }
      softmax(p.data(), visible);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < visible; ++j) {
        const float* vj = v + j * kv_row + kv_off;  // (hd)
        for (int d = 0; d < head_dim; ++d) acc[d] += p[j] * static_cast<double>(vj[d]);
      }
      float* oh = out + i * q_row + static_cast<int64_t>(h) * head_dim;  // (hd)
      for (int d = 0; d < head_dim; ++d) oh[d] = rnd(dtype, acc[d]);
    }
  }
}

void moe_route(const float* logits, int64_t tokens, int experts, int top_k, RouterOrder order, bool norm_topk_prob,
               int32_t* ids, float* weights) {
  std::vector<double> p(static_cast<size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int e = 0; e < experts; ++e) p[e] = logits[t * experts + e];
    if (order == RouterOrder::SoftmaxThenTopk) softmax(p.data(), experts);
    const std::vector<int> top = top_k_indices(p.data(), experts, top_k);  // softmax is monotone: same order
    std::vector<double> w(static_cast<size_t>(top_k));
    for (int j = 0; j < top_k; ++j) w[j] = p[top[j]];
    if (order == RouterOrder::TopkThenSoftmax) {
      softmax(w.data(), top_k);
    } else if (norm_topk_prob) {
      double sum = 0;
      for (double x : w) sum += x;
      for (double& x : w) x /= sum;
    }
    for (int j = 0; j < top_k; ++j) {
      ids[t * top_k + j] = top[j];
      weights[t * top_k + j] = static_cast<float>(w[j]);
    }
  }
}

}  // namespace minfer::ref
