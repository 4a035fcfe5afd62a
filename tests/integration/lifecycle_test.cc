// Deploy, invoke, update, delete and restart through the real aws CLI.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(LifecycleTest, CreateGetListInvokeDelete) {
  auto c = Deploy(*daemon_, "echo-fn", "echo",
                  {"--memory-size", "256", "--timeout", "5", "--environment",
                   "Variables={GREETING=hi}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto created = json::parse(c.out);
  EXPECT_EQ(created["FunctionName"], "echo-fn");
  EXPECT_EQ(created["MemorySize"], 256);
  EXPECT_EQ(created["Runtime"], "python3.11");

  auto g = daemon_->Aws({"get-function", "--function-name", "echo-fn"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(json::parse(g.out)["Configuration"]["Handler"], "app.handler");

  auto l = daemon_->Aws({"list-functions"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(json::parse(l.out)["Functions"].size(), 1u);

  std::string body;
  auto i = Invoke(*daemon_, "echo-fn", R"({"x": [1, 2, 3]})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(i.out)["StatusCode"], 200);
  auto r = json::parse(body);
  EXPECT_EQ(r["event"]["x"], json({1, 2, 3}));
  EXPECT_EQ(r["function_name"], "echo-fn");
  EXPECT_EQ(r["memory_limit_in_mb"], "256");
  EXPECT_EQ(r["arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo-fn");
  EXPECT_EQ(r["env_greeting"], "hi");
  EXPECT_GT(r["remaining_ms"].get<int>(), 3000);
  EXPECT_LE(r["remaining_ms"].get<int>(), 5000);
  EXPECT_EQ(r["request_id"].get<std::string>().size(), 36u);

  auto d = daemon_->Aws({"delete-function", "--function-name", "echo-fn"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto gone = Invoke(*daemon_, "echo-fn", "{}", &body);
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("ResourceNotFoundException"), std::string::npos) << gone.err;
}

TEST_F(LifecycleTest, LogTailHasStartEndReportAndTheFunctionsOutput) {
  ASSERT_EQ(Deploy(*daemon_, "echo-fn", "echo").exit_code, 0);
  std::string body;
  auto i = Invoke(*daemon_, "echo-fn", R"({"k": 1})", &body, {"--log-type", "Tail"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  std::string log = Base64Decode(json::parse(i.out)["LogResult"]);
  EXPECT_NE(log.find("START RequestId: "), std::string::npos) << log;
  EXPECT_NE(log.find("echo called with {'k': 1}"), std::string::npos) << log;
  EXPECT_NE(log.find("END RequestId: "), std::string::npos) << log;
  EXPECT_NE(log.find("REPORT RequestId: "), std::string::npos) << log;
  EXPECT_NE(log.find("Billed Duration: 100 ms"), std::string::npos) << log;
  EXPECT_NE(log.find("Start Kind: "), std::string::npos) << log;
}

TEST_F(LifecycleTest, StartKindsZygoteWarmAndColdOnDemand) {
  ASSERT_EQ(Deploy(*daemon_, "counter", "counter").exit_code, 0);
  auto kind = [&]() {
    std::string body;
    auto i = Invoke(*daemon_, "counter", "{}", &body, {"--log-type", "Tail"});
    EXPECT_EQ(i.exit_code, 0) << i.err;
    std::string log = Base64Decode(json::parse(i.out)["LogResult"]);
    auto pos = log.find("Start Kind: ");
    EXPECT_NE(pos, std::string::npos) << log;
    return std::make_pair(log.substr(pos + 12, log.find('\t', pos) - pos - 12),
                          json::parse(body)["calls"].get<int>());
  };
  EXPECT_EQ(kind(), std::make_pair(std::string("zygote"), 1));  // zygotes start with the daemon
  EXPECT_EQ(kind(), std::make_pair(std::string("warm"), 2));    // same instance, state kept
  ASSERT_EQ(daemon_->Cli({"drop-instances", "counter"}).exit_code, 0);
  EXPECT_EQ(kind(), std::make_pair(std::string("zygote"), 1));
  ASSERT_EQ(daemon_->Cli({"drop-instances", "counter"}).exit_code, 0);
  ASSERT_EQ(daemon_->Cli({"drop-zygote", "python3"}).exit_code, 0);
  EXPECT_EQ(kind(), std::make_pair(std::string("cold"), 1));
  EXPECT_EQ(kind(), std::make_pair(std::string("warm"), 2));
}

TEST_F(LifecycleTest, UpdateCodeAndConfigurationTakeEffect) {
  ASSERT_EQ(Deploy(*daemon_, "fn", "hello").exit_code, 0);
  std::string body;
  ASSERT_EQ(Invoke(*daemon_, "fn", R"({"name": "a"})", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["hello"], "a");

  std::string zip = ZipFunction("echo");
  auto u = daemon_->Aws({"update-function-code", "--function-name", "fn", "--zip-file", "fileb://" + zip});
  unlink(zip.c_str());
  ASSERT_EQ(u.exit_code, 0) << u.err;
  ASSERT_EQ(Invoke(*daemon_, "fn", R"({"name": "b"})", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["event"]["name"], "b");  // the new code answers

  auto c = daemon_->Aws({"update-function-configuration", "--function-name", "fn", "--memory-size",
                         "512", "--environment", "Variables={GREETING=updated}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(json::parse(c.out)["MemorySize"], 512);
  ASSERT_EQ(Invoke(*daemon_, "fn", "{}", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["memory_limit_in_mb"], "512");
  EXPECT_EQ(json::parse(body)["env_greeting"], "updated");
}

TEST_F(LifecycleTest, FunctionErrorIsUnhandledWithLambdaShape) {
  ASSERT_EQ(Deploy(*daemon_, "fail", "fail").exit_code, 0);
  std::string body;
  auto i = Invoke(*daemon_, "fail", R"({"why": "testing"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(i.out)["FunctionError"], "Unhandled");
  auto e = json::parse(body);
  EXPECT_EQ(e["errorType"], "CustomError");
  EXPECT_EQ(e["errorMessage"], "something went wrong: testing");
  EXPECT_TRUE(e["stackTrace"].is_array());
  EXPECT_FALSE(e["stackTrace"].empty());
  // The instance survives a handled exception and serves the next call warm.
  ASSERT_EQ(Invoke(*daemon_, "fail", "{}", &body).exit_code, 0);
}

TEST_F(LifecycleTest, ImportErrorNamesTheModule) {
  ASSERT_EQ(Deploy(*daemon_, "bad", "badimport").exit_code, 0);
  std::string body;
  auto i = Invoke(*daemon_, "bad", "{}", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(i.out)["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorType"], "Runtime.ImportModuleError");
  EXPECT_NE(body.find("module_that_does_not_exist"), std::string::npos) << body;
}

TEST_F(LifecycleTest, MissingHandlerIsNamed) {
  ASSERT_EQ(Deploy(*daemon_, "nohandler", "hello", {"--handler", "app.nothing_here"}).exit_code, 0);
  std::string body;
  ASSERT_EQ(Invoke(*daemon_, "nohandler", "{}", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["errorType"], "Runtime.HandlerNotFound");
  EXPECT_NE(body.find("nothing_here"), std::string::npos) << body;
}

TEST_F(LifecycleTest, EventAndDryRunInvocationTypes) {
  ASSERT_EQ(Deploy(*daemon_, "fn", "hello").exit_code, 0);
  std::string body;
  auto e = Invoke(*daemon_, "fn", "{}", &body, {"--invocation-type", "Event"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(json::parse(e.out)["StatusCode"], 202);
  auto d = Invoke(*daemon_, "fn", "{}", &body, {"--invocation-type", "DryRun"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(json::parse(d.out)["StatusCode"], 204);
}

TEST_F(LifecycleTest, FunctionsSurviveARestart) {
  std::string state = daemon_->state_dir() + "-kept";
  daemon_.reset();
  {
    auto d = Daemon::Start({}, state);
    ASSERT_EQ(Deploy(*d, "persist", "hello").exit_code, 0);
    std::string body;
    ASSERT_EQ(Invoke(*d, "persist", R"({"name": "before"})", &body).exit_code, 0);
  }
  auto d = Daemon::Start({}, state);
  std::string body;
  auto i = Invoke(*d, "persist", R"({"name": "after"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["hello"], "after");
  auto l = d->Aws({"list-functions"});
  EXPECT_EQ(json::parse(l.out)["Functions"][0]["FunctionName"], "persist");
  d.reset();
  std::filesystem::remove_all(state);
}

TEST_F(LifecycleTest, CliDeploysInvokesListsAndDeletes) {
  auto dep = daemon_->Cli({"deploy", "clifn", std::string(TEST_FUNCTIONS_DIR) + "/hello"});
  ASSERT_EQ(dep.exit_code, 0) << dep.err;
  auto inv = daemon_->Cli({"invoke", "clifn", R"({"name": "cli"})"});
  ASSERT_EQ(inv.exit_code, 0) << inv.err;
  EXPECT_EQ(json::parse(inv.out)["hello"], "cli");
  EXPECT_NE(inv.err.find("start="), std::string::npos);
  auto ls = daemon_->Cli({"list"});
  EXPECT_NE(ls.out.find("clifn"), std::string::npos);
  auto del = daemon_->Cli({"delete", "clifn"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  auto again = daemon_->Cli({"invoke", "clifn"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("ResourceNotFoundException"), std::string::npos) << again.err;
}

TEST(CliWithoutDaemon, SaysTheDaemonIsNotRunning) {
  auto r = ::forklet::testing::Run({FORKLET_CLI_PATH, "--endpoint", "unix:/tmp/forklet-no-such.sock", "list"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is the daemon running"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace forklet::testing
