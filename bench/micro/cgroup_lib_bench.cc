// The start path's cgroup steps done both ways in one run: through libcgroup (sandbox/cgroup_lib.h)
// and hand-written (plain cgroupfs calls, as sandbox/cgroup_v1.cc makes them), on the same
// hierarchies: creating and removing an instance's cgroup, setting its limits, attaching a child.
// The ratio of each pair decides which one forklet uses (docs/design.md, "Cgroups").
//   build/bin/forklet-micro --benchmark_filter='CgroupWay' --benchmark_repetitions=3
//     --benchmark_report_aggregates_only=true
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/micro/forked_timing.h"
#include "sandbox/cgroup.h"
#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_lib.h"

namespace {

using namespace forklet;
using sandbox::cglib::Location;

// forklet.libcmp<pid> below this process's cgroup (v1 only: libcgroup 2.0.2 would write to the
// ancestors' cgroup.subtree_control on v2), and where libcgroup reaches each of its hierarchies.
struct Site {
  std::unique_ptr<sandbox::CgroupTree> tree;
  std::vector<std::string> roots;  // one directory per hierarchy
  std::vector<Location> where;     // the same, as libcgroup names them
  std::string error;

  Site() {
    auto t = sandbox::OpenCgroupTree("libcmp" + std::to_string(getpid()), sandbox::CgroupVersion::kV1);
    if (!t) {
      error = t.error().ToString();
      return;
    }
    tree = std::move(t.value());
    auto probe = tree->Create("probe");
    if (!probe) {
      error = probe.error().ToString();
      return;
    }
    for (const auto& dir : (*probe)->paths()) roots.push_back(dir.substr(0, dir.rfind('/')));
    (void)(*probe)->Destroy();
    auto mounts = sandbox::cglib::Mounts();
    if (!mounts) {
      error = mounts.error().ToString();
      return;
    }
    for (const auto& root : roots) {
      auto loc = sandbox::cglib::Locate(*mounts, root);
      if (!loc) {
        error = loc.error().ToString();
        return;
      }
      where.push_back(*loc);
    }
  }
  ~Site() {
    if (tree) (void)tree->RemoveRoot();
  }
  std::vector<std::string> Dirs(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& r : roots) out.push_back(r + "/" + name);
    return out;
  }
};

const Site* GetSite(benchmark::State& state) {
  static Site site;
  if (!site.error.empty()) {
    state.SkipWithError(site.error.c_str());
    return nullptr;
  }
  return &site;
}

bool Fail(benchmark::State& state, const Error& e) {
  state.SkipWithError(e.ToString().c_str());
  return false;
}

// ---- create + remove (an empty instance cgroup in every hierarchy)

bool CreateHand(const Site& s, const std::string& name) {
  for (const auto& dir : s.Dirs(name))
    if (auto st = sandbox::cgroupfs::MakeDir(dir); !st) return false;
  return true;
}

bool RemoveHand(const Site& s, const std::string& name) {
  for (const auto& dir : s.Dirs(name))
    if (rmdir(dir.c_str()) != 0) return false;
  return true;
}

// Creation (timed) and removal (timed apart, as `remove_us`): creation is on the start path when
// the pool is empty, removal on the scheduler's teardown thread.
template <typename Create, typename Remove>
void CreateRemove(benchmark::State& state, const char* prefix, Create create, Remove remove) {
  const Site* s = GetSite(state);
  if (!s) return;
  uint64_t i = 0;
  double remove_us = 0;
  for (auto _ : state) {
    const std::string name = prefix + std::to_string(i++);
    auto t0 = std::chrono::steady_clock::now();
    Status made = create(*s, name);
    auto t1 = std::chrono::steady_clock::now();
    Status gone = made.ok() ? remove(*s, name) : Status();
    auto t2 = std::chrono::steady_clock::now();
    if (!made || !gone) return (void)Fail(state, made.ok() ? gone.error() : made.error());
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    remove_us += std::chrono::duration<double, std::micro>(t2 - t1).count();
  }
  state.counters["remove_us"] = benchmark::Counter(remove_us, benchmark::Counter::kAvgIterations);
}

void BM_CgroupWayCreateRemove_Handwritten(benchmark::State& state) {
  CreateRemove(
      state, "h",
      [](const Site& s, const std::string& name) {
        return CreateHand(s, name) ? Status() : Status(SysError("mkdir " + name));
      },
      [](const Site& s, const std::string& name) {
        return RemoveHand(s, name) ? Status() : Status(SysError("rmdir " + name));
      });
}
BENCHMARK(BM_CgroupWayCreateRemove_Handwritten)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_CgroupWayCreateRemove_Libcgroup(benchmark::State& state) {
  CreateRemove(
      state, "l",
      [](const Site& s, const std::string& name) {
        for (const auto& w : s.where)
          if (auto st = sandbox::cglib::Create(w.rel + "/" + name, w.controllers, true); !st)
            return st;
        return Status();
      },
      [](const Site& s, const std::string& name) {
        for (const auto& w : s.where)
          if (auto st = sandbox::cglib::Remove(w.rel + "/" + name, w.controllers); !st) return st;
        return Status();
      });
}
BENCHMARK(BM_CgroupWayCreateRemove_Libcgroup)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- limits: the writes of CgroupV1::SetLimits (memory, memory+swap, socket buffers, pids, shares)

struct Limit {
  std::string controller, file;
};
const Limit kLimits[] = {{"memory", "memory.limit_in_bytes"},
                         {"memory", "memory.memsw.limit_in_bytes"},
                         {"memory", "memory.kmem.tcp.limit_in_bytes"},
                         {"pids", "pids.max"},
                         {"cpu", "cpu.shares"}};

// The hierarchy holding `controller`, as an index into Site::roots / Site::where.
size_t IndexOf(const Site& s, const std::string& controller) {
  for (size_t i = 0; i < s.where.size(); ++i)
    for (const auto& c : s.where[i].controllers)
      if (c == controller) return i;
  return 0;
}

std::string Value(const Limit& l, uint64_t memory) {
  if (l.file == "pids.max") return "256";
  if (l.file == "cpu.shares") return "1024";
  return std::to_string(memory);
}

void BM_CgroupWaySetLimits_Handwritten(benchmark::State& state) {
  const Site* s = GetSite(state);
  if (!s) return;
  const std::string name = "limits-h";
  if (!CreateHand(*s, name)) return state.SkipWithError("mkdir failed");
  std::vector<std::string> files;
  for (const auto& l : kLimits) files.push_back(s->roots[IndexOf(*s, l.controller)] + "/" + name + "/" + l.file);
  uint32_t flip = 0;
  for (auto _ : state) {
    const uint64_t memory = (128ull + (flip++ & 1)) << 20;  // a real change each time
    // Lowering: memory first, then memsw; raising: memsw first (memsw >= memory always).
    for (size_t k = 0; k < files.size(); ++k) {
      size_t i = (memory & (1ull << 20)) && k < 2 ? 1 - k : k;
      if (auto st = sandbox::cgroupfs::Write(files[i], Value(kLimits[i], memory)); !st) {
        Fail(state, st.error());
        break;
      }
    }
  }
  RemoveHand(*s, name);
}
BENCHMARK(BM_CgroupWaySetLimits_Handwritten)->Unit(benchmark::kMicrosecond);

void BM_CgroupWaySetLimits_Libcgroup(benchmark::State& state) {
  const Site* s = GetSite(state);
  if (!s) return;
  const std::string name = "limits-l";
  if (!CreateHand(*s, name)) return state.SkipWithError("mkdir failed");
  uint32_t flip = 0;
  for (auto _ : state) {
    const uint64_t memory = (128ull + (flip++ & 1)) << 20;
    // One cgroup_modify_cgroup per hierarchy, the values in the order the kernel accepts.
    for (size_t h = 0; h < s->where.size(); ++h) {
      std::vector<sandbox::cglib::Setting> settings;
      for (size_t k = 0; k < std::size(kLimits); ++k) {
        size_t i = (memory & (1ull << 20)) && k < 2 ? 1 - k : k;
        if (IndexOf(*s, kLimits[i].controller) != h) continue;
        settings.push_back({kLimits[i].controller, kLimits[i].file, Value(kLimits[i], memory)});
      }
      if (settings.empty()) continue;
      if (auto st = sandbox::cglib::Modify(s->where[h].rel + "/" + name, settings); !st) {
        Fail(state, st.error());
        break;
      }
    }
  }
  RemoveHand(*s, name);
}
BENCHMARK(BM_CgroupWaySetLimits_Libcgroup)->Unit(benchmark::kMicrosecond);

// ---- attach: the new instance's process joins every hierarchy

// Hand-written: the forked child writes "0" to each pre-opened cgroup.procs (what forklet does:
// async-signal-safe after fork, and the whole process moves). Timed in the child.
void BM_CgroupWayAttach_Handwritten(benchmark::State& state) {
  const Site* s = GetSite(state);
  if (!s) return;
  const std::string name = "attach-h";
  if (!CreateHand(*s, name)) return state.SkipWithError("mkdir failed");
  std::vector<int> fds;
  for (const auto& dir : s->Dirs(name)) fds.push_back(open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  for (auto _ : state) {
    double t = micro::TimeInForkedChild([] {}, [&] {
      for (int fd : fds)
        if (fd < 0 || write(fd, "0", 1) != 1) return 1;
      return 0;
    });
    if (t < 0) {
      state.SkipWithError("the child could not attach");
      break;
    }
    state.SetIterationTime(t);
  }
  for (int fd : fds) close(fd);
  RemoveHand(*s, name);
}
BENCHMARK(BM_CgroupWayAttach_Handwritten)->UseManualTime()->Unit(benchmark::kMicrosecond);

// libcgroup: the parent moves the waiting child with cgroup_attach_task_pid, once per hierarchy
// (it cannot run in the child: it allocates and locks after fork). Timed in the parent.
void BM_CgroupWayAttach_Libcgroup(benchmark::State& state) {
  const Site* s = GetSite(state);
  if (!s) return;
  const std::string name = "attach-l";
  if (!CreateHand(*s, name)) return state.SkipWithError("mkdir failed");
  for (auto _ : state) {
    int go[2];
    if (pipe(go) != 0) return state.SkipWithError("pipe");
    pid_t pid = fork();
    if (pid == 0) {
      char c;
      close(go[1]);
      (void)!read(go[0], &c, 1);
      _exit(0);
    }
    close(go[0]);
    auto t0 = std::chrono::steady_clock::now();
    Status st;
    for (const auto& w : s->where)
      if (st = sandbox::cglib::Attach(w.rel + "/" + name, w.controllers, pid); !st) break;
    auto t1 = std::chrono::steady_clock::now();
    close(go[1]);
    waitpid(pid, nullptr, 0);
    if (!st) {
      Fail(state, st.error());
      break;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  RemoveHand(*s, name);
}
BENCHMARK(BM_CgroupWayAttach_Libcgroup)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
