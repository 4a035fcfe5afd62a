// Every isolation property of the sandbox, probed from inside a deployed function.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

class IsolationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = Daemon::Start().release();
    auto r = Deploy(*daemon_, "probe", "probe");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Deploy(*daemon_, "other", "hello");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string body;
    json event{{"state_dir", daemon_->state_dir()}, {"daemon_port", Port()}};
    auto i = Invoke(*daemon_, "probe", event.dump(), &body);
    ASSERT_EQ(i.exit_code, 0) << i.err;
    probe_ = new json(json::parse(body));
    ASSERT_FALSE(probe_->contains("errorType")) << body;
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete probe_;
  }
  static int Port() { return std::stoi(daemon_->endpoint().substr(daemon_->endpoint().rfind(':') + 1)); }
  const json& p() { return *probe_; }
  static Daemon* daemon_;
  static json* probe_;
};
Daemon* IsolationTest::daemon_ = nullptr;
json* IsolationTest::probe_ = nullptr;

TEST_F(IsolationTest, RunsAsAnUnprivilegedUser) {
  EXPECT_NE(p()["uid"], 0);
  EXPECT_NE(p()["gid"], 0);
  EXPECT_EQ(p()["setuid0_errno"], "EPERM");
}

TEST_F(IsolationTest, KeepsNoCapability) {
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_EQ(p()[cap], "0000000000000000") << cap;
  EXPECT_EQ(p()["NoNewPrivs"], "1");
}

TEST_F(IsolationTest, SeccompFilterIsOnAndBlocksSyscalls) {
  EXPECT_EQ(p()["Seccomp"], "2");
  EXPECT_EQ(p()["unshare_errno"], "EPERM");
  EXPECT_EQ(p()["mount_errno"], "EPERM");
  EXPECT_EQ(p()["ptrace_errno"], "EPERM");
}

TEST_F(IsolationTest, CannotSeeHostProcesses) {
  EXPECT_EQ(p()["pids_visible"], json({1}));  // only itself, as its pid namespace's init
  EXPECT_EQ(p()["hostname"], "forklet");
}

TEST_F(IsolationTest, CannotWriteOutsideTmp) {
  EXPECT_FALSE(p()["write_var_task"]);
  EXPECT_FALSE(p()["write_etc"]);
  EXPECT_FALSE(p()["write_usr"]);
  EXPECT_FALSE(p()["write_root"]);
  EXPECT_TRUE(p()["write_tmp"]);
}

TEST_F(IsolationTest, CannotReadHostSecretsOrOtherFunctions) {
  EXPECT_FALSE(p()["etc_shadow_exists"]);
  EXPECT_FALSE(p()["root_home_exists"]);
  EXPECT_FALSE(p()["state_dir_visible"]);
  EXPECT_EQ(p()["var_task"], json({"app.py"}));  // its own code only
}

TEST_F(IsolationTest, HasItsOwnLoopbackAndOneWayOut) {
  EXPECT_EQ(p()["interfaces"], json({"lo", "eth0"}));  // egress, the default (network_test.cc)
  EXPECT_EQ(p()["routes"], 2);
  EXPECT_FALSE(p()["host_loopback_reachable"]);  // the daemon's port on the host is not there
}

TEST_F(IsolationTest, EachInstanceHasAPrivateTmp) {
  // A second instance (after dropping the first) sees none of the first one's files.
  ASSERT_EQ(daemon_->Cli({"drop-instances", "probe"}).exit_code, 0);
  std::string body;
  json event{{"state_dir", daemon_->state_dir()}, {"daemon_port", Port()}};
  ASSERT_EQ(Invoke(*daemon_, "probe", event.dump(), &body).exit_code, 0);
  auto second = json::parse(body);
  int markers = 0;
  for (auto& f : second["tmp_files"])
    if (f.get<std::string>().rfind("marker-", 0) == 0) ++markers;
  EXPECT_EQ(markers, 1) << second["tmp_files"].dump();
}

}  // namespace
}  // namespace forklet::testing
