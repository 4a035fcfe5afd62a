// Instance cgroups: creating and removing one, setting its limits, a child attaching itself
// (the pre-opened cgroup.procs writes of SetupStep::kAttachCgroup), and the per-invocation
// usage read of a warm instance.
#include <unistd.h>

#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "bench/micro/forked_timing.h"
#include "sandbox/cgroup.h"

namespace {

using namespace forklet;

// forklet.micro<pid> below this process's cgroup, removed at exit.
sandbox::CgroupTree* Tree(benchmark::State& state) {
  struct Holder {
    std::unique_ptr<sandbox::CgroupTree> tree;
    std::string error;
    Holder() {
      auto t = sandbox::OpenCgroupTree("micro" + std::to_string(getpid()));
      if (t) tree = std::move(t.value());
      else error = t.error().ToString();
    }
    ~Holder() {
      if (tree) (void)tree->RemoveRoot();
    }
  };
  static Holder h;
  if (!h.tree) state.SkipWithError(h.error.c_str());
  return h.tree.get();
}

void BM_CgroupCreateDestroy(benchmark::State& state) {
  auto* tree = Tree(state);
  if (!tree) return;
  uint64_t i = 0;
  for (auto _ : state) {
    auto cg = tree->Create("c" + std::to_string(i++));
    if (!cg) {
      state.SkipWithError(cg.error().ToString().c_str());
      return;
    }
    if (auto s = (*cg)->Destroy(); !s) {
      state.SkipWithError(s.error().ToString().c_str());
      return;
    }
  }
}
BENCHMARK(BM_CgroupCreateDestroy)->Unit(benchmark::kMicrosecond);

void BM_CgroupSetLimits(benchmark::State& state) {
  auto* tree = Tree(state);
  if (!tree) return;
  auto cg = tree->Create("limits");
  if (!cg) return state.SkipWithError(cg.error().ToString().c_str());
  sandbox::CgroupLimits limits;
  uint32_t flip = 0;
  for (auto _ : state) {
    limits.memory_bytes = (128ull + (flip++ & 1)) << 20;  // a real change each time
    if (auto s = (*cg)->SetLimits(limits); !s) {
      state.SkipWithError(s.error().ToString().c_str());
      break;
    }
  }
  (void)(*cg)->Destroy();
}
BENCHMARK(BM_CgroupSetLimits)->Unit(benchmark::kMicrosecond);

void BM_CgroupAttachInChild(benchmark::State& state) {
  auto* tree = Tree(state);
  if (!tree) return;
  auto cg = tree->Create("attach");
  if (!cg) return state.SkipWithError(cg.error().ToString().c_str());
  auto fds = (*cg)->OpenProcsFds();
  if (!fds) return state.SkipWithError(fds.error().ToString().c_str());
  for (auto _ : state) {
    double s = micro::TimeInForkedChild([] {}, [&] {
      for (int fd : *fds)
        if (write(fd, "0", 1) != 1) return 1;
      return 0;
    });
    if (s < 0) {
      state.SkipWithError("the child could not attach");
      break;
    }
    state.SetIterationTime(s);
  }
  state.counters["hierarchies"] = static_cast<double>(fds->size());
  for (int fd : *fds) close(fd);
  (void)(*cg)->Destroy();
}
BENCHMARK(BM_CgroupAttachInChild)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_CgroupReadStatsAndResetPeak(benchmark::State& state) {
  auto* tree = Tree(state);
  if (!tree) return;
  auto cg = tree->Create("stats");
  if (!cg) return state.SkipWithError(cg.error().ToString().c_str());
  for (auto _ : state) {
    auto st = (*cg)->ReadStats();
    if (!st) {
      state.SkipWithError(st.error().ToString().c_str());
      break;
    }
    (void)(*cg)->ResetPeak();
  }
  (void)(*cg)->Destroy();
}
BENCHMARK(BM_CgroupReadStatsAndResetPeak)->Unit(benchmark::kMicrosecond);

}  // namespace
