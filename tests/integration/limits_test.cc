// Memory and timeout limits, concurrency throttling, and what a killed instance leaves behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

// Instance cgroups with processes in them, below any forklet root (pooled empty ones and the
// zygotes' cgroup don't count).
int InstanceCgroups() {
  int n = 0;
  const auto roots = StartedCgroupRoots();
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup/pids", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() > 6) it.disable_recursion_pending();
    auto parent = it->path().parent_path().filename().string();
    // Only this test process's daemons: another forklet on the machine is not ours to count.
    if (!it->is_directory(ec) || !roots.count(parent)) continue;
    if (it->path().filename() == "zygotes") continue;  // where the zygotes live, not instances
    std::ifstream procs(it->path() / "cgroup.procs");
    std::string pid;
    if (procs >> pid) ++n;
  }
  return n;
}

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start({"--cgroup-pool", "0"}); }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(LimitsTest, MemoryLimitEndsTheInvocationWithOutOfMemory) {
  ASSERT_EQ(Deploy(*daemon_, "hog", "oom", {"--memory-size", "128"}).exit_code, 0);
  std::string body;
  auto i = Invoke(*daemon_, "hog", R"({"mb": 400})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(i.out)["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorType"], "Runtime.OutOfMemory") << body;
  // Within its limit the same function succeeds.
  i = Invoke(*daemon_, "hog", R"({"mb": 16})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["allocated_mb"], 16) << body;
}

TEST_F(LimitsTest, TimeoutEndsTheInvocationAndTheInstance) {
  ASSERT_EQ(Deploy(*daemon_, "sleepy", "sleep", {"--timeout", "1"}).exit_code, 0);
  std::string body;
  auto i = Invoke(*daemon_, "sleepy", R"({"seconds": 30})", &body, {"--log-type", "Tail"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto out = json::parse(i.out);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorMessage"], "Task timed out after 1.00 seconds") << body;
  std::string log = Base64Decode(out["LogResult"]);
  EXPECT_NE(log.find("Task timed out after 1.00 seconds"), std::string::npos) << log;
  EXPECT_NE(log.find("Billed Duration: 1000 ms"), std::string::npos) << log;
  // The timed-out instance is gone with its cgroup; nothing else is live but the function's next
  // instance, forked ahead of demand after its start (GET health's preforked).
  auto standby = [&] { return Health(*daemon_)["preforked"].value("ready", 0) + Health(*daemon_)["preforked"].value("forking", 0); };
  for (int t = 0; t < 100 && InstanceCgroups() > standby(); ++t) usleep(20000);
  EXPECT_EQ(InstanceCgroups(), standby());
  EXPECT_LE(standby(), 1);
  // The next invocation gets a fresh instance and succeeds.
  i = Invoke(*daemon_, "sleepy", R"({"seconds": 0})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["slept"], 0);
}

TEST_F(LimitsTest, ConcurrencyOverTheLimitGets429) {
  ASSERT_EQ(Deploy(*daemon_, "slow", "sleep", {"--timeout", "10"}).exit_code, 0);
  auto pc = daemon_->Aws({"put-function-concurrency", "--function-name", "slow",
                          "--reserved-concurrent-executions", "1"});
  ASSERT_EQ(pc.exit_code, 0) << pc.err;
  auto first = std::async(std::launch::async, [&] {
    std::string body;
    return Invoke(*daemon_, "slow", R"({"seconds": 3})", &body);
  });
  usleep(1500000);  // the first one is running
  std::string body;
  auto second = Invoke(*daemon_, "slow", R"({"seconds": 0})", &body);
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.err.find("TooManyRequestsException"), std::string::npos) << second.err;
  EXPECT_EQ(first.get().exit_code, 0);
}

TEST_F(LimitsTest, ReservedConcurrencyZeroThrottlesAWarmFunctionToo) {
  ASSERT_EQ(Deploy(*daemon_, "warm", "echo").exit_code, 0);
  std::string body;
  ASSERT_EQ(Invoke(*daemon_, "warm", "{}", &body).exit_code, 0);  // an idle warm instance now
  auto pc = daemon_->Aws({"put-function-concurrency", "--function-name", "warm",
                          "--reserved-concurrent-executions", "0"});
  ASSERT_EQ(pc.exit_code, 0) << pc.err;
  auto throttled = Invoke(*daemon_, "warm", "{}", &body);
  EXPECT_NE(throttled.exit_code, 0) << "reserved concurrency 0 runs nothing, warm instance or not";
  EXPECT_NE(throttled.err.find("TooManyRequestsException"), std::string::npos) << throttled.err;
  ASSERT_EQ(daemon_->Aws({"delete-function-concurrency", "--function-name", "warm"}).exit_code, 0);
  EXPECT_EQ(Invoke(*daemon_, "warm", "{}", &body).exit_code, 0);
}

TEST_F(LimitsTest, DaemonShutdownLeavesNothingBehind) {
  ASSERT_EQ(Deploy(*daemon_, "fn", "hello").exit_code, 0);
  std::string body;
  ASSERT_EQ(Invoke(*daemon_, "fn", "{}", &body).exit_code, 0);
  EXPECT_GE(InstanceCgroups(), 1);  // the warm instance
  daemon_.reset();
  EXPECT_EQ(Leftovers(), std::vector<std::string>{});
}

TEST_F(LimitsTest, RestartAfterKill9RemovesOrphans) {
  std::string state = daemon_->state_dir() + "-k9";
  daemon_.reset();
  auto d = Daemon::Start({}, state);
  ASSERT_EQ(Deploy(*d, "fn", "sleep", {"--timeout", "30"}).exit_code, 0);
  auto running = std::async(std::launch::async, [&] {
    std::string body;
    return Invoke(*d, "fn", R"({"seconds": 20})", &body);
  });
  usleep(1500000);
  d->Kill9();
  running.get();
  EXPECT_GE(InstanceCgroups(), 1);  // orphaned instance and its cgroup
  d = Daemon::Start({}, state);      // start-up cleanup
  EXPECT_EQ(InstanceCgroups(), 0);
  std::string body;
  auto i = Invoke(*d, "fn", R"({"seconds": 0})", &body);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  d.reset();
  fs::remove_all(state);
  EXPECT_EQ(Leftovers(), std::vector<std::string>{});
}

}  // namespace
}  // namespace forklet::testing
