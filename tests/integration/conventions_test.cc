// Python handler conventions beyond Lambda's, picked with FORKLET_HANDLER_CONVENTION and driven
// through the real aws CLI: OpenWhisk's main(params) -> dict, and a plain main() on stdin/stdout.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

std::vector<std::string> With(const std::string& convention, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--handler", "app.main", "--environment",
                                   "Variables={FORKLET_HANDLER_CONVENTION=" + convention + "}"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The value of "Key: value" in a log, up to the next tab, space or newline.
std::string LogField(const std::string& log, const std::string& key) {
  auto pos = log.find(key + ": ");
  if (pos == std::string::npos) return "";
  pos += key.size() + 2;
  return log.substr(pos, log.find_first_of("\t \n", pos) - pos);
}

// Invokes FN expecting a function error; returns the error body (errorMessage, errorType,
// stackTrace), or {} when there was none.
json InvokeFailing(Daemon& d, const std::string& fn, const std::string& payload) {
  std::string body;
  auto i = Invoke(d, fn, payload, &body);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  auto out = json::parse(i.out, nullptr, false);
  EXPECT_TRUE(out.is_object() && out.value("FunctionError", "") == "Unhandled") << i.out << body;
  auto e = json::parse(body, nullptr, false);
  return e.is_object() ? e : json::object();
}

// The stack trace starts in the function's code, not in forklet's runner.
bool TraceStartsInTheFunction(const json& e) {
  return e.contains("stackTrace") && e["stackTrace"].is_array() && !e["stackTrace"].empty() &&
         e["stackTrace"][0].get<std::string>().find("/var/task/app.py") != std::string::npos;
}

class ConventionTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(ConventionTest, OpenWhiskMainGetsTheParamsAndItsEnvironment) {
  auto c = Deploy(*daemon_, "ow", "openwhisk", With("openwhisk", {"--timeout", "5"}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string body;
  auto i = Invoke(*daemon_, "ow", R"({"name": "Ada", "n": [1, 2]})", &body, {"--log-type", "Tail"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto out = json::parse(i.out);
  EXPECT_EQ(out["StatusCode"], 200);
  EXPECT_FALSE(out.contains("FunctionError")) << i.out;
  auto r = json::parse(body);
  EXPECT_EQ(r["greeting"], "Hello Ada!");
  EXPECT_EQ(r["params"], json::parse(R"({"name": "Ada", "n": [1, 2]})"));
  EXPECT_EQ(r["namespace"], "guest");
  EXPECT_EQ(r["action_name"], "/guest/ow");
  // The activation id is the invocation's request id, as the log shows it.
  std::string log = Base64Decode(out["LogResult"]);
  EXPECT_EQ(r["activation_id"], LogField(log, "START RequestId")) << log;
  // The deadline is the timeout's end, in epoch milliseconds.
  int64_t left = std::stoll(r["deadline"].get<std::string>()) - r["now_ms"].get<int64_t>();
  EXPECT_GT(left, 3000);
  EXPECT_LE(left, 5000);
  // No payload is an empty dictionary of parameters.
  i = Invoke(*daemon_, "ow", "", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["greeting"], "Hello stranger!");
}

TEST_F(ConventionTest, OpenWhiskErrorsKeepLambdasShape) {
  ASSERT_EQ(Deploy(*daemon_, "ow", "openwhisk", With("openwhisk")).exit_code, 0);
  auto e = InvokeFailing(*daemon_, "ow", R"({"do": "raise", "why": "testing"})");
  EXPECT_EQ(e["errorType"], "ValueError");
  EXPECT_EQ(e["errorMessage"], "bad params: testing");
  EXPECT_TRUE(TraceStartsInTheFunction(e)) << e;

  // OpenWhisk's rule: the action returns a dictionary ...
  e = InvokeFailing(*daemon_, "ow", R"({"do": "list"})");
  EXPECT_EQ(e["errorType"], "Runtime.InvalidResult");
  EXPECT_EQ(e["errorMessage"], "The action did not return a dictionary (it returned list).");

  // ... and takes one.
  e = InvokeFailing(*daemon_, "ow", R"([1, 2, 3])");
  EXPECT_EQ(e["errorType"], "Runtime.InvalidEvent");
  EXPECT_NE(e.value("errorMessage", "").find("the event is an array"), std::string::npos) << e;

  // The instance survives its errors.
  std::string body;
  auto i = Invoke(*daemon_, "ow", R"({"name": "again"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["greeting"], "Hello again!");
}

TEST_F(ConventionTest, StdinMainReadsTheEventAndWritesTheBody) {
  ASSERT_EQ(Deploy(*daemon_, "plain", "stdin", With("stdin")).exit_code, 0);
  std::string body;
  auto i = Invoke(*daemon_, "plain", R"({"name": "Ada"})", &body, {"--log-type", "Tail"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto out = json::parse(i.out);
  EXPECT_EQ(out["StatusCode"], 200);
  EXPECT_FALSE(out.contains("FunctionError")) << i.out;
  // Exactly what main() wrote, text and raw bytes, not JSON.
  EXPECT_EQ(body, "Hello Ada!\nraw bytes: \xff\n");
  // Its stderr is the log; its stdout is not.
  std::string log = Base64Decode(out["LogResult"]);
  EXPECT_NE(log.find("stdin function called with {'name': 'Ada'}"), std::string::npos) << log;
  EXPECT_EQ(log.find("Hello Ada!"), std::string::npos) << log;

  // Nothing written: the return value is the body, as JSON.
  i = Invoke(*daemon_, "plain", R"({"do": "return", "k": 1})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body), json::parse(R"({"returned": {"do": "return", "k": 1}})"));

  // No payload reads as {}; the same warm instance answers again.
  i = Invoke(*daemon_, "plain", "", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(body, "Hello stranger!\nraw bytes: \xff\n");
}

TEST_F(ConventionTest, StdinErrorsAndExitStatus) {
  ASSERT_EQ(Deploy(*daemon_, "plain", "stdin", With("stdin")).exit_code, 0);
  auto e = InvokeFailing(*daemon_, "plain", R"({"do": "raise", "why": "testing"})");
  EXPECT_EQ(e["errorType"], "RuntimeError");
  EXPECT_EQ(e["errorMessage"], "cannot do it: testing");
  EXPECT_TRUE(TraceStartsInTheFunction(e)) << e;

  // sys.exit with a failing status is a function error that points at the exit.
  e = InvokeFailing(*daemon_, "plain", R"({"do": "exit", "status": 3})");
  EXPECT_EQ(e["errorType"], "Runtime.ExitError");
  EXPECT_EQ(e["errorMessage"], "main() exited with status 3");
  EXPECT_NE(e.dump().find("sys.exit"), std::string::npos) << e;

  // A payload that is not an object is still the program's to read (and this one fails on it).
  e = InvokeFailing(*daemon_, "plain", R"("just a string")");
  EXPECT_EQ(e["errorType"], "AttributeError") << e;

  // sys.exit(0) succeeds with what was written.
  std::string body;
  auto i = Invoke(*daemon_, "plain", R"({"do": "exit", "status": 0})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_FALSE(json::parse(i.out).contains("FunctionError")) << i.out;
  EXPECT_EQ(body, "partial output\n");

  // The instance survives all of it.
  i = Invoke(*daemon_, "plain", R"({"name": "again"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(body, "Hello again!\nraw bytes: \xff\n");
}

TEST_F(ConventionTest, UpdateConfigurationSwitchesTheConvention) {
  // Called the Lambda way, main(params) gets two arguments and fails.
  ASSERT_EQ(Deploy(*daemon_, "ow", "openwhisk", {"--handler", "app.main"}).exit_code, 0);
  EXPECT_EQ(InvokeFailing(*daemon_, "ow", R"({"name": "x"})")["errorType"], "TypeError");

  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "ow", "--environment",
                         "Variables={FORKLET_HANDLER_CONVENTION=openwhisk}"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  std::string body;
  auto i = Invoke(*daemon_, "ow", R"({"name": "x"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["greeting"], "Hello x!") << body;
}

TEST_F(ConventionTest, UnknownConventionIsRefusedByTheApi) {
  auto c = Deploy(*daemon_, "bad", "openwhisk", With("soap"));
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("InvalidParameterValueException"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("FORKLET_HANDLER_CONVENTION is 'soap'; it must be one of: lambda, "
                       "openwhisk, stdin."),
            std::string::npos)
      << c.err;
  EXPECT_NE(daemon_->Aws({"get-function", "--function-name", "bad"}).exit_code, 0);

  ASSERT_EQ(Deploy(*daemon_, "fn", "hello").exit_code, 0);
  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "fn", "--environment",
                         "Variables={FORKLET_HANDLER_CONVENTION=OpenWhisk}"});
  EXPECT_NE(u.exit_code, 0);
  EXPECT_NE(u.err.find("InvalidParameterValueException"), std::string::npos) << u.err;
  // The function keeps its configuration and still answers the Lambda way.
  std::string body;
  auto i = Invoke(*daemon_, "fn", R"({"name": "still"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["hello"], "still");

  // Other runtimes than python3 call handlers the Lambda way only.
  auto n = Deploy(*daemon_, "node", "hello", {"--runtime", "nodejs20.x", "--environment",
                                              "Variables={FORKLET_HANDLER_CONVENTION=stdin}"});
  EXPECT_NE(n.exit_code, 0);
  EXPECT_NE(n.err.find("supported by the python3 runtimes only"), std::string::npos) << n.err;
}

// Limits hold whatever the convention: the daemon enforces them from outside the instance.
class ConventionLimitsTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  std::unique_ptr<Daemon> daemon_;
};

TEST_P(ConventionLimitsTest, TimeoutEndsTheInvocation) {
  ASSERT_EQ(Deploy(*daemon_, "slow", GetParam(), With(GetParam(), {"--timeout", "1"})).exit_code, 0);
  EXPECT_EQ(InvokeFailing(*daemon_, "slow", R"({"do": "sleep", "seconds": 30})")["errorMessage"],
            "Task timed out after 1.00 seconds");
  // A fresh instance serves the next call.
  std::string body;
  auto i = Invoke(*daemon_, "slow", R"({"name": "after"})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_NE(body.find("Hello after!"), std::string::npos) << body;
}

TEST_P(ConventionLimitsTest, MemoryLimitEndsTheInvocationWithOutOfMemory) {
  ASSERT_EQ(Deploy(*daemon_, "hog", GetParam(), With(GetParam(), {"--memory-size", "128"})).exit_code,
            0);
  EXPECT_EQ(InvokeFailing(*daemon_, "hog", R"({"do": "hog", "mb": 400})")["errorType"],
            "Runtime.OutOfMemory");
  // Within its limit the same function succeeds.
  std::string body;
  auto i = Invoke(*daemon_, "hog", R"({"do": "hog", "mb": 16})", &body);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_FALSE(json::parse(i.out).contains("FunctionError")) << body;
  EXPECT_NE(body.find("16"), std::string::npos) << body;
}

INSTANTIATE_TEST_SUITE_P(Conventions, ConventionLimitsTest, ::testing::Values("openwhisk", "stdin"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace forklet::testing
