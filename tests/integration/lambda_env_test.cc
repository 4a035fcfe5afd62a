// The execution environment of Lambda's runtimes as a function sees it, through the real aws CLI:
// reserved variables, user variables, and the context object of the Python and Node runtimes.
#include <gtest/gtest.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

const std::regex kStreamShape(R"(\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32})");

class LambdaEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }

  json InvokeBody(const std::string& fn) {
    std::string body;
    auto i = Invoke(*daemon_, fn, "{}", &body);
    EXPECT_EQ(i.exit_code, 0) << i.err;
    auto out = json::parse(i.out, nullptr, false);
    EXPECT_FALSE(out.is_object() && out.contains("FunctionError")) << body;
    auto b = json::parse(body, nullptr, false);
    return b.is_object() ? b : json::object();
  }

  // What both runtimes must show: the reserved variables Lambda documents, and the user's.
  static void ExpectReservedVariables(const json& env, const std::string& fn,
                                      const std::string& runtime, const std::string& handler) {
    EXPECT_EQ(env.value("AWS_LAMBDA_FUNCTION_NAME", ""), fn);
    EXPECT_EQ(env.value("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""), "256");
    EXPECT_EQ(env.value("AWS_LAMBDA_FUNCTION_VERSION", ""), "$LATEST");
    EXPECT_EQ(env.value("AWS_LAMBDA_LOG_GROUP_NAME", ""), "/aws/lambda/" + fn);
    std::string stream = env.value("AWS_LAMBDA_LOG_STREAM_NAME", "");
    EXPECT_TRUE(std::regex_match(stream, kStreamShape)) << stream;
    EXPECT_EQ(env.value("AWS_LAMBDA_INITIALIZATION_TYPE", ""), "on-demand");
    EXPECT_EQ(env.value("AWS_REGION", ""), "us-east-1");
    EXPECT_EQ(env.value("AWS_DEFAULT_REGION", ""), "us-east-1");
    EXPECT_EQ(env.value("AWS_EXECUTION_ENV", ""), "AWS_Lambda_" + runtime);
    EXPECT_EQ(env.value("_HANDLER", ""), handler);
    EXPECT_EQ(env.value("LAMBDA_TASK_ROOT", ""), "/var/task");
    EXPECT_EQ(env.value("LAMBDA_RUNTIME_DIR", ""), "/var/runtime");
    EXPECT_EQ(env.value("TZ", ""), ":UTC");
    EXPECT_EQ(env.value("LANG", ""), "C.UTF-8");
    EXPECT_NE(env.value("PATH", "").find("/usr/bin"), std::string::npos);
    EXPECT_NE(env.value("LD_LIBRARY_PATH", "").find("/var/task/lib"), std::string::npos);
    EXPECT_EQ(env.value("MY_SETTING", ""), "on");
    // Nothing of the daemon's own environment leaks in.
    EXPECT_FALSE(env.contains("FORKLET_STATE_DIR"));
    EXPECT_FALSE(env.contains("AWS_LAMBDA_RUNTIME_API"));  // custom runtimes only
  }

  std::unique_ptr<Daemon> daemon_;
};

TEST_F(LambdaEnvTest, PythonSeesReservedVariablesAndContext) {
  auto c = Deploy(*daemon_, "envpy", "lambda-env",
                  {"--memory-size", "256", "--timeout", "7", "--environment",
                   "Variables={MY_SETTING=on}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json b = InvokeBody("envpy");
  ExpectReservedVariables(b["env"], "envpy", "python3.11", "app.handler");
  const json& ctx = b["context"];
  EXPECT_EQ(ctx["function_name"], "envpy");
  EXPECT_EQ(ctx["function_version"], "$LATEST");
  EXPECT_EQ(ctx["invoked_function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:envpy");
  EXPECT_EQ(ctx["memory_limit_in_mb"], "256");
  EXPECT_EQ(ctx["aws_request_id"].get<std::string>().size(), 36u);
  EXPECT_EQ(ctx["log_group_name"], "/aws/lambda/envpy");
  EXPECT_EQ(ctx["log_stream_name"], b["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]);
  EXPECT_GT(ctx["remaining_ms"].get<int>(), 4000);
  EXPECT_LE(ctx["remaining_ms"].get<int>(), 7000);
  EXPECT_EQ(b["tzname"][0], "UTC");
  // A warm instance keeps its stream; a new instance gets another.
  json again = InvokeBody("envpy");
  EXPECT_EQ(again["context"]["log_stream_name"], ctx["log_stream_name"]);
}

TEST_F(LambdaEnvTest, PythonFunctionMaySetItsOwnTimeZone) {
  auto c = Deploy(*daemon_, "tzpy", "lambda-env",
                  {"--memory-size", "256", "--environment", "Variables={TZ=America/New_York}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json b = InvokeBody("tzpy");
  EXPECT_EQ(b["env"]["TZ"], "America/New_York");
  EXPECT_NE(b["tzname"][0], "UTC") << b["tzname"];
}

TEST_F(LambdaEnvTest, NodeSeesReservedVariablesAndContext) {
  auto c = DeployDir(*daemon_, "envjs", std::string(TEST_FUNCTIONS_DIR) + "/node-lambda-env",
                     "nodejs20.x", "index.handler",
                     {"--memory-size", "256", "--timeout", "7", "--environment",
                      "Variables={MY_SETTING=on}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json b = InvokeBody("envjs");
  ExpectReservedVariables(b["env"], "envjs", "nodejs20.x", "index.handler");
  const json& ctx = b["context"];
  EXPECT_EQ(ctx["functionName"], "envjs");
  EXPECT_EQ(ctx["functionVersion"], "$LATEST");
  EXPECT_EQ(ctx["invokedFunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:envjs");
  EXPECT_EQ(ctx["memoryLimitInMB"], "256");
  EXPECT_EQ(ctx["awsRequestId"].get<std::string>().size(), 36u);
  EXPECT_EQ(ctx["logGroupName"], "/aws/lambda/envjs");
  EXPECT_EQ(ctx["logStreamName"], b["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]);
  EXPECT_GT(ctx["remainingMs"].get<int>(), 4000);
}

TEST_F(LambdaEnvTest, ReservedVariablesCannotBeSet) {
  auto c = Deploy(*daemon_, "bad", "lambda-env",
                  {"--environment", "Variables={AWS_LAMBDA_LOG_STREAM_NAME=x}"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("AWS_LAMBDA_LOG_STREAM_NAME"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("InvalidParameterValueException"), std::string::npos) << c.err;
}

TEST_F(LambdaEnvTest, Boto3IsImportableAndNothingElseOfTheHost) {
  auto c = Deploy(*daemon_, "sdk", "sdk", {"--memory-size", "256", "--timeout", "30"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json b = InvokeBody("sdk");
  EXPECT_FALSE(b.value("boto3", "").empty()) << b.dump();
  EXPECT_FALSE(b.value("botocore", "").empty()) << b.dump();
  EXPECT_EQ(b.value("client", ""), "S3") << b.dump();
  EXPECT_EQ(b.value("boto3_file", "").rfind("/var/runtime/python-sdk/", 0), 0u) << b.dump();
  // The function's own packages come first, as on Lambda.
  EXPECT_EQ(b["sys_path"][0], "/var/task");
  for (const char* other : {"yaml", "apt", "dbus", "awscli", "cryptography"})
    EXPECT_EQ(b["others"][other], false) << other << " is importable: " << b.dump();
}

}  // namespace
}  // namespace forklet::testing
