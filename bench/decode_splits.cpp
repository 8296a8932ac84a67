// bench/decode_splits.cpp: bench_decode_splits, the split-count landscape of the decode attention
// kernel (kernels/decode_attention.h). For each decode case (the bench grid of `bench_all --sweep
// decode`, or --case ids) it times decode_attention_forward at every split count in --splits (default:
// 1 up to the kernel's cap, 64 or one split per 128 keys) and writes one CSV row per (case, splits):
// median/p10/p90 time, KV bandwidth, the blocks launched, and the counts the kernel's split rules pick
// (rule_default, rule_waves, rule_fill) for the same case, so a rule can be judged against the best count measured.
// Timing as bench_all's (bench/harness.h): L2 flushed before each sample, events around the launch.
// Not a correctness check: the outputs are not compared (validate_all --sweep decode and
// tests/gpu/test_attention check every split count); inputs are random, never zeros.
// B batch, L kv_len, nh/nkv heads, hd head_dim; contiguous cache (B, L, nkv, hd) or, paged, pages of
// 16 tokens (P, 16, nkv, hd) handed out in a shuffled order as the decode sweep's runner does.
// --layout head|both: also each KV head's keys contiguous (the layout the PyTorch peers are given),
// to tell the access pattern's cost from the kernel's.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "engine/core/atomic_file.h"
#include "engine/core/error.h"
#include "kernels/decode_attention.h"
#include "validate/case.h"
#include "validate/driver_main.h"
#include "validate/runner_util.h"

namespace {

using minfer::val::DeviceBuffer;

struct Options {
  std::vector<std::string> case_ids;
  std::string splits = "all";
  std::string csv;
  int samples = 15;
  uint64_t seed = 1;
  bool quick = false;
  std::string layout = "token";
};

// "all" (empty result: every count up to the cap), "rule" ({0}: the default rule's count) or a
// comma-separated list of counts in [1, 64].
std::vector<int> parse_splits(const std::string& s) {
  std::vector<int> out;
  if (s == "all") return out;
  if (s == "rule") return {0};
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int v = 0;
    try {
      v = std::stoi(item);
    } catch (const std::exception&) {
      throw minfer::UsageError("--splits: '" + item + "' is not a number (a list like 1,2,4 or 'all')");
    }
    if (v < 1 || v > 64) throw minfer::UsageError("--splits: " + std::to_string(v) + " is outside [1, 64]");
    out.push_back(v);
  }
  return out;
}

// Fills n bytes of dst with random bf16/fp16 values in [-1, 1) (as 16-bit patterns of the dtype): one
// 8 MiB random block uploaded, then doubled in place by device copies.
void fill_random(void* dst, size_t n, minfer::DType dt, std::mt19937_64& rng) {
  const size_t block = std::min<size_t>(n, 8u << 20) / 2;
  std::vector<float> vals(block);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& v : vals) v = u(rng);
  std::vector<uint8_t> raw(block * 2);
  for (size_t i = 0; i < block; ++i) minfer::store_as(dt, raw.data(), i, vals[i]);
  MINFER_CUDA_CHECK(cudaMemcpy(dst, raw.data(), raw.size(), cudaMemcpyHostToDevice));
  for (size_t have = raw.size(); have < n; have *= 2) {
    const size_t len = std::min(have, n - have);
    MINFER_CUDA_CHECK(cudaMemcpy(static_cast<uint8_t*>(dst) + have, dst, len, cudaMemcpyDeviceToDevice));
  }
}

int run(const Options& o) {
  const std::vector<int> wanted = parse_splits(o.splits);
  std::vector<minfer::val::Case> cases =
      minfer::val::select_cases({"decode"}, "decode", "bf16", o.quick, o.case_ids, minfer::val::CaseUse::Bench);
  int dev = 0, sms = 0;
  MINFER_CUDA_CHECK(cudaGetDevice(&dev));
  MINFER_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaStream_t stream = nullptr;
  MINFER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  minfer::bench::Timer timer(stream);
  std::mt19937_64 rng(o.seed);
  std::ostringstream out;
  out << "case,batch,kv_len,heads,kv_heads,head_dim,paged,splits,blocks,median_us,p10_us,p90_us,gbps,rule_default,"
         "rule_waves,rule_fill,layout\n";
  std::vector<std::string> layouts;
  if (o.layout == "token" || o.layout == "both") layouts.push_back("token");
  if (o.layout == "head" || o.layout == "both") layouts.push_back("head");
  size_t done = 0;
  for (const minfer::val::Case& c : cases) {
    ++done;
    if (c.axis("ragged") != 0 || c.axis("paged") > 1) continue;  // one length per batch; pages of 16
    for (const std::string& layout : layouts) {
      // layout "head": the same bytes and blocks with each KV head's keys contiguous (the layout the
      // PyTorch peers get, (B, nkv, L, hd)), emulated as B nkv sequences of one KV head and nh / nkv
      // query heads; the split rules' counts stay the case's own.
      const int fold = layout == "head" ? static_cast<int>(c.axis("kv_heads")) : 1;
      const int B = static_cast<int>(c.axis("batch")) * fold, L = static_cast<int>(c.axis("kv_len"));
      const int nh = static_cast<int>(c.axis("heads")) / fold, nkv = static_cast<int>(c.axis("kv_heads")) / fold;
      const int hd = static_cast<int>(c.axis("head_dim"));
      const bool paged = c.axis("paged") != 0;
      constexpr int kPage = 16;
      const int pages_per_seq = (L + kPage - 1) / kPage;
      const size_t row_bytes = static_cast<size_t>(nkv) * hd * 2;
      const size_t cache_bytes = static_cast<size_t>(B) * pages_per_seq * kPage * row_bytes;
      DeviceBuffer q(static_cast<size_t>(B) * nh * hd * 2), out_b(q.bytes()), k(cache_bytes), v(cache_bytes);
      fill_random(q.get(), q.bytes(), c.dtype, rng);
      fill_random(k.get(), k.bytes(), c.dtype, rng);
      fill_random(v.get(), v.bytes(), c.dtype, rng);
      std::vector<int32_t> lens(static_cast<size_t>(B), L), table(static_cast<size_t>(B) * pages_per_seq);
      std::iota(table.begin(), table.end(), 0);
      std::shuffle(table.begin(), table.end(), rng);
      DeviceBuffer lens_d(lens.size() * 4), table_d(table.size() * 4);
      MINFER_CUDA_CHECK(cudaMemcpy(lens_d.get(), lens.data(), lens_d.bytes(), cudaMemcpyHostToDevice));
      MINFER_CUDA_CHECK(cudaMemcpy(table_d.get(), table.data(), table_d.bytes(), cudaMemcpyHostToDevice));
      const int cB = static_cast<int>(c.axis("batch")), cnh = static_cast<int>(c.axis("heads"));
      const int cnkv = static_cast<int>(c.axis("kv_heads"));
      const int resident = minfer::decode_attention_resident_blocks(c.dtype, hd, paged ? kPage : 0, 0,
                                                                    minfer::decode_attention_unsplit_blocks(cB, cnh, cnkv));
      const int rule_default = minfer::decode_attention_splits(cB, cnh, cnkv, L, sms, resident);
      const int rule_waves = minfer::decode_attention_splits_waves(cB, cnh, cnkv, L, sms);
      const int rule_fill = minfer::decode_attention_splits_fill(cB, cnh, cnkv, L, resident);
      const int cap = std::clamp((L + 127) / 128, 1, 64);
      std::vector<int> counts = wanted;
      if (counts.empty()) {
        counts.resize(static_cast<size_t>(cap));
        std::iota(counts.begin(), counts.end(), 1);
      } else if (counts.front() == 0) {
        counts = {rule_default};
      }
      const int most = *std::max_element(counts.begin(), counts.end());
      DeviceBuffer ws(minfer::decode_attention_workspace_bytes(B, nh, hd, most));
      const double kv_bytes = 2.0 * B * static_cast<double>(L) * static_cast<double>(row_bytes);
      for (int s : counts) {
        minfer::DecodeAttentionParams p;
        p.dtype = c.dtype, p.q = q.get(), p.k_cache = k.get(), p.v_cache = v.get(), p.out = out_b.get();
        p.cache_lens = static_cast<const int32_t*>(lens_d.get());
        p.block_table = paged ? static_cast<const int32_t*>(table_d.get()) : nullptr;
        p.batch = B, p.heads = nh, p.kv_heads = nkv, p.head_dim = hd;
        p.max_len = static_cast<int64_t>(pages_per_seq) * kPage, p.page_size = kPage, p.max_pages = pages_per_seq;
        p.max_kv_len = L, p.num_splits = s, p.workspace = static_cast<float*>(ws.get()), p.workspace_bytes = ws.bytes();
        for (int i = 0; i < 3; ++i) MINFER_STATUS_CHECK(minfer::decode_attention_forward(p, stream));
        std::vector<double> us;
        for (int i = 0; i < o.samples; ++i)
          us.push_back(timer.sample_us([&] { MINFER_STATUS_CHECK(minfer::decode_attention_forward(p, stream)); }));
        const minfer::bench::Stats st = minfer::bench::summarize(us);
        out << c.id() << ',' << B << ',' << L << ',' << nh << ',' << nkv << ',' << hd << ',' << (paged ? 1 : 0) << ','
            << s << ',' << minfer::decode_attention_unsplit_blocks(B, nh, nkv) * s << ',' << st.median_us << ','
            << st.p10_us << ',' << st.p90_us << ','
            << kv_bytes / (st.median_us * 1e-6) / 1e9 << ',' << rule_default << ',' << rule_waves << ','
            << rule_fill << ',' << layout << '\n';
      }
      std::fprintf(stderr, "[%zu/%zu] %s (%s layout): %zu split counts (rules: default %d, waves %d, fill %d)\n", done,
                   cases.size(), c.id().c_str(), layout.c_str(), counts.size(), rule_default, rule_waves, rule_fill);
    }  // layouts
  }
  MINFER_CUDA_CHECK(cudaStreamDestroy(stream));
  if (o.csv.empty()) {
    std::fputs(out.str().c_str(), stdout);
  } else {
    minfer::AtomicFile f(o.csv);
    f.write(out.str());
    f.commit();
    std::fprintf(stderr, "bench_decode_splits: written to %s\n", o.csv.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_decode_splits: time the decode attention kernel at every split count (bf16; the "
               "decode sweep's bench grid or --case ids) and write one CSV row per (case, split count) "
               "beside the counts the split rules pick"};
  Options o;
  app.add_option("--case", o.case_ids, "a decode case id (repeatable; bench_all --sweep decode --list lists them)");
  app.add_flag("--quick", o.quick, "the decode sweep's quick subset");
  app.add_option("--splits", o.splits,
                 "split counts to time: 'all' (1 up to the kernel's cap), 'rule' (the default rule's count) or a "
                 "list like 1,2,4")
      ->capture_default_str();
  app.add_option("--layout", o.layout,
                 "KV layout: token (ours, (B, L, nkv, hd)), head (each KV head's keys contiguous, as the PyTorch "
                 "peers' (B, nkv, L, hd): emulated as B nkv sequences of one KV head, same bytes and blocks) or both")
      ->check(CLI::IsMember({"token", "head", "both"}))
      ->capture_default_str();
  app.add_option("--samples", o.samples, "timed samples per (case, split count); the median is reported")
      ->check(CLI::Range(3, 1000))->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random inputs")->capture_default_str();
  app.add_option("--csv", o.csv, "write the rows to this CSV (via PATH.tmp, renamed); default: stdout");
  return minfer::val::run_driver("bench_decode_splits", app, argc, argv, [&] { return run(o); });
}
