// Instance cgroups: creating and removing one, setting its limits, a child attaching itself
// (the pre-opened cgroup.procs writes of SetupStep::kAttachCgroup), and the per-invocation
// usage read of a warm instance, and freezing and thawing an idle instance (a sleeping process,
// as an idle runner waiting on its channel).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

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

// An idle instance's cgroup holding `procs` sleeping processes (the runner and what it started).
struct SleepersCgroup {
  std::unique_ptr<sandbox::Cgroup> cg;
  std::vector<pid_t> pids;
  ~SleepersCgroup() {
    if (cg) (void)cg->Destroy();
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  }
};

bool FillWithSleepers(sandbox::CgroupTree* tree, const std::string& name, int procs,
                      SleepersCgroup* out, benchmark::State& state) {
  auto cg = tree->Create(name);
  if (!cg) {
    state.SkipWithError(cg.error().ToString().c_str());
    return false;
  }
  out->cg = std::move(cg.value());
  auto fds = out->cg->OpenProcsFds();
  if (!fds) {
    state.SkipWithError(fds.error().ToString().c_str());
    return false;
  }
  for (int i = 0; i < procs; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int fd : *fds)
        if (write(fd, "0", 1) != 1) _exit(1);
      for (;;) pause();
    }
    out->pids.push_back(pid);
  }
  for (int fd : *fds) close(fd);
  usleep(20000);  // every child has joined
  return true;
}

// The warm path's added cost: Thaw before an invocation (on it), Freeze after (after the response,
// on the scheduler's park thread). Timed separately; the argument is the instance's process count.
void BM_CgroupFreezeThaw(benchmark::State& state) {
  auto* tree = Tree(state);
  if (!tree) return;
  if (!tree->can_freeze()) return state.SkipWithError("no freezer on this host");
  SleepersCgroup idle;
  if (!FillWithSleepers(tree, "freeze" + std::to_string(state.range(0)), static_cast<int>(state.range(0)),
                        &idle, state))
    return;
  double freeze_us = 0, thaw_us = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    if (auto s = idle.cg->Freeze(); !s) return state.SkipWithError(s.error().ToString().c_str());
    auto t1 = std::chrono::steady_clock::now();
    usleep(2000);  // idle, and frozen by now: thawing is timed from that state
    auto t2 = std::chrono::steady_clock::now();
    if (auto s = idle.cg->Thaw(); !s) return state.SkipWithError(s.error().ToString().c_str());
    auto t3 = std::chrono::steady_clock::now();
    const double f = std::chrono::duration<double, std::micro>(t1 - t0).count();
    const double t = std::chrono::duration<double, std::micro>(t3 - t2).count();
    freeze_us += f;
    thaw_us += t;
    state.SetIterationTime((f + t) / 1e6);
  }
  state.counters["freeze_us"] = benchmark::Counter(freeze_us, benchmark::Counter::kAvgIterations);
  state.counters["thaw_us"] = benchmark::Counter(thaw_us, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_CgroupFreezeThaw)->Arg(1)->Arg(16)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
