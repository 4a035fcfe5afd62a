// The benchmark's daemon-side support: X-Forklet-Fresh-Instance gives every such invocation a
// new sandbox and leaves the idle pool alone; health lists the idle instances' pids.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {

using nlohmann::json;

api::HttpResponse Call(Daemon& d, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers = {}) {
  auto r = api::HttpCall(d.endpoint(), method, target, method == "POST" ? "{}" : "", headers);
  if (!r) throw std::runtime_error(method + " " + target + ": " + r.error().ToString());
  return std::move(r.value());
}

std::string Header(const api::HttpResponse& r, const std::string& lower) {
  auto it = r.headers.find(lower);
  return it == r.headers.end() ? "" : it->second;
}

TEST(FreshInstance, EachInvocationGetsANewSandboxAndTheWarmOneStaysIdle) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "counter", "counter").exit_code, 0);
  const std::string invoke = "/2015-03-31/functions/counter/invocations";
  const std::map<std::string, std::string> fresh = {{"X-Forklet-Fresh-Instance", "1"}};

  auto first = Call(*d, "POST", invoke);  // leaves one warm instance with calls == 1
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(json::parse(first.body)["calls"], 1);

  for (int i = 0; i < 3; ++i) {
    auto r = Call(*d, "POST", invoke, fresh);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Header(r, "x-forklet-start-kind"), "zygote");
    EXPECT_EQ(json::parse(r.body)["calls"], 1) << "a fresh instance has fresh module state";
  }

  auto health = json::parse(Call(*d, "GET", "/forklet/v1/health").body);
  EXPECT_EQ(health["instances"]["idle"], 1) << health.dump();  // fresh instances are not kept
  ASSERT_EQ(health["instances"]["idle_pids"].size(), 1u) << health.dump();
  int pid = health["instances"]["idle_pids"][0];
  EXPECT_EQ(kill(pid, 0), 0) << "the idle instance's pid is a live process";

  auto warm = Call(*d, "POST", invoke);
  EXPECT_EQ(Header(warm, "x-forklet-start-kind"), "warm");
  EXPECT_EQ(json::parse(warm.body)["calls"], 2) << "the first instance was kept for reuse";
}

// A churn of new instances from 8 clients: the instances that served them are killed when they are
// retired and removed as fast as they come, so that what the daemon no longer counts (memory,
// pids, /tmp areas) is not still held by a growing queue of live retired instances.
TEST(FreshInstance, AChurnOfNewInstancesLeavesNoGrowingQueueOfRetiredOnes) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "counter", "counter").exit_code, 0);
  const std::string invoke = "/2015-03-31/functions/counter/invocations";
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&] {
      while (!stop) {
        auto r = api::HttpCall(d->endpoint(), "POST", invoke, "{}", {{"X-Forklet-Fresh-Instance", "1"}});
        (r && r->status == 200 ? ok : failed)++;
      }
    });
  uint32_t most = 0;
  for (int i = 0; i < 40; ++i) {  // 4 s
    usleep(100000);
    auto h = json::parse(Call(*d, "GET", "/forklet/v1/health").body);
    most = std::max(most, h["instances"]["retiring"].get<uint32_t>());
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 40) << "the churn ran";
  // Without killing at retirement and parallel teardown the queue grew by ~70 a second here.
  EXPECT_LE(most, 24u) << "retired instances queued for removal at most, over " << ok << " invocations";
  json h;
  for (int i = 0; i < 100; ++i) {
    h = json::parse(Call(*d, "GET", "/forklet/v1/health").body);
    if (h["instances"]["retiring"] == 0) break;
    usleep(50000);
  }
  EXPECT_EQ(h["instances"]["retiring"], 0) << h.dump();
  EXPECT_EQ(h["instances"]["busy"], 0) << h.dump();
}

double Stage(const api::HttpResponse& r, const std::string& name) {
  const std::string stages = " " + Header(r, "x-forklet-stages");
  auto at = stages.find(" " + name + "=");
  return at == std::string::npos ? -1 : std::stod(stages.substr(at + name.size() + 2));
}

// Fault-ahead (zygote/fault_ahead.h): once the function's first instance has answered, its zygote
// knows which pages a child touches and later instances populate them in their fault_ahead step.
// What they populate is the zygote's memory, never a sibling's: module state stays fresh.
TEST(FreshInstance, LaterInstancesPopulateWhatTheFirstTouchedAndStartFromTheZygotesState) {
  auto d = Daemon::Start({"--preforked", "0"});
  ASSERT_EQ(Deploy(*d, "counter", "counter").exit_code, 0);
  const std::string invoke = "/2015-03-31/functions/counter/invocations";
  auto first = Call(*d, "POST", invoke);  // its instance stays warm with calls == 1
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Stage(first, "fault_ahead"), 0.0) << "nothing learned before the first answer: "
                                               << Header(first, "x-forklet-stages");
  double populated = 0;
  for (int i = 0; i < 50 && populated <= 0; ++i) {
    auto r = Call(*d, "POST", invoke, {{"X-Forklet-Fresh-Instance", "1"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["calls"], 1) << "a fresh instance has fresh module state";
    populated = Stage(r, "fault_ahead");
    if (populated <= 0) usleep(50000);
  }
  EXPECT_GT(populated, 0.0) << "no new instance populated a learned plan; log:\n" << d->ReadLog();
  EXPECT_NE(d->ReadLog().find("fault-ahead: zygote "), std::string::npos) << d->log();
  for (int i = 0; i < 3; ++i) {
    auto r = Call(*d, "POST", invoke, {{"X-Forklet-Fresh-Instance", "1"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["calls"], 1);
    EXPECT_GT(Stage(r, "fault_ahead"), 0.0) << Header(r, "x-forklet-stages");
  }
  auto warm = Call(*d, "POST", invoke);
  EXPECT_EQ(Header(warm, "x-forklet-start-kind"), "warm");
  EXPECT_EQ(json::parse(warm.body)["calls"], 2) << "the first instance kept its own state";
  // The health report shows the function's zygote with its plan (other zygotes have none yet).
  auto health = json::parse(Call(*d, "GET", "/forklet/v1/health").body);
  uint64_t pages = 0;
  for (const auto& z : health["zygotes"])
    if (z["function"] == "counter") pages = z["fault_ahead_pages"];
  EXPECT_GT(pages, 0u) << health["zygotes"].dump();
}

}  // namespace
}  // namespace forklet::testing
