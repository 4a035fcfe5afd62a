// The measurements through the daemon: response time per start kind as one client sees it, and
#include "bench/forklet_bench/measure.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

#include "bench/forklet_bench/http_client.h"
#include "bench/forklet_bench/progress.h"

namespace forklet::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string InvokePath(const std::string& function) {
  return "/2015-03-31/functions/" + function + "/invocations";
}

const char* HeadersFor(const std::string& kind) {
  return kind == "warm" ? "" : "X-Forklet-Fresh-Instance: 1\r\n";
}

// One invocation: its reply, checked to be a success.
Result<HttpReply> Invoke(HttpConnection& conn, const std::string& function, const std::string& kind) {
  auto r = conn.Call("POST", InvokePath(function), "{}", HeadersFor(kind));
  if (!r) return r.error();
  if (r->status != 200 || !r->Header("x-amz-function-error").empty())
    return MakeError("invoke " + function, "HTTP " + std::to_string(r->status) + ": " + r->body);
  return r;
}

}  // namespace

Result<KindRun> MeasureStartKind(DaemonUnderTest& daemon, const std::string& function,
                                 const std::string& family, bool pre_booted, const std::string& kind,
                                 int warmup, int samples, const std::string& progress_label) {
  KindRun run;
  run.family = family;
  run.kind = kind;
  HttpConnection conn(daemon.endpoint());
  Progress progress(progress_label, static_cast<size_t>(samples));
  int attempts = 0;
  for (int i = 0; i < warmup + samples;) {
    if (++attempts > 3 * (warmup + samples) + 10)
      return MakeError("measure " + kind, "too many responses of another start kind (" +
                                              std::to_string(run.off_kind) + ")");
    if (kind == "cold") {
      // From a settled daemon: the previous start's aftermath (its function's zygote booting in
      // the background, its successor forked ahead) done first, then dropped.
      if (!pre_booted)
        if (auto s = daemon.WaitForPreforked(); !s) return s.error();
      if (auto s = daemon.DropZygote(family); !s) return s.error();
      if (pre_booted)
        if (auto s = daemon.WaitForStemCells(family, false); !s) return s.error();
    }
    if (kind == "zygote" && pre_booted)
      if (auto s = daemon.WaitForStemCells(family, true); !s) return s.error();
    if (kind == "zygote" && !pre_booted)  // its successor forked ahead, as between real arrivals
      if (auto s = daemon.WaitForPreforked(); !s) return s.error();
    if (kind == "first") {  // a new revision of the function: its next start binds a spare
      if (auto s = daemon.Rebind(function, attempts); !s) return s.error();
      if (auto s = daemon.WaitForSpareZygote(family); !s) return s.error();
    }
    auto t0 = Clock::now();
    auto r = Invoke(conn, function, kind);
    auto t1 = Clock::now();
    if (!r) return r.error();
    const bool bound = r->Header("x-forklet-stages").find("zygote_bind=") != std::string::npos;
    const std::string reported = kind == "first" ? "zygote" : kind;
    if (r->Header("x-forklet-start-kind") != reported || (kind == "first") != bound) {
      ++run.off_kind;
      continue;
    }
    if (i++ < warmup) continue;
    run.e2e_ms.push_back(Ms(t0, t1));
    run.daemon_ms.push_back(atof(r->Header("x-forklet-total-ms").c_str()));
    std::istringstream stages(r->Header("x-forklet-stages"));
    for (std::string part; stages >> part;) {
      auto eq = part.find('=');
      if (eq == std::string::npos) continue;
      std::string name = part.substr(0, eq);
      if (!run.stages.count(name)) run.stage_order.push_back(name);
      run.stages[name].push_back(atof(part.c_str() + eq + 1));
    }
    progress.Update(run.e2e_ms.size());
  }
  progress.Done();
  return run;
}

namespace {

// One client's request: "" on success, else why it does not count.
using OneRequest = std::function<std::string(HttpConnection& conn, int client)>;

// `clients` threads, each with its own connection, send `one` back to back for `seconds` after
// one untimed request each.
Result<SweepPoint> RunClients(const std::string& endpoint, int clients, double seconds,
                              const std::string& label, const OneRequest& one) {
  struct PerClient {
    std::vector<double> ms;
    size_t errors = 0;
    std::string first_error;
    Clock::time_point end;
  };
  std::vector<PerClient> per(static_cast<size_t>(clients));
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point start, deadline;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      PerClient& me = per[static_cast<size_t>(c)];
      me.ms.reserve(1 << 16);
      HttpConnection conn(endpoint);
      (void)one(conn, c);  // connects, and leaves a warm instance for warm runs
      ready++;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (;;) {
        auto t0 = Clock::now();
        if (t0 >= deadline) break;
        std::string error = one(conn, c);
        auto t1 = Clock::now();
        if (error.empty()) {
          me.ms.push_back(Ms(t0, t1));
        } else {
          if (me.first_error.empty()) me.first_error = error;
          ++me.errors;
        }
      }
      me.end = Clock::now();
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.store(true, std::memory_order_release);
  Progress progress(label, static_cast<size_t>(seconds * 10));
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    progress.Update(static_cast<size_t>(Ms(start, Clock::now()) / 100));
  }
  for (auto& t : threads) t.join();
  progress.Done();

  SweepPoint p;
  p.clients = clients;
  std::vector<double> all;
  Clock::time_point end = start;
  for (auto& c : per) {
    all.insert(all.end(), c.ms.begin(), c.ms.end());
    p.errors += c.errors;
    if (p.first_error.empty()) p.first_error = c.first_error;
    end = std::max(end, c.end);
    if (c.ms.empty() && c.errors > 0)  // a client that never succeeded: the run is broken
      return MakeError(label, c.first_error);
  }
  p.requests = all.size();
  p.seconds = Ms(start, end) / 1000.0;
  p.throughput = static_cast<double>(p.requests) / p.seconds;
  p.latency = Summarize(all);
  return p;
}

}  // namespace

Result<SweepPoint> RunSweepLevel(const std::string& endpoint, const std::vector<std::string>& functions,
                                 const std::string& kind, int clients, double seconds) {
  if (functions.size() < static_cast<size_t>(clients))
    return MakeError("sweep", "fewer functions than clients");
  auto p = RunClients(endpoint, clients, seconds, "sweep " + kind + " x" + std::to_string(clients),
                      [&](HttpConnection& conn, int c) -> std::string {
                        auto r = Invoke(conn, functions[static_cast<size_t>(c)], kind);
                        if (!r) return r.error().ToString();
                        std::string got = r->Header("x-forklet-start-kind");
                        return got == kind ? std::string() : "start kind " + got;
                      });
  if (p) p->kind = kind;
  return p;
}

Result<SweepPoint> RunFloorSweepLevel(const std::string& endpoint, const std::string& path, int clients,
                                      double seconds) {
  auto p = RunClients(endpoint, clients, seconds, "sweep http floor x" + std::to_string(clients),
                      [&](HttpConnection& conn, int) -> std::string {
                        auto r = conn.Call("GET", path);
                        if (!r) return r.error().ToString();
                        return r->status == 200 ? std::string() : "HTTP " + std::to_string(r->status);
                      });
  if (p) {
    p->family = "http floor";
    p->kind = "nginx";
  }
  return p;
}

}  // namespace forklet::bench
