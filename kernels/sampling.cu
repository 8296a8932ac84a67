// kernels/sampling.cu: greedy / temperature / top-k / top-p sampling, one block per row (see
// sampling.h). v1: 1024 threads; argmax by block reduction; the top-k and top-p thresholds by
// 32-step bisection over order-preserving uint32 keys of the logits (each step one counting or
// summing pass over V); the draw by a block prefix over contiguous per-thread chunks.
#include "kernels/sampling.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"

namespace minfer {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

__host__ __device__ uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__host__ __device__ double uniform01(uint64_t seed, int row, uint64_t counter) {
  const uint64_t z = mix(mix(seed ^ 0x5851f42d4c957f2dull) + (static_cast<uint64_t>(row) + 1) * 0x9e3779b97f4a7c15ull +
                         counter * 0xd1b54a32d192ed03ull);
  return static_cast<double>(z >> 40) * (1.0 / 16777216.0);
}

// Order-preserving key: a < b as floats <=> key(a) < key(b) as unsigned.
__device__ uint32_t key_of(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <typename T>
__device__ float logit(const T* row, int64_t i) { return kern::to_float(row[i]); }

// Block sums; every thread gets the result. red: kWarps slots.
__device__ float block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = 0.0f;
  for (int i = 0; i < kWarps; ++i) r += red[i];
  return r;
}

// (v, i) before (bv, bi): larger, or equal with the lower id.
__device__ __forceinline__ bool better(float v, int64_t i, float bv, int64_t bi) {
  return v > bv || (v == bv && i < bi);
}

// The warp's best (value, id) in every lane.
__device__ __forceinline__ void warp_argmax(float& best, int64_t& bi) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, best, bi)) { best = ov; bi = oi; }
  }
}

// Argmax (ties to the lowest id) of row (V).
template <typename T>
__device__ int64_t block_argmax(const T* row, int64_t V, float* redv, int64_t* redi) {
  float best = -INFINITY;
  int64_t bi = V;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) {
    const float v = logit(row, i);
    if (v > best || bi == V) { best = v; bi = i; }  // strided order: first hit per thread is its lowest id
  }
  warp_argmax(best, bi);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) { redv[threadIdx.x >> 5] = best; redi[threadIdx.x >> 5] = bi; }
  __syncthreads();
  float rv = redv[0];
  int64_t ri = redi[0];
  for (int i = 1; i < kWarps; ++i) {
    if (better(redv[i], redi[i], rv, ri)) { rv = redv[i]; ri = redi[i]; }
  }
  return ri;
}

// Mass (what = 1) or count (what = 0) of the ids whose key is >= lo (and >= floor_key).
template <typename T>
__device__ float pass(const T* row, int64_t V, uint32_t lo, float mx, float inv_t, bool mass, float* red) {
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) {
    const float v = logit(row, i);
    if (key_of(v) >= lo) acc += mass ? expf((v - mx) * inv_t) : 1.0f;
  }
  return block_sum(acc, red);
}

// Largest key K with pass(K) >= target (pass is non-increasing in K; pass(floor) >= target).
template <typename T>
__device__ uint32_t bisect(const T* row, int64_t V, uint32_t floor_key, float target, float mx, float inv_t, bool mass,
                           float* red) {
  uint32_t lo = floor_key, hi = 0xffffffffu;
  while (lo < hi) {
    const uint32_t mid = lo + static_cast<uint32_t>((static_cast<uint64_t>(hi) - lo + 1) / 2);
    if (pass(row, V, mid, mx, inv_t, mass, red) >= target) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The first id (in id order) whose running kept mass passes u; ids with key < K are skipped.
template <typename T>
__device__ int64_t draw(const T* row, int64_t V, uint32_t K, float mx, float inv_t, float u, float* part) {
  const int64_t per = (V + kThreads - 1) / kThreads, b = threadIdx.x * per, e = min(V, b + per);
  float s = 0.0f;
  int64_t last = -1;
  for (int64_t i = b; i < e; ++i) {
    const float v = logit(row, i);
    if (key_of(v) >= K) { s += expf((v - mx) * inv_t); last = i; }
  }
  __shared__ int64_t pick;
  __shared__ int64_t last_kept[kThreads];
  part[threadIdx.x] = s;
  last_kept[threadIdx.x] = last;
  if (threadIdx.x == 0) pick = -1;
  __syncthreads();
  if (threadIdx.x == 0) {  // serial prefix over the threads' chunks: deterministic order
    float run = 0.0f;
    int64_t fallback = -1;
    for (int t = 0; t < kThreads && pick < 0; ++t) {
      if (last_kept[t] >= 0) fallback = last_kept[t];
      if (run + part[t] > u && part[t] > 0.0f) {
        float r = run;
        const int64_t tb = t * per, te = min(V, tb + per);
        for (int64_t i = tb; i < te && pick < 0; ++i) {
          const float v = logit(row, i);
          if (key_of(v) < K) continue;
          r += expf((v - mx) * inv_t);
          if (r > u) pick = i;
        }
        if (pick < 0) pick = last_kept[t];
      }
      run += part[t];
    }
    if (pick < 0) pick = fallback;  // u at the very top of the mass (rounding)
  }
  __syncthreads();
  return pick;
}

template <typename T>
__global__ void sample_kernel(SampleParams p) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  __shared__ float redv[kWarps];
  __shared__ int64_t redi[kWarps];
  __shared__ float part[kThreads];
  const int r = blockIdx.x;
  const T* row = static_cast<const T*>(p.logits) + static_cast<int64_t>(r) * p.ld;  // (V)
  const int64_t am = block_argmax(row, p.vocab, redv, redi);
  if (p.temperature <= 0.0f) {
    if (threadIdx.x == 0) p.out_ids[r] = static_cast<int32_t>(am);
    return;
  }
  const float mx = logit(row, am), inv_t = 1.0f / p.temperature;
  uint32_t K = 0;
  if (p.top_k > 0 && p.top_k < p.vocab) K = bisect(row, p.vocab, 0u, static_cast<float>(p.top_k), mx, inv_t, false, redv);
  if (p.top_p < 1.0f) {
    const float kept = pass(row, p.vocab, K, mx, inv_t, true, redv);
    K = bisect(row, p.vocab, K, p.top_p * kept, mx, inv_t, true, redv);
  }
  const float mass = pass(row, p.vocab, K, mx, inv_t, true, redv);
  const uint64_t c = p.counters[r];
  const float u = static_cast<float>(uniform01(p.seed, r, c)) * mass;
  const int64_t id = draw(row, p.vocab, K, mx, inv_t, u, part);
  if (threadIdx.x == 0) {
    p.out_ids[r] = static_cast<int32_t>(id >= 0 ? id : am);
    p.counters[r] = c + 1;
  }
}

// Greedy rows over many blocks (SampleParams::argmax_blocks): block (b, r) takes ids [b chunk, (b + 1)
// chunk) of row r (16-byte packs where the row starts 16-byte aligned, elements otherwise), reduces
// them to (max, lowest id), writes that pair to the workspace and takes a ticket; the row's last block
// reduces the row's pairs, writes the id and puts the ticket back to 0 (a replayed graph finds it so).
constexpr int kArgThreads = 256;
constexpr int kArgWarps = kArgThreads / 32;
constexpr int kArgMaxBlocks = 128;  // blocks a row at most (the workspace holds that many pairs a row)
constexpr int64_t kArgChunk = 2048; // ids a block (one 16-byte pack a thread at 16-bit types)

struct ArgPair {
  float v;
  int32_t i;
};

__host__ __device__ size_t tickets_bytes(int rows) { return (static_cast<size_t>(rows) * 4 + 15) / 16 * 16; }

template <typename T>
__global__ void __launch_bounds__(kArgThreads) argmax_blocks_kernel(SampleParams p, int nb) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // the logits come from the previous kernel
  constexpr int PV = kern::kVec16<T>;
  using P = kern::Pack<T, PV>;
  const int r = static_cast<int>(blockIdx.y), b = static_cast<int>(blockIdx.x), t = static_cast<int>(threadIdx.x);
  const T* row = static_cast<const T*>(p.logits) + static_cast<int64_t>(r) * p.ld;
  const int64_t lo = b * kArgChunk, hi = min(p.vocab, lo + kArgChunk);
  float best = -INFINITY;
  int64_t bi = p.vocab;  // none yet: the first element a thread sees is taken whatever it holds
  int64_t tail = lo;
  if ((reinterpret_cast<uintptr_t>(row) & 15) == 0) {  // lo is a multiple of PV: aligned packs
    const int64_t packs_end = lo + (hi - lo) / PV * PV;
    for (int64_t i = lo + static_cast<int64_t>(t) * PV; i < packs_end; i += kArgThreads * PV) {
      const P pk = *reinterpret_cast<const P*>(row + i);
#pragma unroll
      for (int e = 0; e < PV; ++e) {
        const float v = kern::to_float(pk.v[e]);
        if (v > best || bi == p.vocab) { best = v; bi = i + e; }
      }
    }
    tail = packs_end;
  }
  for (int64_t i = tail + t; i < hi; i += kArgThreads) {  // ids above every pack of the block
    const float v = logit(row, i);
    if (v > best || bi == p.vocab) { best = v; bi = i; }
  }
  warp_argmax(best, bi);
  __shared__ float wv[kArgWarps];
  __shared__ int64_t wi[kArgWarps];
  __shared__ bool last;
  const int warp = t / 32, lane = t % 32;
  if (lane == 0) { wv[warp] = best; wi[warp] = bi; }
  __syncthreads();
  auto* tickets = static_cast<unsigned*>(p.workspace);
  auto* pairs = reinterpret_cast<ArgPair*>(static_cast<char*>(p.workspace) + tickets_bytes(p.rows)) +
                static_cast<int64_t>(r) * kArgMaxBlocks;
  if (t == 0) {
    float v = wv[0];
    int64_t i = wi[0];
    for (int w = 1; w < kArgWarps; ++w)
      if (better(wv[w], wi[w], v, i)) { v = wv[w]; i = wi[w]; }
    pairs[b] = ArgPair{v, static_cast<int32_t>(i)};
    __threadfence();  // the pair is visible before the ticket says so
    last = atomicAdd(&tickets[r], 1u) == static_cast<unsigned>(nb - 1);
  }
  __syncthreads();
  if (!last || warp != 0) return;
  __threadfence();
  float v = -INFINITY;
  int64_t i = p.vocab;
  for (int q = lane; q < nb; q += 32) {
    const float av = __ldcg(&pairs[q].v);  // past L1: other blocks wrote them
    const int64_t ai = __ldcg(&pairs[q].i);
    if (better(av, ai, v, i) || i == p.vocab) { v = av; i = ai; }
  }
  warp_argmax(v, i);
  if (lane == 0) {
    p.out_ids[r] = static_cast<int32_t>(i);
    tickets[r] = 0;
  }
}

}  // namespace

size_t sample_workspace_bytes(int rows) {
  return tickets_bytes(rows) + static_cast<size_t>(rows) * kArgMaxBlocks * sizeof(ArgPair);
}

int sample_argmax_mode() {
  static const int mode = [] {
    const char* v = std::getenv("MINFER_SAMPLE_ARGMAX");
    if (!v || !*v || std::strcmp(v, "blocks") == 0) return 1;
    if (std::strcmp(v, "block") == 0) return 0;
    std::fprintf(stderr, "minfer: MINFER_SAMPLE_ARGMAX=%s is not one of blocks, block; using blocks\n", v);
    return 1;
  }();
  return mode;
}

uint64_t sample_mix64(uint64_t z) { return mix(z); }
double sample_uniform(uint64_t seed, int row, uint64_t counter) { return uniform01(seed, row, counter); }

Status sample_forward(const SampleParams& p, cudaStream_t stream) {
  MINFER_REQUIRE(p.rows > 0 && p.vocab > 0 && p.ld >= p.vocab, "vocab", "rows, vocab > 0 and ld >= vocab");
  MINFER_REQUIRE(p.vocab < (1ll << 31), "vocab", "must fit int32 ids");
  MINFER_REQUIRE(p.logits && p.out_ids, "logits", "logits and out_ids must be set");
  MINFER_REQUIRE(p.temperature <= 0.0f || p.counters, "counters", "required when temperature > 0");
  MINFER_REQUIRE(p.top_k >= 0, "top_k", "must be >= 0, got " + std::to_string(p.top_k));
  MINFER_REQUIRE(p.top_p > 0.0f && p.top_p <= 1.0f, "top_p", "must be in (0, 1], got " + std::to_string(p.top_p));
  const bool many = p.temperature <= 0.0f &&
                    (p.argmax_blocks >= 0 ? p.argmax_blocks == 1 : sample_argmax_mode() == 1 && p.workspace);
  if (many) {
    MINFER_REQUIRE(p.workspace, "workspace", "the many-block argmax needs SampleParams::workspace");
    MINFER_REQUIRE(p.workspace_bytes >= sample_workspace_bytes(p.rows), "workspace_bytes",
                   "needs sample_workspace_bytes(" + std::to_string(p.rows) + ") = " +
                       std::to_string(sample_workspace_bytes(p.rows)) + ", got " + std::to_string(p.workspace_bytes));
    MINFER_REQUIRE(p.rows <= 65535, "rows", "at most 65535 with the many-block argmax");
    const int nb = static_cast<int>((p.vocab + kArgChunk - 1) / kArgChunk);
    MINFER_REQUIRE(nb <= kArgMaxBlocks, "vocab",
                   "at most " + std::to_string(kArgMaxBlocks * kArgChunk) + " with the many-block argmax, got " +
                       std::to_string(p.vocab));
    MINFER_DISPATCH_DTYPE(p.dtype, T, {
      MINFER_CUDA_RETURN(kern::launch_pdl(argmax_blocks_kernel<T>, dim3(static_cast<unsigned>(nb), static_cast<unsigned>(p.rows)),
                                          kArgThreads, 0, stream, p, nb));
      MINFER_LAUNCH_RETURN();
      return Status::ok();
    });
  }
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    MINFER_CUDA_RETURN(kern::launch_pdl(sample_kernel<T>, static_cast<unsigned>(p.rows), kThreads, 0, stream, p));
    MINFER_LAUNCH_RETURN();
    return Status::ok();
  });
}

}  // namespace minfer
