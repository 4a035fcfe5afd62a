// The native runtime through the real aws CLI: shared objects with the C ABI of
// lang-runners/native/forklet.h (tests/functions/native/*.c, built by CMake). Start kinds and
// isolation: runtimes_test.cc.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

class NativeTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  CmdResult Deploy(const std::string& fn, const std::string& handler,
                   const std::vector<std::string>& extra = {}) {
    return DeployDir(*daemon_, fn, NATIVE_TEST_FUNCTIONS_DIR, "native", handler, extra);
  }
  json InvokeFn(const std::string& fn, const std::string& payload, std::string* body,
                std::string* log = nullptr) {
    return InvokeWithLog(*daemon_, fn, payload, body, log);
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(NativeTest, HandlerGetsTheEventAndContextAndKeepsStateWhenWarm) {
  auto c = Deploy("hello", "libtestfn.handler",
                  {"--memory-size", "256", "--timeout", "5", "--environment", "Variables={GREETING=hi}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(json::parse(c.out)["Runtime"], "native");
  std::string body, log;
  auto out = InvokeFn("hello", R"({"x": [1, 2, 3]})", &body, &log);
  EXPECT_EQ(out["StatusCode"], 200);
  EXPECT_FALSE(out.contains("FunctionError")) << out;
  auto r = json::parse(body);
  EXPECT_EQ(r["event"]["x"], json({1, 2, 3}));
  EXPECT_EQ(r["event_nul"], true);
  EXPECT_EQ(r["function_name"], "hello");
  EXPECT_EQ(r["arn"], "arn:aws:lambda:us-east-1:000000000000:function:hello");
  EXPECT_EQ(r["memory_limit_mb"], 256);
  EXPECT_EQ(r["request_id"].get<std::string>().size(), 36u);
  EXPECT_GT(r["remaining_ms"].get<int>(), 3000);
  EXPECT_LE(r["remaining_ms"].get<int>(), 5000);
  EXPECT_EQ(r["abi_version"], 1);
  EXPECT_EQ(r["greeting"], "hi");
  EXPECT_EQ(r["cwd"], "/var/task");
  EXPECT_EQ(r["calls"], 1);
  EXPECT_EQ(r["inits"], 1);
  // The function's stdout is in the log, between START and END.
  EXPECT_NE(log.find("handler called with {\"x\": [1, 2, 3]}"), std::string::npos) << log;
  EXPECT_LT(log.find("START RequestId"), log.find("handler called with")) << log;
  EXPECT_LT(log.find("handler called with"), log.find("END RequestId")) << log;
  // The same instance again: its state is kept, init ran once.
  InvokeFn("hello", "{}", &body);
  r = json::parse(body);
  EXPECT_EQ(r["calls"], 2);
  EXPECT_EQ(r["inits"], 1);
}

TEST_F(NativeTest, TheExampleAnswers) {
  auto c = DeployDir(*daemon_, "native-hello", std::string(BUILT_EXAMPLES_DIR) + "/native-hello", "native",
                     "libhello.handler");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string body, log;
  InvokeFn("native-hello", R"({"name": "forklet"})", &body, &log);
  EXPECT_EQ(json::parse(body)["hello"], "forklet") << body;
  EXPECT_NE(log.find("hello, forklet (request " + RequestIdIn(log) + ")"), std::string::npos) << log;
}

TEST_F(NativeTest, FunctionErrorHasTheHandlersTypeAndMessage) {
  ASSERT_EQ(Deploy("fail", "libtestfn.fail").exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("fail", R"("testing")", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  auto e = json::parse(body);
  EXPECT_EQ(e["errorType"], "CustomError");
  EXPECT_EQ(e["errorMessage"], "something went wrong: \"testing\"");
  EXPECT_NE(log.find("failing on purpose"), std::string::npos) << log;
  EXPECT_NE(log.find("[ERROR] CustomError: something went wrong"), std::string::npos) << log;
  // A returned error leaves the instance alive.
  InvokeFn("fail", "{}", &body, &log);
  EXPECT_EQ(StartKindIn(log), "warm");
}

TEST_F(NativeTest, InitErrorsNameWhatIsMissing) {
  ASSERT_EQ(Deploy("noso", "libnope.handler").exit_code, 0);
  ASSERT_EQ(Deploy("nosym", "libtestfn.nothing_here").exit_code, 0);
  ASSERT_EQ(Deploy("initfail", "libinitfail.handler").exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("noso", "{}", &body);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  auto e = json::parse(body);
  EXPECT_EQ(e["errorType"], "Runtime.ImportModuleError");
  EXPECT_NE(e["errorMessage"].get<std::string>().find("/var/task/libnope.so"), std::string::npos) << body;
  EXPECT_NE(e["errorMessage"].get<std::string>().find("No such file"), std::string::npos) << body;

  InvokeFn("nosym", "{}", &body);
  e = json::parse(body);
  EXPECT_EQ(e["errorType"], "Runtime.HandlerNotFound");
  EXPECT_NE(e["errorMessage"].get<std::string>().find("nothing_here"), std::string::npos) << body;

  out = InvokeFn("initfail", "{}", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  e = json::parse(body);
  EXPECT_EQ(e["errorType"], "ConfigError");
  EXPECT_EQ(e["errorMessage"], "the configuration is missing");
  EXPECT_NE(log.find("Init Duration"), std::string::npos) << log;
}

TEST_F(NativeTest, CrashEndsTheInstanceWithAFunctionError) {
  ASSERT_EQ(Deploy("crash", "libtestfn.crash").exit_code, 0);
  std::string body, log;
  for (int i = 0; i < 2; ++i) {  // each call a new instance: the crashed one is gone
    auto out = InvokeFn("crash", "{}", &body, &log);
    EXPECT_EQ(out["FunctionError"], "Unhandled");
    auto e = json::parse(body);
    EXPECT_EQ(e["errorType"], "Runtime.ExitError") << body;
    EXPECT_EQ(e["errorMessage"], "RequestId: " + RequestIdIn(log) +
                                     " Error: Runtime exited with error: signal: segmentation fault");
    EXPECT_NE(StartKindIn(log), "warm");
  }
  EXPECT_TRUE(daemon_->Alive());
}

TEST_F(NativeTest, TimeoutEndsTheInvocation) {
  ASSERT_EQ(Deploy("spin", "libtestfn.spin", {"--timeout", "1"}).exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("spin", "{}", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorMessage"], "Task timed out after 1.00 seconds") << body;
  EXPECT_NE(log.find("Billed Duration: 1000 ms"), std::string::npos) << log;
}

TEST_F(NativeTest, MemoryLimitEndsTheInvocationWithOutOfMemory) {
  ASSERT_EQ(Deploy("hog", "libtestfn.oom", {"--memory-size", "128"}).exit_code, 0);
  std::string body;
  auto out = InvokeFn("hog", "{}", &body);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorType"], "Runtime.OutOfMemory") << body;
}

TEST_F(NativeTest, ResponsesUpToSixMegabytesAndNoMore) {
  ASSERT_EQ(Deploy("big", "libtestfn.big", {"--memory-size", "256"}).exit_code, 0);
  std::string body;
  auto out = InvokeFn("big", R"({"bytes": 5000000})", &body);
  EXPECT_FALSE(out.contains("FunctionError")) << out;
  EXPECT_EQ(body.size(), 5000002u);
  out = InvokeFn("big", R"({"bytes": 7000000})", &body);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorType"], "Function.ResponseSizeTooLarge") << body.substr(0, 200);
}

TEST_F(NativeTest, IsItsPidNamespacesInit) {
  ASSERT_EQ(Deploy("status", "libtestfn.status").exit_code, 0);
  std::string body;
  InvokeFn("status", "{}", &body);
  EXPECT_EQ(StatusFields(body)["Pid"], "1") << body;  // a crash ends the whole instance
}

}  // namespace
}  // namespace forklet::testing
