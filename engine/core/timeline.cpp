// engine/core/timeline.cpp: see timeline.h.
#include "engine/core/timeline.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "engine/core/error.h"

namespace minfer {

namespace {

// Index of the bracket that opens the one closing at `close` (s[close] is `c`), scanning back; npos if
// unbalanced.
size_t matching_open(const std::string& s, size_t close, char o, char c) {
  int depth = 0;
  for (size_t i = close + 1; i-- > 0;) {
    if (s[i] == c) ++depth;
    else if (s[i] == o && --depth == 0) return i;
  }
  return std::string::npos;
}

std::string grid_str(const int (&g)[3]) {
  char b[48];
  std::snprintf(b, sizeof b, "(%d,%d,%d)", g[0], g[1], g[2]);
  return b;
}

std::string fmt(double v, int prec = 3) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

}  // namespace

std::string short_kernel_name(const std::string& demangled) {
  std::string s = demangled;
  if (s.empty() || s.back() != ')') return s;
  const size_t args = matching_open(s, s.size() - 1, '(', ')');
  if (args == std::string::npos || args == 0) return demangled;
  s.resize(args);
  if (!s.empty() && s.back() == '>') {
    const size_t t = matching_open(s, s.size() - 1, '<', '>');
    if (t == std::string::npos) return demangled;
    s.resize(t);
  }
  const size_t colons = s.rfind("::");
  if (colons != std::string::npos) s = s.substr(colons + 2);
  const size_t space = s.rfind(' ');
  if (space != std::string::npos) s = s.substr(space + 1);
  return s.empty() ? demangled : s;
}

StepTimeline median_graph_step(const std::vector<KernelSpan>& spans) {
  std::map<uint32_t, std::vector<KernelSpan>> steps;  // by launch
  for (const KernelSpan& k : spans)
    if (k.graph != 0) steps[k.launch].push_back(k);
  if (steps.empty())
    throw UsageError("timeline: no kernel of the trace came from a CUDA graph (the decode steps run as graphs from "
                     "the second new token on: ask for at least 3 new tokens)");
  struct Step {
    double us;
    const std::vector<KernelSpan>* k;
  };
  std::vector<Step> order;
  for (const auto& [launch, ks] : steps) {
    uint64_t t0 = ks.front().start_ns, t1 = ks.front().end_ns;
    for (const KernelSpan& k : ks) t0 = std::min(t0, k.start_ns), t1 = std::max(t1, k.end_ns);
    order.push_back({static_cast<double>(t1 - t0) / 1e3, &ks});
  }
  std::stable_sort(order.begin(), order.end(), [](const Step& a, const Step& b) { return a.us < b.us; });
  StepTimeline t;
  t.steps = static_cast<int>(order.size());
  t.min_step_us = order.front().us;
  t.max_step_us = order.back().us;
  const Step& med = order[(order.size() - 1) / 2];
  t.median_step_us = med.us;
  std::vector<KernelSpan> ks = *med.k;
  std::stable_sort(ks.begin(), ks.end(), [](const KernelSpan& a, const KernelSpan& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.end_ns < b.end_ns;
  });
  const uint64_t t0 = ks.front().start_ns;
  uint64_t reach = t0;  // latest end so far
  for (const KernelSpan& k : ks) {
    TimelineKernel r;
    r.span = k;
    r.start_us = static_cast<double>(k.start_ns - t0) / 1e3;
    r.end_us = static_cast<double>(k.end_ns - t0) / 1e3;
    r.dur_us = static_cast<double>(k.end_ns - k.start_ns) / 1e3;
    r.gap_us = (static_cast<double>(k.start_ns) - static_cast<double>(reach)) / 1e3;
    r.share_us = k.end_ns > reach ? static_cast<double>(k.end_ns - reach) / 1e3 : 0.0;
    reach = std::max(reach, k.end_ns);
    t.kernels.push_back(r);
  }
  t.step_us = static_cast<double>(reach - t0) / 1e3;
  return t;
}

std::vector<TimelineGroup> group_timeline(const StepTimeline& t) {
  std::vector<TimelineGroup> out;
  std::map<std::string, size_t> at;
  for (const TimelineKernel& k : t.kernels) {
    const std::string key = k.span.name + " " + grid_str(k.span.grid);
    auto it = at.find(key);
    if (it == at.end()) {
      it = at.emplace(key, out.size()).first;
      out.push_back({key, 0, 0, 0, 0});
    }
    TimelineGroup& g = out[it->second];
    ++g.calls;
    g.share_us += k.share_us;
    g.dur_us += k.dur_us;
    g.wait_us += std::max(0.0, k.gap_us);
  }
  return out;
}

std::string timeline_csv(const StepTimeline& t) {
  std::ostringstream o;
  o << "index,kernel,grid,block,start_us,end_us,dur_us,gap_us,share_us\n";
  for (size_t i = 0; i < t.kernels.size(); ++i) {
    const TimelineKernel& k = t.kernels[i];
    o << i << "," << k.span.name << ",\"" << grid_str(k.span.grid) << "\",\"" << grid_str(k.span.block) << "\","
      << fmt(k.start_us) << "," << fmt(k.end_us) << "," << fmt(k.dur_us) << "," << fmt(k.gap_us) << ","
      << fmt(k.share_us) << "\n";
  }
  return o.str();
}

std::string timeline_groups_csv(const StepTimeline& t) {
  std::ostringstream o;
  o << "kernel,calls,share_us,share_pct,dur_us,wait_us\n";
  for (const TimelineGroup& g : group_timeline(t)) {
    o << "\"" << g.name << "\"," << g.calls << "," << fmt(g.share_us) << ","
      << fmt(t.step_us > 0 ? 100.0 * g.share_us / t.step_us : 0.0, 2) << "," << fmt(g.dur_us) << ","
      << fmt(g.wait_us) << "\n";
  }
  return o.str();
}

std::string format_timeline(const StepTimeline& t) {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line,
                "median of %d traced graph steps: %.1f us (min %.1f, max %.1f), %zu kernels\n", t.steps,
                t.median_step_us, t.min_step_us, t.max_step_us, t.kernels.size());
  o << line;
  std::snprintf(line, sizeof line, "  %-44s %6s %11s %7s %11s %11s\n", "kernel (grid)", "calls", "share us", "%",
                "run us", "wait us");
  o << line;
  double share = 0, dur = 0, wait = 0;
  for (const TimelineGroup& g : group_timeline(t)) {
    std::snprintf(line, sizeof line, "  %-44s %6d %11.1f %6.1f%% %11.1f %11.1f\n", g.name.c_str(), g.calls, g.share_us,
                  t.step_us > 0 ? 100.0 * g.share_us / t.step_us : 0.0, g.dur_us, g.wait_us);
    o << line;
    share += g.share_us, dur += g.dur_us, wait += g.wait_us;
  }
  std::snprintf(line, sizeof line, "  %-44s %6zu %11.1f %6.1f%% %11.1f %11.1f\n", "total", t.kernels.size(), share,
                t.step_us > 0 ? 100.0 * share / t.step_us : 0.0, dur, wait);
  o << line;
  return o.str();
}

}  // namespace minfer
