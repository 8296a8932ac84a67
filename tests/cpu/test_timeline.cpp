// tests/cpu/test_timeline.cpp: engine/core/timeline: kernel names, the choice of the median graph
// step, gaps and shares (overlapping kernels under programmatic dependent launch), the grouping and
// the CSVs.
#include "engine/core/timeline.h"

#include <gtest/gtest.h>

#include "engine/core/error.h"

namespace minfer {
namespace {

KernelSpan span(const std::string& name, uint64_t start, uint64_t end, uint32_t launch, uint32_t graph = 7,
                int gx = 1) {
  KernelSpan k;
  k.name = name;
  k.grid[0] = gx;
  k.start_ns = start;
  k.end_ns = end;
  k.launch = launch;
  k.graph = graph;
  return k;
}

TEST(Timeline, ShortKernelNames) {
  EXPECT_EQ(short_kernel_name("void minfer::(anonymous namespace)::gemv_kernel<__nv_bfloat16, 1, (bool)1>(minfer::"
                              "GemvParams)"),
            "gemv_kernel");
  EXPECT_EQ(short_kernel_name("minfer::rmsnorm_kernel(float const*, int)"), "rmsnorm_kernel");
  EXPECT_EQ(short_kernel_name("void sample_kernel<float>(minfer::SampleParams)"), "sample_kernel");
  EXPECT_EQ(short_kernel_name("k(int (*)(int))"), "k");
  EXPECT_EQ(short_kernel_name("_Z11gemv_kernelv"), "_Z11gemv_kernelv");  // not demangled: as it is
  EXPECT_EQ(short_kernel_name("plain"), "plain");
}

TEST(Timeline, MedianStepGapsAndShares) {
  std::vector<KernelSpan> s;
  // An eager kernel (no graph) and three graph launches of 10, 30 and 20 us.
  s.push_back(span("eager", 0, 5000, 1, 0));
  s.push_back(span("a", 100000, 104000, 2));
  s.push_back(span("b", 104000, 110000, 2));
  s.push_back(span("a", 200000, 210000, 3));
  s.push_back(span("b", 215000, 230000, 3));
  // The median launch, listed out of order: c starts under b (PDL) and ends before it; d waits 2 us.
  s.push_back(span("b", 303000, 312000, 4, 7, 4));
  s.push_back(span("a", 300000, 305000, 4));
  s.push_back(span("c", 306000, 310000, 4, 7, 2));
  s.push_back(span("d", 314000, 320000, 4));
  const StepTimeline t = median_graph_step(s);
  EXPECT_EQ(t.steps, 3);
  EXPECT_DOUBLE_EQ(t.min_step_us, 10.0);
  EXPECT_DOUBLE_EQ(t.median_step_us, 20.0);
  EXPECT_DOUBLE_EQ(t.max_step_us, 30.0);
  ASSERT_EQ(t.kernels.size(), 4u);
  EXPECT_DOUBLE_EQ(t.step_us, 20.0);
  const char* names[] = {"a", "b", "c", "d"};
  const double gap[] = {0.0, -2.0, -6.0, 2.0}, share[] = {5.0, 7.0, 0.0, 8.0};
  double sum = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(t.kernels[i].span.name, names[i]);
    EXPECT_DOUBLE_EQ(t.kernels[i].gap_us, gap[i]) << i;
    EXPECT_DOUBLE_EQ(t.kernels[i].share_us, share[i]) << i;
    sum += t.kernels[i].share_us;
  }
  EXPECT_DOUBLE_EQ(sum, t.step_us);  // the shares add up to the step
  EXPECT_DOUBLE_EQ(t.kernels[3].start_us, 14.0);
  EXPECT_DOUBLE_EQ(t.kernels[2].dur_us, 4.0);
}

TEST(Timeline, GroupsByNameAndGridAndWritesCsv) {
  std::vector<KernelSpan> s = {span("g", 0, 3000, 1, 1, 512), span("n", 3000, 4000, 1), span("g", 5000, 9000, 1, 1, 768),
                               span("g", 9000, 12000, 1, 1, 512)};
  const StepTimeline t = median_graph_step(s);
  const std::vector<TimelineGroup> g = group_timeline(t);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].name, "g (512,1,1)");
  EXPECT_EQ(g[0].calls, 2);
  EXPECT_DOUBLE_EQ(g[0].share_us, 6.0);
  EXPECT_EQ(g[2].name, "g (768,1,1)");
  EXPECT_DOUBLE_EQ(g[2].wait_us, 1.0);
  const std::string csv = timeline_csv(t);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "index,kernel,grid,block,start_us,end_us,dur_us,gap_us,share_us");
  EXPECT_NE(csv.find("2,g,\"(768,1,1)\",\"(1,1,1)\",5.000,9.000,4.000,1.000,5.000\n"), std::string::npos) << csv;
  const std::string gcsv = timeline_groups_csv(t);
  EXPECT_NE(gcsv.find("\"g (512,1,1)\",2,6.000,50.00,6.000,0.000\n"), std::string::npos) << gcsv;
  const std::string table = format_timeline(t);
  EXPECT_NE(table.find("median of 1 traced graph steps: 12.0 us"), std::string::npos) << table;
}

TEST(Timeline, NoGraphStepIsAClearError) {
  try {
    median_graph_step({span("eager", 0, 10, 1, 0)});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA graph"), std::string::npos) << e.what();
  }
  EXPECT_THROW(median_graph_step({}), UsageError);
}

}  // namespace
}  // namespace minfer
