// The warm path's stage timeline: thread_local marks, folded into shared reservoirs at the end.
#include "runtime/timeline/request_timeline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>

namespace forklet::timeline {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPoints = static_cast<size_t>(Point::kCount);
constexpr size_t kStages = kPoints - 1;
constexpr size_t kKeep = 4096;
constexpr const char* kStageNames[kStages] = {"parse", "route", "admit", "channel_out",
                                              "runner", "bill", "respond"};

struct Marks {
  std::array<Clock::time_point, kPoints> at{};
  std::array<bool, kPoints> set{};
  bool warm = false;
  std::string runtime;  // short: no allocation
};
thread_local Marks marks;

struct Reservoir {
  std::array<std::array<float, kKeep>, kStages> us{};  // microseconds, a ring per stage
  size_t next = 0, filled = 0;
};
struct Reservoirs {
  std::mutex mu;
  std::map<std::string, Reservoir> by_runtime;
};
Reservoirs& Shared() {
  static Reservoirs r;
  return r;
}

}  // namespace

void Begin() {
  marks = Marks{};
  Mark(Point::kRead);
}

void Mark(Point p) {
  auto i = static_cast<size_t>(p);
  marks.at[i] = Clock::now();
  marks.set[i] = true;
}

void MarkWarm(const std::string& runtime) {
  marks.warm = true;
  marks.runtime = runtime;
}

void End() {
  Mark(Point::kResponded);
  if (!marks.warm || !std::all_of(marks.set.begin(), marks.set.end(), [](bool b) { return b; })) return;
  std::array<float, kStages> us;
  for (size_t s = 0; s < kStages; ++s)
    us[s] = std::chrono::duration<float, std::micro>(marks.at[s + 1] - marks.at[s]).count();
  marks.warm = false;
  auto& shared = Shared();
  std::lock_guard lock(shared.mu);
  Reservoir& r = shared.by_runtime[marks.runtime];  // made once per runtime
  for (size_t s = 0; s < kStages; ++s) r.us[s][r.next] = us[s];
  r.next = (r.next + 1) % kKeep;
  r.filled = std::min(r.filled + 1, kKeep);
}

namespace {

std::vector<StageSummary> Summarize(std::array<std::vector<float>, kStages>& copy) {
  std::vector<StageSummary> out;
  for (size_t s = 0; s < kStages; ++s) {
    auto& v = copy[s];
    StageSummary st;
    st.name = kStageNames[s];
    st.n = v.size();
    if (!v.empty()) {
      std::sort(v.begin(), v.end());
      auto at = [&](double q) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]); };
      st.p50_us = at(0.50);
      st.p90_us = at(0.90);
      st.p99_us = at(0.99);
      double sum = 0;
      for (float x : v) sum += x;
      st.mean_us = sum / v.size();
    }
    out.push_back(st);
  }
  return out;
}

}  // namespace

std::map<std::string, std::vector<StageSummary>> Summary() {
  std::map<std::string, std::array<std::vector<float>, kStages>> copies;
  {
    auto& shared = Shared();
    std::lock_guard lock(shared.mu);
    for (const auto& [runtime, r] : shared.by_runtime)
      for (size_t s = 0; s < kStages; ++s) copies[runtime][s].assign(r.us[s].begin(), r.us[s].begin() + r.filled);
  }
  std::map<std::string, std::vector<StageSummary>> out;
  for (auto& [runtime, copy] : copies) out[runtime] = Summarize(copy);
  return out;
}

void Reset() {
  auto& shared = Shared();
  std::lock_guard lock(shared.mu);
  shared.by_runtime.clear();
}

}  // namespace forklet::timeline
