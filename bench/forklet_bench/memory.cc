// What an idle warm instance costs in memory: proportional set sizes (PSS) from smaps_rollup.
#include "bench/forklet_bench/memory.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/forklet_bench/http_client.h"

namespace forklet::bench {
namespace fs = std::filesystem;

Result<Rollup> ReadRollup(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  if (!f) return SysError("read /proc/" + std::to_string(pid) + "/smaps_rollup");
  Rollup r;
  std::string line;
  bool any = false;
  while (std::getline(f, line)) {
    char name[64];
    unsigned long long v = 0;
    if (sscanf(line.c_str(), "%63[^:]: %llu kB", name, &v) != 2) continue;
    double kb = static_cast<double>(v) / 1024.0;
    std::string n = name;
    if (n == "Rss") r.rss_mb = kb, any = true;
    else if (n == "Pss") r.pss_mb = kb;
    else if (n == "Private_Clean" || n == "Private_Dirty") r.private_mb += kb;
    else if (n == "Anonymous") r.anonymous_mb = kb;
  }
  if (!any) return MakeError("smaps_rollup of " + std::to_string(pid), "no Rss line");
  return r;
}

namespace {

// The zygote bound to each function (a zygote serves one function), in the order given; 0: none.
std::vector<pid_t> ZygotePids(DaemonUnderTest& daemon, const std::string& family,
                              const std::vector<std::string>& functions) {
  std::vector<pid_t> out(functions.size(), 0);
  auto h = daemon.GetHealth();
  if (!h) return out;
  for (const auto& z : h->zygotes)
    for (size_t i = 0; i < functions.size(); ++i)
      if (z.runtime == family && z.function == functions[i]) out[i] = z.pid;
  return out;
}

// Children of a process (all its threads'): instances are the daemon's (CLONE_PARENT).
std::vector<pid_t> Children(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream f(task.path() / "children");
    for (pid_t c; f >> c;) out.push_back(c);
  }
  return out;
}

// Teardown is asynchronous: wait until the dropped instances are gone and, with a daemon of our
// own, until no instance at all is left (retired sandboxes of the sweep share the zygote's pages).
void WaitGone(const std::vector<pid_t>& pids, pid_t daemon, const std::vector<pid_t>& zygotes) {
  for (int i = 0; i < 400; ++i) {
    bool any = false;
    for (pid_t p : pids) any |= kill(p, 0) == 0;
    if (daemon > 0)
      for (pid_t c : Children(daemon)) any |= std::find(zygotes.begin(), zygotes.end(), c) == zygotes.end();
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

}  // namespace

Result<InstanceMemory> MeasureIdleInstanceMemory(DaemonUnderTest& daemon, const std::string& family,
                                                 const std::vector<std::string>& functions) {
  HttpConnection conn(daemon.endpoint());
  auto invoke_all = [&]() -> Status {
    for (const auto& fn : functions) {
      auto r = conn.Call("POST", "/2015-03-31/functions/" + fn + "/invocations", "{}");
      if (!r) return r.error();
      if (r->status != 200) return MakeError("memory: invoke " + fn, "HTTP " + std::to_string(r->status));
    }
    return {};
  };
  // Each function has its own zygote: bound by a first invocation, it outlives its instances.
  if (auto s = invoke_all(); !s) return s.error();
  auto zygotes = ZygotePids(daemon, family, functions);
  if (std::find(zygotes.begin(), zygotes.end(), 0) != zygotes.end())
    return MakeError("memory", "a function has no " + family + " zygote of its own");
  auto before = daemon.GetHealth();
  if (!before) return before.error();
  if (auto s = daemon.DropIdleInstances(); !s) return s.error();
  // Spares are the daemon's children too: they are no instance.
  std::vector<pid_t> keep = zygotes;
  for (const auto& z : before->zygotes) keep.push_back(z.pid);
  WaitGone(before->idle_instance_pids, daemon.pid(), keep);
  std::vector<Rollup> alone;
  double alone_sum = 0;
  for (pid_t z : zygotes) {
    auto r = ReadRollup(z);
    if (!r) return r.error();
    alone.push_back(*r);
    alone_sum += r->pss_mb;
  }

  if (auto s = invoke_all(); !s) return s.error();
  auto after = daemon.GetHealth();
  if (!after) return after.error();
  if (after->idle_instance_pids.size() != functions.size())
    return MakeError("memory", "expected " + std::to_string(functions.size()) + " idle instances, the daemon has " +
                                   std::to_string(after->idle_instance_pids.size()));
  if (ZygotePids(daemon, family, functions) != zygotes) return MakeError("memory", "a zygote changed meanwhile");
  InstanceMemory m;
  m.instances = static_cast<int>(functions.size());
  m.zygote_alone = alone[0];
  auto with = ReadRollup(zygotes[0]);
  if (!with) return with.error();
  m.zygote_with = *with;
  std::vector<Rollup> each;
  double sum = 0;
  for (pid_t z : zygotes) {
    auto r = ReadRollup(z);
    if (!r) return r.error();
    sum += r->pss_mb;
  }
  for (pid_t p : after->idle_instance_pids) {
    auto r = ReadRollup(p);
    if (!r) return r.error();
    each.push_back(*r);
    sum += r->pss_mb;
  }
  std::sort(each.begin(), each.end(), [](const Rollup& a, const Rollup& b) { return a.pss_mb < b.pss_mb; });
  m.instance = each[each.size() / 2];
  m.marginal_pss_mb = (sum - alone_sum) / static_cast<double>(functions.size());
  return m;
}

Result<StemCellMemory> MeasureStemCellMemory(DaemonUnderTest& daemon, const std::string& family) {
  if (auto s = daemon.WaitForStemCells(family, true); !s) return s.error();
  auto h = daemon.GetHealth();
  if (!h) return h.error();
  auto it = h->stem_cells.find(family);
  if (it == h->stem_cells.end() || it->second.pids.empty())
    return MakeError("memory", "no " + family + " stem cell is ready");
  std::vector<Rollup> each;
  for (pid_t p : it->second.pids) {
    auto r = ReadRollup(p);
    if (!r) return r.error();
    each.push_back(*r);
  }
  std::sort(each.begin(), each.end(), [](const Rollup& a, const Rollup& b) { return a.pss_mb < b.pss_mb; });
  return StemCellMemory{family, each[each.size() / 2], static_cast<int>(each.size())};
}

}  // namespace forklet::bench
