// forklet-bench: empty-function response times through forkletd per start kind, next to
// baselines run with the same handler and timed by the same program; the concurrency sweep; the
// stage breakdown; an idle instance's memory; and the bars checked. See --help.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/forklet_bench/baselines.h"
#include "bench/forklet_bench/daemon.h"
#include "bench/forklet_bench/http_floor.h"
#include "bench/forklet_bench/measure.h"
#include "bench/forklet_bench/memory.h"
#include "bench/forklet_bench/options.h"
#include "bench/forklet_bench/progress.h"
#include "bench/forklet_bench/report.h"

namespace fs = std::filesystem;
using namespace forklet;
using namespace forklet::bench;

namespace {

DaemonUnderTest* g_daemon = nullptr;

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "forklet-bench: %s\n", message.c_str());
  if (g_daemon) g_daemon->Stop();
  exit(1);
}

// SIGINT/SIGTERM are blocked everywhere and taken here, so the daemon is stopped cleanly.
void WaitForSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "\nforklet-bench: interrupted; stopping the daemon\n");
    if (g_daemon) g_daemon->Stop();
    _exit(130);
  }).detach();
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + (a.find('\n') == std::string::npos ? a : "'<handler>'");
  return s;
}

LatencyRow Row(std::string name, bool baseline, std::string what, std::vector<double> ms) {
  LatencyRow row{std::move(name), baseline, std::move(what), std::move(ms), {}};
  row.summary = Summarize(row.ms);
  return row;
}

// n timed runs of argv after 3 untimed ones (page cache, dynamic loader).
std::vector<double> TimedRuns(const std::vector<std::string>& argv, int n, const std::string& label) {
  for (int i = 0; i < 3; ++i)
    if (auto r = RunTimed(argv); !r) Die(label + ": " + r.error().ToString());
  std::vector<double> ms;
  Progress progress(label, static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto r = RunTimed(argv);
    if (!r) Die(label + ": " + r.error().ToString());
    ms.push_back(*r);
    progress.Update(ms.size());
  }
  progress.Done();
  return ms;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) Die("cannot write " + path);
}

void Plot(const std::string& json_path, const std::string& out) {
  std::string script = NextToBinary("share/forklet/bench/plot_bench.py");
  auto r = RunTimed({"/usr/bin/python3", script, json_path, out});
  if (!r)
    fprintf(stderr, "forklet-bench: the plot failed (%s); try: /usr/bin/python3 %s %s %s\n",
            r.error().ToString().c_str(), script.c_str(), json_path.c_str(), out.c_str());
  else
    fprintf(stderr, "forklet-bench: wrote %s\n", out.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string message;
  bool help = false;
  if (!ParseOptions(argc, argv, &o, &message, &help)) {
    if (help) {
      fputs(message.c_str(), stdout);
      return 0;
    }
    fprintf(stderr, "forklet-bench: %s (see --help)\n", message.c_str());
    return 2;
  }
  if (geteuid() != 0) Die("run as root: the daemon and the baselines create namespaces and cgroups");
  for (const auto& path : {o.json, o.csv, o.plot, o.table}) {
    std::error_code ec;
    if (!path.empty() && fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  }
  WaitForSignals();

  BenchResults results;
  results.machine = DescribeMachine();
  std::unique_ptr<DaemonUnderTest> daemon;
  if (o.endpoint.empty()) {
    std::vector<std::string> args = {"--max-concurrency", "256"};  // the sweep's clients fit
    args.insert(args.end(), o.daemon_args.begin(), o.daemon_args.end());
    fprintf(stderr, "forklet-bench: starting %s\n", o.forkletd.c_str());
    auto d = DaemonUnderTest::Start(o.forkletd, args);
    if (!d) Die(d.error().ToString());
    daemon = std::move(d.value());
  } else {
    daemon = DaemonUnderTest::Attach(o.endpoint);
  }
  g_daemon = daemon.get();
  int max_clients = 1;
  for (int c : o.clients) max_clients = std::max(max_clients, c);
  results.config = "samples: cold " + std::to_string(o.cold) + ", zygote " + std::to_string(o.zygote) +
                   ", warm " + std::to_string(o.warm) + "; functions of " + std::to_string(o.memory_mb) + " MB" +
                   (o.baselines ? ", baselines " + std::to_string(o.baseline) : std::string()) +
                   "; daemon " + (o.endpoint.empty() ? "started by forklet-bench at " : "given at ") +
                   daemon->endpoint() + "; one client, keep-alive HTTP/1.1 over " +
                   (daemon->endpoint().rfind("unix:", 0) == 0 ? "a Unix socket" : "loopback TCP");

  // One function per sweep client (each keeps its own warm instance); the first is the
  // single-client one.
  std::map<std::string, std::vector<std::string>> functions;
  for (const auto& fn : EmptyFunctions()) {
    for (int i = 0; i < std::max(max_clients, 4); ++i) {
      std::string name = "forklet-bench-" + fn.family + "-" + std::to_string(i);
      if (auto s = daemon->Deploy(name, fn, o.memory_mb); !s) Die("deploy: " + s.error().ToString());
      functions[fn.family].push_back(name);
    }
  }

  for (const auto& fn : EmptyFunctions()) {
    const std::string& single = functions[fn.family][0];
    for (const char* kind : kStartKinds) {
      if (fn.pre_booted && std::string(kind) == "first") continue;  // stem cells: no bound zygote
      const bool zygote = std::string(kind) == "zygote";
      int n = std::string(kind) == "cold" || std::string(kind) == "first" ? o.cold : zygote ? (fn.pre_booted ? o.pre_booted : o.zygote) : o.warm;
      int warmup = std::string(kind) == "cold" || std::string(kind) == "first" || (zygote && fn.pre_booted) ? std::min(o.warmup, 2) : o.warmup;
      auto run = MeasureStartKind(*daemon, single, fn.family, fn.pre_booted, kind, warmup, n,
                                  fn.family + " " + kind);
      if (!run) Die(run.error().ToString());
      static const std::map<std::string, std::string> kHow = {
          {"cold", "its zygote dropped before each request (once the last start's aftermath settled): the interpreter boots (python3: in the sandbox, its zygote after)"},
          {"first", "a function's first start: a ready spare zygote is bound to it (a new revision before each request)"},
          {"zygote", "a new instance of the function's own zygote, forked ahead of demand (X-Forklet-Fresh-Instance; its successor forked first)"},
          {"warm", "the idle instance reused"}};
      std::string how = kHow.at(kind);
      if (fn.pre_booted && zygote)
        how = "pre-booted: a ready stem cell gets the code (X-Forklet-Fresh-Instance; its successor booted first)";
      else if (fn.pre_booted && !zygote && std::string(kind) == "cold")
        how = "its zygote and stem cells dropped before each request: Node boots for it";
      results.rows.push_back(Row(fn.family + " " + kind, false, how, run->e2e_ms));
      results.runs.push_back(std::move(run.value()));
    }
  }
  // The daemon's side of the warm rows just measured, stage by stage (before the sweep adds more).
  if (auto w = daemon->WarmPathJson(); w)
    results.warm_path = nlohmann::json::parse(*w, nullptr, false);
  else
    fprintf(stderr, "forklet-bench: no warm path stages: %s\n", w.error().ToString().c_str());
  if (!results.warm_path.is_object()) results.warm_path = nlohmann::json::object();

  // The HTTP floor: one nginx answer on loopback, as many samples as the warm rows, and the same
  // sweep levels, so that the warm path's median and tail have their floor in the same run.
  std::unique_ptr<HttpFloorServer> http_floor;
  if (o.baselines) {
    auto started = HttpFloorServer::Start();
    if (started) {
      http_floor = std::move(started.value());
      auto ms = MeasureHttpFloor(http_floor->endpoint(), o.warmup, o.warm);
      if (!ms) Die(ms.error().ToString());
      results.rows.push_back(Row(kHttpFloorBaseline, true,
                                 "GET of a two-byte answer from nginx on loopback, same client, keep-alive",
                                 std::move(ms.value())));
    } else {
      fprintf(stderr, "forklet-bench: no HTTP floor: %s\n", started.error().ToString().c_str());
    }
  }

  if (o.baselines) {
    const EmptyFunction& py = EmptyFunctions().front();
    results.rows.push_back(Row(kPythonBaseline, true, Joined(py.baseline_argv) + " (no isolation)",
                               TimedRuns(py.baseline_argv, o.baseline, kPythonBaseline)));
    auto bwrap = BubblewrapArgv(py.baseline_argv);
    results.rows.push_back(Row(kBwrapBaseline, true, Joined(bwrap), TimedRuns(bwrap, o.baseline, kBwrapBaseline)));
    std::string floor = NextToBinary("forklet-clone-floor");
    fprintf(stderr, "  %-28s %d iterations in one run\n", kFloorBaseline, o.floor_iterations);
    auto iterations = CloneFloorIterations(floor, o.floor_iterations);
    if (!iterations) Die(iterations.error().ToString());
    results.rows.push_back(Row(kFloorBaseline, true,
                               "clone(NEWPID|NEWNS|NEWIPC|NEWUTS|NEWNET) + cgroup attach + _exit + wait, "
                               "timed inside forklet-clone-floor",
                               std::move(iterations.value())));
    results.rows.push_back(Row(kFloorProcessBaseline, true,
                               "the whole forklet-clone-floor --iterations 1 (cgroup set-up included)",
                               TimedRuns({floor, "--iterations", "1"}, o.baseline, kFloorProcessBaseline)));
    for (const auto& fn : EmptyFunctions()) {
      if (&fn == &py || fn.baseline_argv.empty()) continue;  // the compiled runtimes have none
      results.rows.push_back(Row(fn.baseline_name, true, Joined(fn.baseline_argv) + " (no isolation)",
                                 TimedRuns(fn.baseline_argv, o.baseline, fn.baseline_name)));
    }
  }

  if (o.sweep) {
    if (http_floor) {
      for (int c : o.clients) {
        auto p = RunFloorSweepLevel(http_floor->endpoint(), HttpFloorServer::Path(), c, o.sweep_seconds);
        if (!p) Die(p.error().ToString());
        results.sweep.push_back(*p);
      }
    }
    for (const auto& fn : EmptyFunctions()) {
      for (const char* kind : {"warm", "zygote"}) {
        // Back-to-back new instances outrun the stem cells' background boots: mostly cold starts.
        if (fn.pre_booted && std::string(kind) == "zygote") continue;
        for (int c : o.clients) {
          auto p = RunSweepLevel(daemon->endpoint(), functions[fn.family], kind, c, o.sweep_seconds);
          if (!p) Die(p.error().ToString());
          p->family = fn.family;
          results.sweep.push_back(*p);
          // Retired sandboxes are torn down in the background: let that finish between levels.
          if (std::string(kind) == "zygote") std::this_thread::sleep_for(std::chrono::milliseconds(1000));
        }
      }
    }
  }

  http_floor.reset();

  if (o.memory) {
    const auto& fn = EmptyFunctions().front();
    std::vector<std::string> some(functions[fn.family].begin(), functions[fn.family].begin() + 4);
    fprintf(stderr, "  %-28s %zu idle instances\n", "memory (PSS)", some.size());
    auto m = MeasureIdleInstanceMemory(*daemon, fn.family, some);
    if (m)
      results.memory = *m;
    else
      results.memory_error = m.error().ToString();
    for (const auto& pre : EmptyFunctions()) {
      if (!pre.pre_booted) continue;
      auto s = MeasureStemCellMemory(*daemon, pre.family);
      if (s) results.stem_cells.push_back(*s);
    }
  }

  if (!o.endpoint.empty())
    for (const auto& [family, names] : functions)
      for (const auto& name : names) (void)daemon->Delete(name);

  CheckBars(results, EmptyFunctions().front().family);
  std::string table = FormatTable(results);
  fputs(("\n" + table).c_str(), stdout);
  fflush(stdout);
  if (!o.table.empty()) WriteText(o.table, table);
  if (!o.csv.empty()) {
    if (auto s = WriteCsv(results, o.csv); !s) Die(s.error().ToString());
  }
  std::string json_path = o.json;
  if (json_path.empty() && !o.plot.empty()) json_path = "/tmp/forklet-bench-" + std::to_string(getpid()) + ".json";
  if (!json_path.empty()) {
    if (auto s = WriteJson(results, json_path); !s) Die(s.error().ToString());
  }
  g_daemon = nullptr;
  daemon.reset();  // stop the daemon before plotting: the plot does not need it
  if (!o.plot.empty()) {
    Plot(json_path, o.plot);
    if (o.json.empty()) unlink(json_path.c_str());
  }
  for (const auto& path : {o.json, o.csv, o.table})
    if (!path.empty()) fprintf(stderr, "forklet-bench: wrote %s\n", path.c_str());
  return 0;
}
