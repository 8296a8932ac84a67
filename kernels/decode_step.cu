// kernels/decode_step.cu: the whole-step decode kernel (see decode_step.h). Version v3. Compiled under
// __launch_bounds__(kThreads, 1), which caps it at 168 registers so that a block of 288 threads fits:
// the earlier __maxnreg__(224) gave 204 registers, at which the runtime allows 256 threads a block
// (cudaFuncGetAttributes on an H100), so no block fitted and the launch was refused.
// Block layout: warps 0-7 consume (all the math), warp 8 produces (one lane issues the bulk copies).
// Shared memory: each consumer warp owns a ring of kSlotsPerWarp slots of kSlotBytes; a slot is filled
// with one chunk of weight rows by cp.async.bulk completing on its `full` mbarrier and handed back by
// its warp through its `empty` mbarrier; a scratch area holds a stage's input rows x (R, K) in the
// storage type (or the attention stage's q and per-warp softmax states).
// Chunks: a projection of N logical rows over K inputs gives block b the rows [N b / G, N (b + 1) / G);
// a row-chunk is `nrc` rows (at most kChunkRows weight rows), cut along K into pieces of at most a slot;
// SwiGLU's logical row n is the pair (gate n, up n), two row groups in one slot. Row-chunk c of the
// step (counted across stages) belongs to warp c % 8, all of its K pieces too, so a warp sums whole
// rows in registers: no block barrier per chunk, and 8 chunks are in work at once. The producer and
// the consumers walk the same sequence; a slot and its phase are its warp's running chunk count.
// Consumers per chunk: x packs from shared memory reused across the chunk's rows, 16-byte packs of W,
// warp sums after the last piece, then lane (row, r) does the epilogue (bias, rounding, residual,
// SwiGLU) with its residual or bias element loaded before the chunk's first wait.
// Grid barrier: a flag per block holding the epoch it reached (every block takes every barrier of
// every launch, so all flags are equal between launches); a 10 s timeout traps instead of hanging.
#include "kernels/decode_step.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "kernels/common/bulk.cuh"
#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define MINFER_STEP_DEVICE 1
#else
#define MINFER_STEP_DEVICE 0
#endif

namespace minfer {
namespace {

constexpr int kConsumerWarps = 8;
constexpr int kConsumers = kConsumerWarps * 32;
constexpr int kThreads = kConsumers + 32;  // + the producer warp
constexpr int kSlotBytes = 8 * 1024;
constexpr int kSlotsPerWarp = 3;
constexpr int kSlots = kSlotsPerWarp * kConsumerWarps;
constexpr int kScratchBytes = 32 * 1024;
constexpr int kChunkRows = 8;  // weight rows in one chunk (both groups)
constexpr int kRT = kDecodeStepMaxRows;
constexpr int kHeadsPerPass = 4;  // query heads an attention pass keeps in registers
constexpr int kAttnUnroll = 2;    // keys per subgroup loaded ahead
constexpr int kAttnMinKeys = 32;  // fewest keys per split
constexpr int kMaxHd = 128;

constexpr int kScratchOff = kSlots * kSlotBytes;
constexpr int kRedOff = kScratchOff + kScratchBytes;
constexpr int kBarOff = kRedOff + kConsumerWarps * kRT * 4;
constexpr int kSmemBytes = kBarOff + 2 * kSlots * 8;
static_assert(kSmemBytes <= 227 * 1024, "shared memory per block");
static_assert(kBarOff % 8 == 0, "mbarriers need 8-byte alignment");
// Attention scratch: q (group, hd), per-warp o (warps, pass heads, hd), per-warp max and sum.
constexpr int kAttnScratch =
    (kDecodeStepMaxGroup * kMaxHd + kConsumerWarps * kHeadsPerPass * (kMaxHd + 2) + 2 * kMaxHd) * 4;
static_assert(kAttnScratch <= kScratchBytes, "attention scratch");

constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned long long kTimeoutNs = 10ull * 1000 * 1000 * 1000;
constexpr size_t kBarrierBytes = 4096;  // the grid-barrier flags: one word per block (<= 1024 blocks)

// ---- device helpers --------------------------------------------------------------------------------

using kern::smem_addr;

__device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Spin-wait bookkeeping: traps (an error the host sees) once a wait passes kTimeoutNs.
struct Patience {
  unsigned n = 0;
  unsigned long long t0 = 0;
  __device__ __forceinline__ void tick() {
    if ((++n & 1023u) != 0) return;
    const unsigned long long t = now_ns();
    if (t0 == 0) t0 = t;
    else if (t - t0 > kTimeoutNs) __trap();
  }
};

__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;" ::"n"(kConsumers) : "memory"); }

#if MINFER_STEP_DEVICE
using kern::bulk_copy;
using kern::mbar_arrive;
using kern::mbar_expect_tx;
using kern::mbar_init;
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  Patience pat;
  while (!kern::mbar_try_wait(bar, parity)) pat.tick();
}
#endif

// Trace point `point` of this block: (arrival, departure) in globaltimer ns.
__device__ __forceinline__ void trace_at(unsigned long long* trace, int point, unsigned long long arrive,
                                         unsigned long long depart) {
  unsigned long long* t = trace + (static_cast<int64_t>(point) * gridDim.x + blockIdx.x) * 2;
  t[0] = arrive;
  t[1] = depart;
}

// The grid barrier's state in a block: its flag in the workspace and the epoch it last wrote there.
struct GridSync {
  unsigned* flags;  // (G) each block's epoch, in the workspace
  unsigned epoch;   // this block's, in every lane of warp 0
};

// Every consumer thread of every block arrives; returns when all have (writes before it are visible
// to reads after it, device-wide). Arrival: the block's flag <- epoch + 1 (release); waiting: warp 0
// reads every block's flag until all have reached that epoch (acquire). No atomics, so arrivals do
// not queue on one address. With a trace, thread 0 records its arrival and departure at `point`.
__device__ __forceinline__ void grid_barrier(GridSync& gs, unsigned long long* trace, int& point) {
  consumer_sync();
  if (threadIdx.x < 32) {
    const unsigned long long arrive = trace && threadIdx.x == 0 ? now_ns() : 0;
    const unsigned e = ++gs.epoch;
    if (threadIdx.x == 0) {
      __threadfence();
      asm volatile("st.relaxed.gpu.global.u32 [%0], %1;" ::"l"(gs.flags + blockIdx.x), "r"(e) : "memory");
    }
    Patience pat;
    for (;;) {
      bool arrived = true;
      for (unsigned b = threadIdx.x; b < gridDim.x; b += 32) {
        unsigned v;
        asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(gs.flags + b) : "memory");
        const int d = static_cast<int>(v - e);
        if (d > 1 || d < -1) __trap();  // more than one barrier apart: the flags were not in step at launch
        arrived = arrived && d >= 0;
      }
      if (__all_sync(0xffffffffu, arrived)) break;
      pat.tick();
    }
    __threadfence();
    if (trace && threadIdx.x == 0) trace_at(trace, point, arrive, now_ns());
  }
  ++point;
  consumer_sync();
}

__device__ __forceinline__ int64_t lmin(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Activations written earlier in this kernel by other blocks are read through L2 (.cg), never L1.
template <typename T>
__device__ __forceinline__ float ldcg_f(const T* p) {
  return kern::to_float(__ldcg(p));
}
template <typename Pk>
__device__ __forceinline__ Pk ldcg16(const Pk* p) {
  static_assert(sizeof(Pk) == 16, "16-byte packs");
  const uint4 u = __ldcg(reinterpret_cast<const uint4*>(p));
  Pk r;
  memcpy(&r, &u, sizeof r);
  return r;
}
template <typename Pk>
__device__ __forceinline__ Pk ldg16(const Pk* p) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  Pk r;
  memcpy(&r, &u, sizeof r);
  return r;
}

template <typename T>
__device__ __forceinline__ float round_to(float v) {
  return kern::to_float(kern::from_float<T>(v));
}

// Shared-memory areas of one block.
struct Smem {
  unsigned char* ring;   // (warps, kSlotsPerWarp, kSlotBytes)
  unsigned char* scratch;
  float* red;            // (warps, kRT) block reductions
  uint64_t* full;        // (kSlots)
  uint64_t* empty;       // (kSlots)
};

// One projection's walk: this block's logical rows and how they are cut into chunks.
struct Geo {
  const unsigned char* w;  // (groups * gstride rows, K) of T
  int64_t k;               // K
  int64_t gstride;         // rows from group 0 to group 1 (SwiGLU: I)
  int groups;              // 1, or 2 (gate, up)
  int nk;                  // K per chunk
  int kchunks;             // chunks per row
  int nrc;                 // logical rows per chunk
  int64_t rb, re;          // this block's logical rows [rb, re)
};

template <typename T>
__device__ __forceinline__ Geo make_geo(const void* w, int64_t n, int64_t k, int groups, int64_t gstride) {
  constexpr int es = sizeof(T), V = kern::kVec16<T>;
  Geo g;
  g.w = static_cast<const unsigned char*>(w);
  g.k = k;
  g.gstride = gstride;
  g.groups = groups;
  const int64_t row_bytes = k * es * groups;
  if (row_bytes <= kSlotBytes) {
    g.nk = static_cast<int>(k);
    g.kchunks = 1;
    g.nrc = static_cast<int>(lmin(kChunkRows / groups, kSlotBytes / row_bytes));
  } else {
    g.nk = (kSlotBytes / (groups * es)) / V * V;
    g.kchunks = static_cast<int>((k + g.nk - 1) / g.nk);
    g.nrc = 1;
  }
  g.rb = n * blockIdx.x / gridDim.x;
  g.re = n * (blockIdx.x + 1) / gridDim.x;
  return g;
}

// A warp's n-th chunk: its slot and the phase that slot is in.
__device__ __forceinline__ unsigned slot_of(int warp, unsigned n) {
  return static_cast<unsigned>(warp) * kSlotsPerWarp + n % kSlotsPerWarp;
}
__device__ __forceinline__ unsigned phase_of(unsigned n) { return (n / kSlotsPerWarp) & 1u; }

#if MINFER_STEP_DEVICE
// Producer: every chunk of g into its warp's ring, in the consumers' order. rc: the step's row-chunk
// count; cnt: each warp's chunk count.
template <typename T>
__device__ void produce(const Geo& g, unsigned& rc, unsigned (&cnt)[kConsumerWarps], const Smem& s) {
  constexpr int es = sizeof(T);
  // Row-chunks in groups of one per warp, K pieces issued piece-major across the group, so a row cut
  // into more pieces than its warp has slots does not hold up the other warps' copies.
  for (int64_t r0 = g.rb; r0 < g.re; r0 += static_cast<int64_t>(kConsumerWarps) * g.nrc) {
    const int group = static_cast<int>(lmin(kConsumerWarps, (g.re - r0 + g.nrc - 1) / g.nrc));
    for (int kc = 0; kc < g.kchunks; ++kc)
      for (int j = 0; j < group; ++j) {
      const int64_t r = r0 + static_cast<int64_t>(j) * g.nrc;
      const int nr = static_cast<int>(lmin(g.nrc, g.re - r));
      const int owner = static_cast<int>((rc + j) % kConsumerWarps);
      const int64_t k0 = static_cast<int64_t>(kc) * g.nk;
      const int nkc = static_cast<int>(lmin(g.nk, g.k - k0));
      const unsigned n = cnt[owner]++;
      const unsigned slot = slot_of(owner, n);
      mbar_wait(&s.empty[slot], phase_of(n) ^ 1u);
      const unsigned part = static_cast<unsigned>(nr * nkc * es);  // bytes of one group
      mbar_expect_tx(&s.full[slot], part * static_cast<unsigned>(g.groups));
      for (int gi = 0; gi < g.groups; ++gi) {
        const unsigned char* src = g.w + ((gi * g.gstride + r) * g.k + k0) * es;
        bulk_copy(s.ring + slot * kSlotBytes + gi * part, src, part, &s.full[slot]);
      }
    }
    rc += group;
  }
}
#endif

// Consumers: warp w takes the row-chunks c of g with c % 8 == w, against x (R, K) in shared memory;
// lane (i, r) of a row-chunk calls epi.out(row, r, sums[groups], epi.pre(row, r)) for its rows, where
// pre (the residual or bias element) is loaded before the chunk's data is waited for. n: this warp's
// chunk count.
template <typename T, int RT, typename Epi>
__device__ void consume(const Geo& g, unsigned& rc, unsigned& n, const Smem& s, int R, const T* x, const Epi& epi) {
#if MINFER_STEP_DEVICE
  constexpr int V = kern::kVec16<T>;
  using Pk = kern::Pack<T, V>;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t xpacks = g.k / V;  // x row stride in packs
  for (int64_t r = g.rb; r < g.re; r += g.nrc, ++rc) {
    if (static_cast<int>(rc % kConsumerWarps) != warp) continue;
    const int nr = static_cast<int>(lmin(g.nrc, g.re - r));
    const int P = g.groups * nr;  // weight rows of the chunk
    const int mi = lane / R, mr = lane % R;
    const bool mine = lane < nr * R;
    const float pre = mine ? epi.pre(r + mi, mr) : 0.f;
    float acc[kChunkRows][RT];
#pragma unroll
    for (int pr = 0; pr < kChunkRows; ++pr)
#pragma unroll
      for (int rr = 0; rr < RT; ++rr) acc[pr][rr] = 0.f;
    for (int kc = 0; kc < g.kchunks; ++kc, ++n) {
      const int64_t k0 = static_cast<int64_t>(kc) * g.nk;
      const int packs = static_cast<int>(lmin(g.nk, g.k - k0)) / V;
      const unsigned slot = slot_of(warp, n);
      const Pk* xr = reinterpret_cast<const Pk*>(x) + k0 / V;
      const Pk* ring = reinterpret_cast<const Pk*>(s.ring + slot * kSlotBytes);  // (P, packs)
      mbar_wait(&s.full[slot], phase_of(n));
#pragma unroll 2
      for (int j = lane; j < packs; j += 32) {
        float xf[RT][V];
#pragma unroll
        for (int rr = 0; rr < RT; ++rr) {
          if (rr < R) kern::widen<T>(xr[rr * xpacks + j], xf[rr]);
        }
#pragma unroll
        for (int pr = 0; pr < kChunkRows; ++pr) {
          if (pr >= P) break;
          float wf[V];
          kern::widen<T>(ring[pr * packs + j], wf);
#pragma unroll
          for (int rr = 0; rr < RT; ++rr) {
            if (rr >= R) break;
#pragma unroll
            for (int e = 0; e < V; ++e) acc[pr][rr] = fmaf(wf[e], xf[rr][e], acc[pr][rr]);
          }
        }
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(&s.empty[slot]);  // the slot's data is in registers now
    }
    float v[2] = {0.f, 0.f};
#pragma unroll
    for (int pr = 0; pr < kChunkRows; ++pr) {
      if (pr >= P) break;
#pragma unroll
      for (int rr = 0; rr < RT; ++rr) {
        if (rr >= R) break;
        const float t = warp_sum(acc[pr][rr]);
        if (rr == mr && pr == mi) v[0] = t;
        if (rr == mr && pr == nr + mi) v[1] = t;
      }
    }
    if (mine) epi.out(r + mi, mr, v, pre);
  }
#else
  (void)g, (void)rc, (void)n, (void)s, (void)R, (void)x, (void)epi;
#endif
}

// Epilogues of consume(): pre(row, r) is loaded early, out(row, r, sums, pre) stores.
template <typename T>
struct EpiBias {  // dst (R, ld) = round(sum + bias)
  T* dst;
  const T* bias;  // (N) or null
  int64_t ld;
  __device__ float pre(int64_t row, int) const { return bias ? kern::to_float(bias[row]) : 0.f; }
  __device__ void out(int64_t row, int r, const float* v, float b) const {
    dst[r * ld + row] = kern::from_float<T>(v[0] + b);
  }
};
template <typename T>
struct EpiResidual {  // res (R, ld) = round(res + round(sum)), each element owned by one lane
  T* res;
  int64_t ld;
  __device__ float pre(int64_t row, int r) const { return ldcg_f(res + r * ld + row); }
  __device__ void out(int64_t row, int r, const float* v, float old) const {
    res[r * ld + row] = kern::from_float<T>(old + round_to<T>(v[0]));
  }
};
template <typename T>
struct EpiSwiglu {  // dst (R, ld) = round(silu(round(gate)) * round(up))
  T* dst;
  int64_t ld;
  __device__ float pre(int64_t, int) const { return 0.f; }
  __device__ void out(int64_t row, int r, const float* v, float) const {
    const float g = round_to<T>(v[0]), u = round_to<T>(v[1]);
    dst[r * ld + row] = kern::from_float<T>(g / (1.f + expf(-g)) * u);
  }
};

// x (R, H) = round(rmsnorm(res) * w), as kernels/rmsnorm rounds it; every block computes all of it.
// One pass loads res and the norm weight together (the weight staged in shared memory after x), so
// the stage waits for one L2 round trip.
template <typename T, int RT>
__device__ void stage_norm(const T* res, const T* w, int64_t H, int R, float eps, T* x, const Smem& s) {
  constexpr int V = kern::kVec16<T>;
  using Pk = kern::Pack<T, V>;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t packs = H / V;
  Pk* ws = reinterpret_cast<Pk*>(x + R * H);  // (H) the weight
  float ss[RT];
#pragma unroll
  for (int rr = 0; rr < RT; ++rr) ss[rr] = 0.f;
  for (int64_t j = tid; j < packs; j += kConsumers) {
    ws[j] = ldg16(reinterpret_cast<const Pk*>(w) + j);
#pragma unroll
    for (int rr = 0; rr < RT; ++rr) {
      if (rr >= R) break;
      const Pk v = ldcg16(reinterpret_cast<const Pk*>(res + rr * H) + j);
      float f[V];
      kern::unpack(v, f);
#pragma unroll
      for (int e = 0; e < V; ++e) ss[rr] += f[e] * f[e];
      reinterpret_cast<Pk*>(x + rr * H)[j] = v;
    }
  }
#pragma unroll
  for (int rr = 0; rr < RT; ++rr) {
    if (rr >= R) break;
    ss[rr] = warp_sum(ss[rr]);
    if (lane == 0) s.red[warp * kRT + rr] = ss[rr];
  }
  consumer_sync();
#pragma unroll
  for (int rr = 0; rr < RT; ++rr) {
    if (rr >= R) break;
    float t = 0.f;
    for (int q = 0; q < kConsumerWarps; ++q) t += s.red[q * kRT + rr];
    const float rstd = rsqrtf(t / static_cast<float>(H) + eps);
    for (int64_t j = tid; j < packs; j += kConsumers) {  // the packs this thread staged
      Pk* xp = reinterpret_cast<Pk*>(x + rr * H) + j;
      float f[V], g[V];
      kern::unpack(*xp, f);
      kern::unpack(ws[j], g);
#pragma unroll
      for (int e = 0; e < V; ++e) f[e] = f[e] * rstd * g[e];
      *xp = kern::pack<T, V>(f);
    }
  }
  consumer_sync();
}

// x (R, K) = src (R, K), through L2.
template <typename T>
__device__ void stage_copy(const T* src, int64_t n, T* x) {
  constexpr int V = kern::kVec16<T>;
  using Pk = kern::Pack<T, V>;
  for (int64_t j = threadIdx.x; j < n / V; j += kConsumers)
    reinterpret_cast<Pk*>(x)[j] = ldcg16(reinterpret_cast<const Pk*>(src) + j);
  consumer_sync();
}

struct Split {
  float* o;    // (R, nh, maxS, hd) normalised partial outputs
  float* lse;  // (R, nh, maxS) log2-sum-exp (-inf: no key)
  int max_splits;
};

// x (R, Q) = the splits' partials merged by their log-sum-exp, rounded (decode_attention's combine).
template <typename T>
__device__ void stage_combine(const Split& sp, int S, int R, int nh, int hd, T* x, float* wts /*(R, nh, S)*/) {
  const int tid = threadIdx.x;
  for (int e = tid; e < R * nh; e += kConsumers) {
    const float* lse = sp.lse + static_cast<int64_t>(e) * sp.max_splits;
    float mx = -INFINITY;
    for (int q = 0; q < S; ++q) mx = fmaxf(mx, __ldcg(lse + q));
    float den = 0.f;
    for (int q = 0; q < S; ++q) {
      const float l = __ldcg(lse + q);
      const float w = mx > -INFINITY && l > -INFINITY ? exp2f(l - mx) : 0.f;
      wts[e * S + q] = w;
      den += w;
    }
    for (int q = 0; q < S; ++q) wts[e * S + q] = den > 0.f ? wts[e * S + q] / den : 0.f;
  }
  consumer_sync();
  const int Q = nh * hd;
  for (int e = tid; e < R * Q / 4; e += kConsumers) {
    const int idx = e * 4, rr = idx / Q, hq = idx % Q, h = hq / hd, d = hq % hd;
    const float* wt = wts + (rr * nh + h) * S;
    float a[4] = {0.f, 0.f, 0.f, 0.f};
    for (int q = 0; q < S; ++q) {
      const float w = wt[q];
      if (w == 0.f) continue;
      const float4 o = __ldcg(reinterpret_cast<const float4*>(
          sp.o + ((static_cast<int64_t>(rr) * nh + h) * sp.max_splits + q) * hd + d));
      a[0] += w * o.x, a[1] += w * o.y, a[2] += w * o.z, a[3] += w * o.w;
    }
#pragma unroll
    for (int c = 0; c < 4; ++c) x[idx + c] = kern::from_float<T>(a[c]);
  }
  consumer_sync();
}

// QK-norm (optional) and RoPE of one head by one warp: store(i, value) for i < hd, as
// kernels/kv_cache.cu's rope_head computes it (fp32, the caller rounds once).
template <typename T, typename Store>
__device__ __forceinline__ void rope_head(const T* src, const T* norm, float eps, const float* cs, int hd, Store store) {
  const int half = hd / 2, lane = threadIdx.x % 32;
  float x0[2], x1[2], n0[2], n1[2], c[2], sn[2], ss = 0.f;
#pragma unroll
  for (int r = 0; r < 2; ++r) {  // every load first: one round trip
    const int i = lane + 32 * r;
    const bool in = i < half;
    x0[r] = in ? ldcg_f(src + i) : 0.f;
    x1[r] = in ? ldcg_f(src + i + half) : 0.f;
    n0[r] = in && norm ? kern::to_float(norm[i]) : 1.f;
    n1[r] = in && norm ? kern::to_float(norm[i + half]) : 1.f;
    c[r] = in ? cs[2 * i] : 0.f;
    sn[r] = in ? cs[2 * i + 1] : 0.f;
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) ss += x0[r] * x0[r] + x1[r] * x1[r];
  const float inv = norm ? 1.0f / sqrtf(warp_sum(ss) / static_cast<float>(hd) + eps) : 1.0f;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = lane + 32 * r;
    if (i >= half) continue;
    float a = x0[r], b = x1[r];
    if (norm) {
      a = a * inv * n0[r];
      b = b * inv * n1[r];
    }
    store(i, a * c[r] - b * sn[r]);
    store(i + half, b * c[r] + a * sn[r]);
  }
}

// Attention of layer l: items (row, KV head, split) over the blocks.
template <typename T>
__device__ void stage_attention(const DecodeStepParams& p, const DecodeStepLayer& L, int l, int S, const Split& sp,
                                float scale_log2, const Smem& s) {
  constexpr int V = kern::kVec16<T>;
  using Pk = kern::Pack<T, V>;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int hd = p.head_dim, nh = p.heads, nkv = p.kv_heads, gq = nh / nkv, R = p.rows;
  const int Q = nh * hd, KV = nkv * hd, W = Q + 2 * KV;
  const int LPK = hd / V, KPW = 32 / LPK, NSG = kConsumerWarps * KPW;  // lanes per key, keys per warp
  const int sub = lane / LPK, li = lane % LPK;
  float* qs = reinterpret_cast<float*>(s.scratch);               // (gq, hd)
  float* wo = qs + kDecodeStepMaxGroup * kMaxHd;                  // (warps, pass heads, hd)
  float* wm = wo + kConsumerWarps * kHeadsPerPass * kMaxHd;       // (warps, pass heads)
  float* wl = wm + kConsumerWarps * kHeadsPerPass;                // (warps, pass heads)
  float* knew = wl + kConsumerWarps * kHeadsPerPass;              // (hd) the new key, rounded
  float* vnew = knew + kMaxHd;                                    // (hd) the new value
  T* kc = static_cast<T*>(p.k_cache) + l * p.layer_stride;
  T* vc = static_cast<T*>(p.v_cache) + l * p.layer_stride;
  T* att = static_cast<T*>(p.att);
  const int items = R * nkv * S;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int rr = item / (nkv * S), g = (item / S) % nkv, split = item % S;
    const int slot = p.token_slot[rr], pos = p.positions[rr], len = p.cache_lens[rr];
    const bool live = slot >= 0 && pos >= 0 && pos < p.max_positions && pos < p.capacity && len > pos &&
                      len <= p.capacity;
    const int chunk = (len + S - 1) / S, k0 = split * chunk, k1 = min(len, k0 + chunk);
    const int h0 = g * gq;
    if (!live || k0 >= k1) {  // nothing to attend to: att 0, or an empty split
      for (int e = tid; e < gq * hd; e += kConsumers) {
        const int h = h0 + e / hd, d = e % hd;
        const int64_t bh = static_cast<int64_t>(rr) * nh + h;
        if (S == 1) att[bh * hd + d] = kern::from_float<T>(0.f);
        else {
          sp.o[(bh * sp.max_splits + split) * hd + d] = 0.f;
          if (d == 0) sp.lse[bh * sp.max_splits + split] = -INFINITY;
        }
      }
      continue;
    }
    const T* row = static_cast<const T*>(p.qkv) + static_cast<int64_t>(rr) * W;
    const float* cs = p.cos_sin + static_cast<int64_t>(pos) * hd;
    const int64_t new_row = ((static_cast<int64_t>(slot) * p.capacity + pos) * nkv + g) * hd;
    const bool has_new = pos >= k0 && pos < k1;
    // Keys [k0, k1): warp w, subgroup `sub` takes k0 + w * KPW + sub + t * NSG (loop bounds uniform per
    // warp), kAttnUnroll keys a batch, the next batch loaded while this one is used. The first batch is
    // loaded before the RoPE work; the new key (position pos, not in the cache yet) comes from shared
    // memory instead.
    auto load = [&](int wbase, Pk (&kp)[kAttnUnroll], Pk (&vp)[kAttnUnroll]) {
#pragma unroll
      for (int u = 0; u < kAttnUnroll; ++u) {
        const int key = wbase + u * NSG + sub;
        if (key < k1 && key != pos) {
          const int64_t off = ((static_cast<int64_t>(slot) * p.capacity + key) * nkv + g) * hd + li * V;
          kp[u] = ldcg16(reinterpret_cast<const Pk*>(kc + off));
          vp[u] = ldcg16(reinterpret_cast<const Pk*>(vc + off));
        } else {
          kp[u] = Pk{};
          vp[u] = Pk{};
        }
      }
    };
    Pk kp[kAttnUnroll], vp[kAttnUnroll];
    load(k0 + warp * KPW, kp, vp);
    for (int task = warp; task < gq + 2; task += kConsumerWarps) {
      if (task < gq) {
        float* qh = qs + task * hd;
        rope_head<T>(row + (h0 + task) * hd, static_cast<const T*>(L.q_norm), p.eps, cs, hd,
                     [&](int i, float v) { qh[i] = round_to<T>(v); });
      } else if (has_new && task == gq) {
        T* kn = kc + new_row;
        rope_head<T>(row + Q + g * hd, static_cast<const T*>(L.k_norm), p.eps, cs, hd, [&](int i, float v) {
          const T t = kern::from_float<T>(v);
          kn[i] = t;
          knew[i] = kern::to_float(t);
        });
      } else if (has_new) {
        const T* vs = row + Q + KV + g * hd;
        for (int d = lane; d < hd; d += 32) {
          const T t = __ldcg(vs + d);
          vc[new_row + d] = t;
          vnew[d] = kern::to_float(t);
        }
      }
    }
    consumer_sync();  // q, the new key and value in shared memory
    for (int hp = 0; hp < gq; hp += kHeadsPerPass) {
      const int gn = min(kHeadsPerPass, gq - hp);
      float qf[kHeadsPerPass][V], o[kHeadsPerPass][V], m[kHeadsPerPass], lsum[kHeadsPerPass];
#pragma unroll
      for (int j = 0; j < kHeadsPerPass; ++j) {
        m[j] = -INFINITY, lsum[j] = 0.f;
#pragma unroll
        for (int e = 0; e < V; ++e) {
          qf[j][e] = j < gn ? qs[(hp + j) * hd + li * V + e] : 0.f;
          o[j][e] = 0.f;
        }
      }
      if (hp > 0) load(k0 + warp * KPW, kp, vp);
      for (int wbase = k0 + warp * KPW; wbase < k1; wbase += NSG * kAttnUnroll) {
        Pk kq[kAttnUnroll], vq[kAttnUnroll];
        load(wbase + NSG * kAttnUnroll, kq, vq);  // the next batch (keys past k1 are not read)
#pragma unroll
        for (int u = 0; u < kAttnUnroll; ++u) {
          const int key = wbase + u * NSG + sub;
          const bool ok = key < k1;
          float kf[V], vf[V];
          kern::widen<T>(kp[u], kf);
          kern::widen<T>(vp[u], vf);
          if (key == pos) {
#pragma unroll
            for (int e = 0; e < V; ++e) kf[e] = knew[li * V + e], vf[e] = vnew[li * V + e];
          }
#pragma unroll
          for (int j = 0; j < kHeadsPerPass; ++j) {
            if (j >= gn) break;  // uniform
            float dot = 0.f;
#pragma unroll
            for (int e = 0; e < V; ++e) dot = fmaf(qf[j][e], kf[e], dot);
            for (int off = LPK / 2; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
            if (ok) {
              const float sc = dot * scale_log2, mn = fmaxf(m[j], sc);
              const float corr = exp2f(m[j] - mn), pw = exp2f(sc - mn);
              lsum[j] = lsum[j] * corr + pw;
#pragma unroll
              for (int e = 0; e < V; ++e) o[j][e] = fmaf(o[j][e], corr, pw * vf[e]);
              m[j] = mn;
            }
          }
        }
#pragma unroll
        for (int u = 0; u < kAttnUnroll; ++u) kp[u] = kq[u], vp[u] = vq[u];
      }
      // Merge the warp's subgroups, then the warps through shared memory.
      for (int off = LPK; off < 32; off <<= 1) {
#pragma unroll
        for (int j = 0; j < kHeadsPerPass; ++j) {
          if (j >= gn) break;
          const float m2 = __shfl_xor_sync(0xffffffffu, m[j], off);
          const float l2 = __shfl_xor_sync(0xffffffffu, lsum[j], off);
          const float mn = fmaxf(m[j], m2);
          const float c1 = mn == -INFINITY ? 0.f : exp2f(m[j] - mn);
          const float c2 = mn == -INFINITY ? 0.f : exp2f(m2 - mn);
#pragma unroll
          for (int e = 0; e < V; ++e) {
            const float o2 = __shfl_xor_sync(0xffffffffu, o[j][e], off);
            o[j][e] = o[j][e] * c1 + o2 * c2;
          }
          lsum[j] = lsum[j] * c1 + l2 * c2;
          m[j] = mn;
        }
      }
      if (sub == 0) {
#pragma unroll
        for (int j = 0; j < kHeadsPerPass; ++j) {
          if (j >= gn) break;
#pragma unroll
          for (int e = 0; e < V; ++e) wo[(warp * kHeadsPerPass + j) * hd + li * V + e] = o[j][e];
          if (li == 0) wm[warp * kHeadsPerPass + j] = m[j], wl[warp * kHeadsPerPass + j] = lsum[j];
        }
      }
      consumer_sync();
      for (int e = tid; e < gn * hd; e += kConsumers) {
        const int j = e / hd, d = e % hd;
        float mx = -INFINITY;
        for (int w = 0; w < kConsumerWarps; ++w) mx = fmaxf(mx, wm[w * kHeadsPerPass + j]);
        float num = 0.f, den = 0.f;
        if (mx > -INFINITY) {
          for (int w = 0; w < kConsumerWarps; ++w) {
            const float mw = wm[w * kHeadsPerPass + j];
            if (mw == -INFINITY) continue;
            const float c = exp2f(mw - mx);
            num += c * wo[(w * kHeadsPerPass + j) * hd + d];
            den += c * wl[w * kHeadsPerPass + j];
          }
        }
        const float val = den > 0.f ? num / den : 0.f;
        const int64_t bh = static_cast<int64_t>(rr) * nh + h0 + hp + j;
        if (S == 1) {
          att[bh * hd + d] = kern::from_float<T>(val);
        } else {
          sp.o[(bh * sp.max_splits + split) * hd + d] = val;
          if (d == 0) sp.lse[bh * sp.max_splits + split] = den > 0.f ? mx + log2f(den) : -INFINITY;
        }
      }
      consumer_sync();  // wo, wm, wl (and qs, next item) are reused
    }
  }
}

template <typename T, int RT>
__global__ void __launch_bounds__(kThreads, 1) decode_step_kernel(DecodeStepParams p, float scale_log2) {
#if MINFER_STEP_DEVICE
  constexpr int V = kern::kVec16<T>;
  using Pk = kern::Pack<T, V>;
  extern __shared__ __align__(128) unsigned char smem[];
  Smem s;
  s.ring = smem;
  s.scratch = smem + kScratchOff;
  s.red = reinterpret_cast<float*>(smem + kRedOff);
  s.full = reinterpret_cast<uint64_t*>(smem + kBarOff);
  s.empty = s.full + kSlots;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kSlots; ++i) {
      mbar_init(&s.full[i], 1);
      mbar_init(&s.empty[i], 1);  // its warp's lane 0
    }
    kern::fence_mbarrier_init();
  }
  __syncthreads();

  const int64_t H = p.hidden, nh = p.heads, nkv = p.kv_heads, hd = p.head_dim, I = p.intermediate;
  const int64_t Q = nh * hd, KV = nkv * hd, W = Q + 2 * KV;
  const int R = p.rows;
  if (threadIdx.x / 32 == kConsumerWarps) {  // the producer warp
    if (threadIdx.x % 32 == 0) {
      unsigned rc = 0, cnt[kConsumerWarps] = {};
      for (int l = 0; l < p.layers; ++l) {
        const DecodeStepLayer L = p.layers_dev[l];
        produce<T>(make_geo<T>(L.wqkv, W, H, 1, 0), rc, cnt, s);
        produce<T>(make_geo<T>(L.wo, H, Q, 1, 0), rc, cnt, s);
        produce<T>(make_geo<T>(L.wgu, I, H, 2, I), rc, cnt, s);
        produce<T>(make_geo<T>(L.wdown, H, I, 1, 0), rc, cnt, s);
      }
      produce<T>(make_geo<T>(p.lm_head, p.vocab, H, 1, 0), rc, cnt, s);
    }
    return;
  }

  GridSync barrier{static_cast<unsigned*>(p.workspace), 0};
  if (threadIdx.x < 32) barrier.epoch = *reinterpret_cast<volatile unsigned*>(barrier.flags + blockIdx.x);
  int point = 0;  // trace points: 0 the start, then each grid barrier, then the end
  if (p.trace && threadIdx.x == 0) {
    const unsigned long long t = now_ns();
    trace_at(p.trace, point, t, t);
  }
  ++point;
  Split sp;
  sp.max_splits = p.max_splits;
  sp.o = reinterpret_cast<float*>(static_cast<unsigned char*>(p.workspace) + kBarrierBytes);
  sp.lse = sp.o + static_cast<int64_t>(R) * nh * p.max_splits * hd;
  T* x = reinterpret_cast<T*>(s.scratch);
  T* res = static_cast<T*>(p.res);
  const int tid = threadIdx.x;

  // Splits: from the longest cache (the same in every block).
  int max_len = 1;
  for (int r = 0; r < R; ++r) max_len = max(max_len, p.cache_lens[r]);
  const int s_cap = max(1, min(p.max_splits, static_cast<int>(gridDim.x) / (R * static_cast<int>(nkv))));
  const int S = min(s_cap, (max_len + kAttnMinKeys - 1) / kAttnMinKeys);

  // embed: res = embed[ids] (zeros for an id outside the vocabulary).
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kConsumers + tid; e < R * H / V;
       e += static_cast<int64_t>(gridDim.x) * kConsumers) {
    const int64_t rr = e / (H / V), j = e % (H / V);
    const int id = p.ids[rr];
    Pk v{};
    if (id >= 0 && id < p.vocab) v = ldg16(reinterpret_cast<const Pk*>(static_cast<const T*>(p.embed) + id * H) + j);
    reinterpret_cast<Pk*>(res + rr * H)[j] = v;
  }
  grid_barrier(barrier, p.trace, point);

  unsigned rc = 0, n = 0;  // the step's row-chunk count, this warp's chunk count
  const EpiResidual<T> residual{res, H};
  for (int l = 0; l < p.layers; ++l) {
    const DecodeStepLayer L = p.layers_dev[l];
    // qkv = rmsnorm(res) Wqkv^T + b
    stage_norm<T, RT>(res, static_cast<const T*>(L.attn_norm), H, R, p.eps, x, s);
    consume<T, RT>(make_geo<T>(L.wqkv, W, H, 1, 0), rc, n, s, R, x,
                   EpiBias<T>{static_cast<T*>(p.qkv), static_cast<const T*>(L.bqkv), W});
    grid_barrier(barrier, p.trace, point);
    stage_attention<T>(p, L, l, S, sp, scale_log2, s);
    grid_barrier(barrier, p.trace, point);
    // res = res + att Wo^T
    if (S == 1) stage_copy<T>(static_cast<const T*>(p.att), R * Q, x);
    else stage_combine<T>(sp, S, R, static_cast<int>(nh), static_cast<int>(hd), x,
                          reinterpret_cast<float*>(s.scratch + ((R * Q * sizeof(T) + 15) / 16) * 16));
    consume<T, RT>(make_geo<T>(L.wo, H, Q, 1, 0), rc, n, s, R, x, residual);
    grid_barrier(barrier, p.trace, point);
    // act = swiglu(rmsnorm(res) Wgu^T)
    stage_norm<T, RT>(res, static_cast<const T*>(L.ffn_norm), H, R, p.eps, x, s);
    consume<T, RT>(make_geo<T>(L.wgu, I, H, 2, I), rc, n, s, R, x, EpiSwiglu<T>{static_cast<T*>(p.act), I});
    grid_barrier(barrier, p.trace, point);
    // res = res + act Wdown^T
    stage_copy<T>(static_cast<const T*>(p.act), R * I, x);
    consume<T, RT>(make_geo<T>(L.wdown, H, I, 1, 0), rc, n, s, R, x, residual);
    grid_barrier(barrier, p.trace, point);
  }
  // logits = rmsnorm(res) Wlm^T
  stage_norm<T, RT>(res, static_cast<const T*>(p.final_norm), H, R, p.eps, x, s);
  consume<T, RT>(make_geo<T>(p.lm_head, p.vocab, H, 1, 0), rc, n, s, R, x,
                 EpiBias<T>{static_cast<T*>(p.logits), nullptr, p.vocab});
  if (p.trace) {
    consumer_sync();
    if (threadIdx.x == 0) {
      const unsigned long long t = now_ns();
      trace_at(p.trace, point, t, t);
    }
  }
#else
  (void)p, (void)scale_log2;
#endif
}

// ---- host side ------------------------------------------------------------------------------------

int device_major() {
  static const int major = kern::device_attribute(cudaDevAttrComputeCapabilityMajor, 0);
  return major;
}

int sm_count() {
  static const int sms = kern::device_attribute(cudaDevAttrMultiProcessorCount, 0);
  return sms;
}

bool cooperative_launch() {
  static const bool on = [] {
    const char* v = std::getenv("MINFER_STEP_COOP");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

template <typename T, int RT>
Status launch(const DecodeStepParams& p, cudaStream_t stream) {
  auto* kernel = decode_step_kernel<T, RT>;
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  MINFER_CUDA_RETURN(attr);
  static int per_sm = -1;
  if (per_sm < 0) MINFER_CUDA_RETURN(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, kSmemBytes));
  if (per_sm < 1) {  // say why: the kernel's resources against the device's
    cudaFuncAttributes fa{};
    int dev = 0, optin = 0, regs = 0;
    MINFER_CUDA_RETURN(cudaFuncGetAttributes(&fa, kernel));
    MINFER_CUDA_RETURN(cudaGetDevice(&dev));
    MINFER_CUDA_RETURN(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    MINFER_CUDA_RETURN(cudaDeviceGetAttribute(&regs, cudaDevAttrMaxRegistersPerMultiprocessor, dev));
    return Status::error("decode_step: a block does not fit on a multiprocessor: " + std::to_string(kThreads) +
                         " threads x " + std::to_string(fa.numRegs) + " registers (of " + std::to_string(regs) +
                         "; max threads " + std::to_string(fa.maxThreadsPerBlock) + "), " +
                         std::to_string(kSmemBytes) + " + " + std::to_string(fa.sharedSizeBytes) +
                         " bytes of shared memory (opt-in limit " + std::to_string(optin) + ", set " +
                         std::to_string(fa.maxDynamicSharedSizeBytes) + ")");
  }
  const float scale_log2 = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim))) * kLog2e;
  cudaLaunchAttribute attrs[1];
  attrs[0].id = cudaLaunchAttributeCooperative;
  attrs[0].val.cooperative = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(sm_count()));  // one block per SM (the shared memory allows one)
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = kSmemBytes;
  cfg.stream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = cooperative_launch() ? 1 : 0;
  MINFER_CUDA_RETURN(cudaLaunchKernelEx(&cfg, kernel, p, scale_log2));
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

bool aligned(const void* ptr) { return ptr && kern::aligned16(ptr); }

}  // namespace

size_t decode_step_workspace_bytes(int rows, int heads, int head_dim, int max_splits) {
  return kBarrierBytes + static_cast<size_t>(std::max(rows, 0)) * std::max(heads, 0) * std::max(max_splits, 0) *
                             (std::max(head_dim, 0) + 1) * sizeof(float);
}

std::string decode_step_unsupported(const DecodeStepParams& p) {
  if (device_major() < 9) return "needs compute capability 9.0 or newer";
  if (sm_count() < 1) return "no multiprocessor count";
  if (sm_count() > static_cast<int>(kBarrierBytes / 4))
    return "more than " + std::to_string(kBarrierBytes / 4) + " multiprocessors (one barrier flag each)";
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype)), V = 16 / es;
  if (p.rows < 1 || p.rows > kDecodeStepMaxRows) return "rows: " + std::to_string(p.rows) + " (1..4)";
  if (p.head_dim != 16 && p.head_dim != 32 && p.head_dim != 64 && p.head_dim != 128)
    return "head_dim: " + std::to_string(p.head_dim) + " (16, 32, 64, 128)";
  if (p.heads < 1 || p.kv_heads < 1 || p.heads % p.kv_heads != 0) return "heads: kv_heads must divide heads";
  if (p.heads / p.kv_heads > kDecodeStepMaxGroup) return "heads: more than 8 query heads per KV head";
  if (p.layers < 1 || p.vocab < 1 || p.hidden < 1 || p.intermediate < 1) return "layers, vocab, hidden, intermediate: must be >= 1";
  if (p.hidden % V != 0 || p.intermediate % V != 0)
    return "hidden, intermediate: multiples of " + std::to_string(V) + " (16-byte packs)";
  if (p.max_splits < 1 || p.max_splits > kDecodeStepMaxSplits) return "max_splits: 1..16";
  const int64_t q = static_cast<int64_t>(p.heads) * p.head_dim;
  const int64_t kmax = std::max<int64_t>({p.hidden, q, p.intermediate});
  const int64_t need = ((p.rows * kmax * es + 15) / 16) * 16 + static_cast<int64_t>(p.rows) * p.heads * p.max_splits * 4;
  const int64_t need_norm = (p.rows + 1) * static_cast<int64_t>(p.hidden) * es;  // x and the norm weight
  if (need > kScratchBytes || need_norm > kScratchBytes)
    return "rows x max(hidden, heads x head_dim, intermediate) = " + std::to_string(p.rows * kmax) +
           " activations do not fit the " + std::to_string(kScratchBytes / 1024) + " KiB staging buffer";
  if (p.workspace_bytes < decode_step_workspace_bytes(p.rows, p.heads, p.head_dim, p.max_splits) || !aligned(p.workspace))
    return "workspace: too small or not 16-byte aligned";
  for (const void* ptr : {static_cast<const void*>(p.embed), p.final_norm, p.lm_head, static_cast<const void*>(p.res),
                          static_cast<const void*>(p.qkv), static_cast<const void*>(p.att),
                          static_cast<const void*>(p.act), static_cast<const void*>(p.logits),
                          static_cast<const void*>(p.k_cache), static_cast<const void*>(p.v_cache)})
    if (!aligned(ptr)) return "a weight or buffer pointer is null or not 16-byte aligned";
  if (!p.layers_dev || !p.ids || !p.positions || !p.token_slot || !p.cache_lens || !p.cos_sin)
    return "layers_dev, ids, positions, token_slot, cache_lens, cos_sin: must be set";
  if (p.capacity < 1 || p.max_positions < 1 || p.layer_stride < 1) return "capacity, max_positions, layer_stride: must be >= 1";
  return "";
}

bool decode_step_supported(const DecodeStepParams& p) { return decode_step_unsupported(p).empty(); }

int decode_step_blocks() { return sm_count(); }

int decode_step_trace_points(int layers) { return 5 * layers + 3; }

Status decode_step_forward(const DecodeStepParams& p, cudaStream_t stream) {
  const std::string why = decode_step_unsupported(p);
  MINFER_REQUIRE(why.empty(), "decode_step", why);
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    if (p.rows == 1) return launch<T, 1>(p, stream);
    return launch<T, kRT>(p, stream);
  });
}

}  // namespace minfer
