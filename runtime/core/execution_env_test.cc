// The INIT message's reserved variables and context fields.
#include "runtime/core/execution_env.h"

#include <regex>

#include <gtest/gtest.h>

namespace forklet::core {
namespace {

registry::FunctionConfig Config() {
  registry::FunctionConfig c;
  c.name = "fn";
  c.runtime = "python3.11";
  c.handler = "app.handler";
  c.memory_mb = 256;
  c.environment = {{"MY_VAR", "x"}, {"TZ", "Europe/Paris"}};
  return c;
}

TEST(ExecutionEnvTest, LogStreamHasLambdasShape) {
  std::regex shape(R"(\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32})");
  std::string a = NewLogStreamName("$LATEST");
  EXPECT_TRUE(std::regex_match(a, shape)) << a;
  EXPECT_NE(a, NewLogStreamName("$LATEST"));
  EXPECT_NE(NewLogStreamName("3").find("/[3]"), std::string::npos);
}

TEST(ExecutionEnvTest, ReservedVariablesAndUserVariables) {
  auto init = InitMessage(Config());
  const auto& env = init["env"];
  EXPECT_EQ(env["AWS_LAMBDA_FUNCTION_NAME"], "fn");
  EXPECT_EQ(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
  EXPECT_EQ(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
  EXPECT_EQ(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/fn");
  EXPECT_EQ(env["AWS_LAMBDA_LOG_STREAM_NAME"], init["log_stream"]);
  EXPECT_EQ(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
  EXPECT_EQ(env["AWS_REGION"], registry::kRegion);
  EXPECT_EQ(env["AWS_DEFAULT_REGION"], registry::kRegion);
  EXPECT_EQ(env["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.11");
  EXPECT_EQ(env["_HANDLER"], "app.handler");
  EXPECT_EQ(env["LAMBDA_TASK_ROOT"], "/var/task");
  EXPECT_EQ(env["LAMBDA_RUNTIME_DIR"], "/var/runtime");
  EXPECT_EQ(env["LANG"], "C.UTF-8");
  EXPECT_NE(env["LD_LIBRARY_PATH"].get<std::string>().find("/var/task/lib"), std::string::npos);
  EXPECT_NE(env["PATH"].get<std::string>().find("/opt/bin"), std::string::npos);
  EXPECT_EQ(env["MY_VAR"], "x");
  EXPECT_EQ(env["TZ"], "Europe/Paris");  // not reserved: the function's own wins
  EXPECT_FALSE(env.contains("AWS_LAMBDA_RUNTIME_API"));  // a custom runtime's only
  EXPECT_EQ(init["arn"], registry::FunctionArn("fn"));
  EXPECT_EQ(init["version"], "$LATEST");
  EXPECT_EQ(init["log_group"], "/aws/lambda/fn");
}

TEST(ExecutionEnvTest, PublishedVersionIsInTheArnAndTheStream) {
  auto init = InitMessage(Config(), "2");
  EXPECT_EQ(init["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "2");
  EXPECT_EQ(init["arn"], registry::FunctionArn("fn") + ":2");
  EXPECT_NE(init["log_stream"].get<std::string>().find("/[2]"), std::string::npos);
}

TEST(ExecutionEnvTest, ATenantsFunctionIsNamedAsItsAccountKnowsIt) {
  auto c = Config();
  c.name = "111111111111.fn";  // the key of "fn" in account 111111111111
  c.version = "3";
  auto init = InitMessage(c, c.version);
  EXPECT_EQ(init["function"], "fn");
  EXPECT_EQ(init["env"]["AWS_LAMBDA_FUNCTION_NAME"], "fn");
  EXPECT_EQ(init["env"]["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/fn");
  EXPECT_EQ(init["log_group"], "/aws/lambda/fn");
  EXPECT_EQ(init["arn"], "arn:aws:lambda:us-east-1:111111111111:function:fn:3");
  EXPECT_EQ(registry::VersionKey(c), "111111111111.fn:3");
  EXPECT_EQ(InitMessage(c)["arn"], "arn:aws:lambda:us-east-1:111111111111:function:fn");
}

TEST(ExecutionEnvTest, CustomRuntimeHasNoExecutionEnv) {
  auto c = Config();
  c.runtime = "provided.al2023";
  EXPECT_FALSE(InitMessage(c)["env"].contains("AWS_EXECUTION_ENV"));
}

}  // namespace
}  // namespace forklet::core
