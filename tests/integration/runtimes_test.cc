// What every runtime of forklet-zygote shares, checked for each: its spare zygotes boot once a
// function of the runtime exists, a function's first start binds one, and its zygote serves zygote,
// warm and (after a drop) cold starts; its instances get the whole sandbox.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

struct RuntimeCase {
  const char* family;
  std::string dir;
  const char* runtime;
  const char* echo_handler;    // answers with {"calls": N, ...}: N counts calls per instance
  const char* status_handler;  // answers with /proc/self/status as seen from the function
};

// The test log names a case by its runtime, not by the struct's bytes.
void PrintTo(const RuntimeCase& c, std::ostream* os) { *os << c.family; }

class RuntimesTest : public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  CmdResult Deploy(const std::string& fn, const std::string& handler) {
    return DeployDir(*daemon_, fn, GetParam().dir, GetParam().runtime, handler);
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_P(RuntimesTest, StartKindsColdWarmZygote) {
  ASSERT_EQ(Deploy("counter", GetParam().echo_handler).exit_code, 0);
  std::string body, log;
  auto kind = [&] {
    InvokeWithLog(*daemon_, "counter", "{}", &body, &log);
    return StartKindIn(log);
  };
  EXPECT_EQ(kind(), "zygote");  // the deploy had a spare zygote of the runtime boot; this binds it
  EXPECT_EQ(kind(), "warm");
  EXPECT_EQ(json::parse(body)["calls"], 2);
  ASSERT_EQ(daemon_->Cli({"drop-instances", "counter"}).exit_code, 0);
  EXPECT_EQ(kind(), "zygote");
  ASSERT_EQ(daemon_->Cli({"drop-instances", "counter"}).exit_code, 0);
  ASSERT_EQ(daemon_->Cli({"drop-zygote", GetParam().family}).exit_code, 0);
  EXPECT_EQ(kind(), "cold");
  EXPECT_EQ(json::parse(body)["calls"], 1);
}

TEST_P(RuntimesTest, RunsUnprivilegedWithoutCapabilitiesUnderSeccomp) {
  ASSERT_EQ(Deploy("status", GetParam().status_handler).exit_code, 0);
  std::string body;
  InvokeWithLog(*daemon_, "status", "{}", &body);
  auto f = StatusFields(body);
  ASSERT_TRUE(f.count("Uid")) << body;
  EXPECT_NE(f["Uid"].substr(0, f["Uid"].find_first_of(" \t")), "0") << f["Uid"];
  EXPECT_EQ(f["CapEff"], "0000000000000000");
  EXPECT_EQ(f["CapPrm"], "0000000000000000");
  EXPECT_EQ(f["CapBnd"], "0000000000000000");
  EXPECT_EQ(f["NoNewPrivs"], "1");
  EXPECT_EQ(f["Seccomp"], "2");
}

INSTANTIATE_TEST_SUITE_P(
    CppRunners, RuntimesTest,
    ::testing::Values(
        RuntimeCase{"native", NATIVE_TEST_FUNCTIONS_DIR, "native", "libtestfn.handler", "libtestfn.status"},
        // The tutorial's bash bootstrap, with handler scripts of its shape.
        RuntimeCase{"provided", std::string(TEST_FUNCTIONS_DIR) + "/provided-bash", "provided",
                    "count.handler", "status.handler"}),
    [](const auto& info) { return std::string(info.param.family); });

}  // namespace
}  // namespace forklet::testing
