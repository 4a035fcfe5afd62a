// Instances forked ahead of demand (runtime/core/preforks.h), as a user sees them: a function's
// next new instance is ready before it is asked for, runs exactly the function's current code and
// configuration, and a change, a delete or a killed one never shows in an answer.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"
#include "tests/soak/daemon_footprint.h"

namespace forklet::testing {
namespace {

using nlohmann::json;

struct Answer {
  int status = 0;
  json body;
  std::string start_kind, stages;
};

// One invocation that needs a new instance (X-Forklet-Fresh-Instance).
Answer Fresh(Daemon& d, const std::string& fn) {
  auto r = api::HttpCall(d.endpoint(), "POST", "/2015-03-31/functions/" + fn + "/invocations", "{}",
                         {{"X-Forklet-Fresh-Instance", "1"}});
  Answer a;
  if (!r) return a;
  a.status = r->status;
  a.body = json::parse(r->body, nullptr, false);
  if (auto it = r->headers.find("x-forklet-start-kind"); it != r->headers.end()) a.start_kind = it->second;
  if (auto it = r->headers.find("x-forklet-stages"); it != r->headers.end()) a.stages = it->second;
  return a;
}

// The pids of the ready preforked instances, once there are `n` and none is being forked (5 s).
std::vector<pid_t> Preforked(Daemon& d, size_t n) {
  std::vector<pid_t> pids;
  for (int t = 0; t < 250; ++t) {
    json pre = Health(d)["preforked"];
    pids = pre.value("pids", std::vector<pid_t>{});
    if (pids.size() == n && pre.value("forking", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pids;
}

bool GoneWithin(pid_t pid, int ms) {
  for (int t = 0; t < ms / 20 && Running(pid); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !Running(pid);
}

TEST(PreforkTest, AFunctionsNextInstanceIsForkedAheadAndOnlyRunsItsInit) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "fn", "echo").exit_code, 0);
  EXPECT_EQ(Preforked(*d, 0), std::vector<pid_t>{});  // nothing ahead of a function never started
  auto first = Fresh(*d, "fn");
  ASSERT_EQ(first.status, 200) << first.body.dump();
  auto ahead = Preforked(*d, 1);
  ASSERT_EQ(ahead.size(), 1u) << Health(*d).dump();
  auto second = Fresh(*d, "fn");
  ASSERT_EQ(second.status, 200) << second.body.dump();
  EXPECT_EQ(second.start_kind, "zygote");
  EXPECT_NE(second.stages.find("preforked="), std::string::npos) << second.stages;
  EXPECT_EQ(second.body["function_name"], "fn");
  // The one forked ahead served it, and has a successor.
  auto next = Preforked(*d, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0], ahead[0]);
  // It counts against the memory budget as standby memory.
  EXPECT_GT(Health(*d)["preforked"].value("memory_mb", 0), 0);
}

// A Python instance forked ahead sets up its function's environment while it waits (kPrepare):
// what its function sees is exactly what an instance started on demand sees, with a log stream
// of its own.
TEST(PreforkTest, AnInstanceForkedAheadSeesItsFunctionsEnvironmentAsOneStartedOnDemand) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "fn", "lambda-env", {"--environment", "Variables={GREETING=hi,TZ=Asia/Tokyo}"}).exit_code, 0);
  auto on_demand = Fresh(*d, "fn");
  ASSERT_EQ(on_demand.status, 200) << on_demand.body.dump();
  ASSERT_EQ(on_demand.stages.find("preforked="), std::string::npos) << on_demand.stages;
  ASSERT_EQ(Preforked(*d, 1).size(), 1u) << Health(*d).dump();
  auto ahead = Fresh(*d, "fn");
  ASSERT_EQ(ahead.status, 200) << ahead.body.dump();
  ASSERT_NE(ahead.stages.find("preforked="), std::string::npos) << ahead.stages;
  json env_a = on_demand.body["env"], env_b = ahead.body["env"];
  EXPECT_EQ(env_b.value("GREETING", ""), "hi");
  EXPECT_EQ(ahead.body["tzname"], on_demand.body["tzname"]);
  EXPECT_EQ(ahead.body["tzname"][0], "JST");
  // Each instance names its own log stream; everything else is the same.
  EXPECT_NE(env_a.value("AWS_LAMBDA_LOG_STREAM_NAME", ""), env_b.value("AWS_LAMBDA_LOG_STREAM_NAME", ""));
  EXPECT_EQ(ahead.body["context"]["log_stream_name"], env_b["AWS_LAMBDA_LOG_STREAM_NAME"]);
  env_a.erase("AWS_LAMBDA_LOG_STREAM_NAME");
  env_b.erase("AWS_LAMBDA_LOG_STREAM_NAME");
  EXPECT_EQ(env_a, env_b);
}

// A Python instance forked ahead finds and compiles its handler's module while it waits, but no
// function code runs before its start: the module's top level runs when the request came.
TEST(PreforkTest, AnInstanceForkedAheadRunsItsFunctionsModuleOnlyWhenItStarts) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "fn", "loadtime").exit_code, 0);
  ASSERT_EQ(Fresh(*d, "fn").status, 200);
  ASSERT_EQ(Preforked(*d, 1).size(), 1u) << Health(*d).dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // it has long been waiting
  const double asked_at =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto ahead = Fresh(*d, "fn");
  ASSERT_EQ(ahead.status, 200) << ahead.body.dump();
  ASSERT_NE(ahead.stages.find("preforked="), std::string::npos) << ahead.stages;
  EXPECT_GE(ahead.body["loaded_at"].get<double>(), asked_at - 0.05)
      << "the module ran " << asked_at - ahead.body["loaded_at"].get<double>() << " s before it was asked for";
}

TEST(PreforkTest, AChangeOrADeleteRetiresWhatWasForkedAheadForIt) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "fn", "echo", {"--environment", "Variables={GREETING=one}"}).exit_code, 0);
  ASSERT_EQ(Fresh(*d, "fn").body["env_greeting"], "one");
  auto ahead = Preforked(*d, 1);
  ASSERT_EQ(ahead.size(), 1u);
  auto changed = d->Aws({"update-function-configuration", "--function-name", "fn", "--environment",
                         "Variables={GREETING=two}"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_TRUE(GoneWithin(ahead[0], 3000)) << "forked ahead for the old configuration, still there";
  auto after = Fresh(*d, "fn");
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.body["env_greeting"], "two") << after.body.dump();
  auto again = Preforked(*d, 1);
  ASSERT_EQ(again.size(), 1u);
  ASSERT_EQ(d->Aws({"delete-function", "--function-name", "fn"}).exit_code, 0);
  EXPECT_TRUE(GoneWithin(again[0], 3000)) << "forked ahead for a deleted function, still there";
  EXPECT_EQ(Preforked(*d, 0), std::vector<pid_t>{});
}

TEST(PreforkTest, OneKilledWhileItWaitsIsNeverUsed) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "fn", "echo").exit_code, 0);
  ASSERT_EQ(Fresh(*d, "fn").status, 200);
  auto ahead = Preforked(*d, 1);
  ASSERT_EQ(ahead.size(), 1u);
  ASSERT_EQ(kill(ahead[0], SIGKILL), 0);
  ASSERT_TRUE(GoneWithin(ahead[0], 2000));
  auto a = Fresh(*d, "fn");
  EXPECT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body["function_name"], "fn") << a.body.dump();
  EXPECT_EQ(a.stages.find("preforked="), std::string::npos) << a.stages;
}

TEST(PreforkTest, NoneWithPreforkedZero) {
  auto d = Daemon::Start({"--preforked", "0"});
  ASSERT_EQ(Deploy(*d, "fn", "echo").exit_code, 0);
  for (int i = 0; i < 3; ++i) {
    auto a = Fresh(*d, "fn");
    ASSERT_EQ(a.status, 200);
    EXPECT_EQ(a.stages.find("preforked="), std::string::npos) << a.stages;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Health(*d)["preforked"].value("ready", -1), 0);
}

}  // namespace
}  // namespace forklet::testing
