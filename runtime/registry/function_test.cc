// Tests of function.h: A function's configuration as the Lambda API knows it, and its validation.
#include "runtime/registry/function.h"

#include <gtest/gtest.h>

namespace forklet::registry {
namespace {

using nlohmann::json;

FunctionConfig Valid() {
  FunctionConfig c;
  c.name = "hello";
  c.runtime = "python3.12";
  c.handler = "app.handler";
  return c;
}

// The message of a failed validation, or "" when it passed.
std::string Problem(const FunctionConfig& c) {
  auto s = ValidateConfig(c);
  if (s) return "";
  EXPECT_EQ(s.error().op, "InvalidParameterValueException");
  return s.error().message;
}

TEST(FunctionNameTest, LengthLimitIs64) {
  EXPECT_TRUE(ValidateName(std::string(63, 'a')));
  EXPECT_TRUE(ValidateName(std::string(64, 'a')));
  auto s = ValidateName(std::string(65, 'a'));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().op, "InvalidParameterValueException");
  EXPECT_NE(s.error().message.find("at 'functionName'"), std::string::npos);
  EXPECT_NE(s.error().message.find("less than or equal to 64"), std::string::npos);
  EXPECT_FALSE(ValidateName(""));
}

TEST(FunctionNameTest, PatternMessageIsLambdas) {
  EXPECT_TRUE(ValidateName("My_func-1"));
  auto s = ValidateName("a/b");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message,
            "1 validation error detected: Value 'a/b' at 'functionName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [A-Za-z0-9_-]{1,64}");
  for (const char* bad : {"a.b", "a b", "..", "a:b", "é"}) EXPECT_FALSE(ValidateName(bad)) << bad;
}

TEST(FunctionConfigTest, MemoryIs128To10240) {
  for (uint32_t mb : {128u, 129u, 1769u, 10240u}) {
    auto c = Valid();
    c.memory_mb = mb;
    EXPECT_EQ(Problem(c), "") << mb;
  }
  auto c = Valid();
  c.memory_mb = 127;
  EXPECT_EQ(Problem(c),
            "1 validation error detected: Value '127' at 'memorySize' failed to satisfy "
            "constraint: Member must have value greater than or equal to 128");
  c.memory_mb = 10241;
  EXPECT_NE(Problem(c).find("Member must have value less than or equal to 10240"), std::string::npos);
}

TEST(FunctionConfigTest, TimeoutIs1To900) {
  auto c = Valid();
  for (uint32_t s : {1u, 900u}) {
    c.timeout_s = s;
    EXPECT_EQ(Problem(c), "") << s;
  }
  c.timeout_s = 0;
  EXPECT_NE(Problem(c).find("Value '0' at 'timeout' failed to satisfy constraint: Member must have "
                            "value greater than or equal to 1"),
            std::string::npos);
  c.timeout_s = 901;
  EXPECT_NE(Problem(c).find("less than or equal to 900"), std::string::npos);
}

TEST(FunctionConfigTest, ReportsAllShapeErrorsTogether) {
  auto c = Valid();
  c.memory_mb = 64;
  c.timeout_s = 0;
  std::string m = Problem(c);
  EXPECT_EQ(m.rfind("2 validation errors detected: ", 0), 0u) << m;
  EXPECT_NE(m.find("memorySize"), std::string::npos);
  EXPECT_NE(m.find("; Value '0' at 'timeout'"), std::string::npos);
}

TEST(FunctionConfigTest, RuntimesAndFamilies) {
  EXPECT_EQ(RuntimeFamily("python3"), "python3");
  EXPECT_EQ(RuntimeFamily("python3.8"), "python3");
  EXPECT_EQ(RuntimeFamily("python3.13"), "python3");
  EXPECT_EQ(RuntimeFamily("nodejs20.x"), "nodejs");
  EXPECT_EQ(RuntimeFamily("nodejs"), "nodejs");
  EXPECT_EQ(RuntimeFamily("native"), "native");
  EXPECT_EQ(RuntimeFamily("provided.al2023"), "provided");
  for (const char* r : {"python2.7", "python3.7", "python3.14", "python", "java21", "nodejs16.x",
                        "PYTHON3", " python3", ""})
    EXPECT_EQ(RuntimeFamily(r), "") << r;

  auto c = Valid();
  c.runtime = "java21";
  std::string m = Problem(c);
  EXPECT_NE(m.find("The runtime parameter of java21 is not supported"), std::string::npos) << m;
  EXPECT_NE(m.find("Supported runtimes: python3, python3.8"), std::string::npos) << m;
  c.runtime = "";
  EXPECT_NE(Problem(c).find("Runtime and Handler are mandatory"), std::string::npos);
}

TEST(FunctionConfigTest, HandlerForm) {
  auto c = Valid();
  for (const char* ok : {"app.handler", "src/app.handler", "pkg.mod.handler", "a/b/c.d", "index.main"}) {
    c.handler = ok;
    EXPECT_EQ(Problem(c), "") << ok;
  }
  for (const char* bad : {"handler", "app.", ".handler", "a..b", "/app.handler", "../app.handler",
                          "a/b.c/d", "a//b.c", "./app.handler"}) {
    c.handler = bad;
    EXPECT_NE(Problem(c).find("module.function"), std::string::npos) << bad;
  }
  c.handler = "app .handler";
  EXPECT_NE(Problem(c).find("[^\\s]+"), std::string::npos);
  c.handler = "a." + std::string(126, 'b');  // 128 characters
  EXPECT_EQ(Problem(c), "");
  c.handler += "b";
  EXPECT_NE(Problem(c).find("less than or equal to 128"), std::string::npos);
  c.handler = "";
  EXPECT_NE(Problem(c).find("Handler is a mandatory parameter"), std::string::npos);
  c.runtime = "nodejs22.x";
  EXPECT_NE(Problem(c).find("Handler is a mandatory parameter"), std::string::npos);
  // A native handler names a shared object below /var/task and its symbol: the same form.
  c.runtime = "native";
  EXPECT_NE(Problem(c).find("Handler is a mandatory parameter"), std::string::npos);
  c.handler = "../usr/lib/libc.handler";
  EXPECT_NE(Problem(c).find("module.function"), std::string::npos);
  c.handler = "lib/libhello.handler";
  EXPECT_EQ(Problem(c), "");
  c.handler = "";
  // Custom runtimes read the handler themselves; it may be absent or any non-blank word.
  c.runtime = "provided.al2023";
  EXPECT_EQ(Problem(c), "");
  c.handler = "bootstrap";
  EXPECT_EQ(Problem(c), "");
}

TEST(FunctionConfigTest, EnvironmentKeysReservedAndSize) {
  auto c = Valid();
  c.environment = {{"GREETING", "hi"}, {"a1_", ""}, {"Ab", "x"}};
  EXPECT_EQ(Problem(c), "");
  for (const char* bad : {"1A", "A", "A-B", "_X", "A B", ""}) {
    c.environment = {{bad, "v"}};
    EXPECT_NE(Problem(c).find("at 'environment.variables'"), std::string::npos) << bad;
  }
  c.environment = {{"AWS_REGION", "eu-west-1"}, {"LAMBDA_TASK_ROOT", "/x"}, {"OK", "1"}};
  std::string m = Problem(c);
  EXPECT_NE(m.find("reserved keys"), std::string::npos);
  EXPECT_NE(m.find("AWS_REGION"), std::string::npos);
  EXPECT_NE(m.find("LAMBDA_TASK_ROOT"), std::string::npos);
  for (const char* r : {"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_SECRET_ACCESS_KEY"}) {
    c.environment = {{r, "x"}};
    EXPECT_NE(Problem(c).find("reserved keys"), std::string::npos) << r;
  }
  // {"BIG":"..."} is 10 bytes of JSON around the value: 4086 fits in 4 KB, 4087 does not.
  c.environment = {{"BIG", std::string(4086, 'x')}};
  EXPECT_EQ(Problem(c), "");
  c.environment = {{"BIG", std::string(4087, 'x')}};
  EXPECT_NE(Problem(c).find("exceeded the 4KB limit"), std::string::npos);
  c.environment = {{"NUL", std::string("a\0b", 3)}};
  EXPECT_NE(Problem(c).find("NUL"), std::string::npos);
}

TEST(FunctionConfigTest, HandlerConventionIsOneOfThreeAndPythonOnly) {
  auto c = Valid();
  EXPECT_EQ(HandlerConvention(c), "lambda");
  for (const char* name : {"lambda", "openwhisk", "stdin"}) {
    c.environment = {{"FORKLET_HANDLER_CONVENTION", name}};
    EXPECT_EQ(Problem(c), "") << name;
    EXPECT_EQ(HandlerConvention(c), name);
  }
  for (const char* bad : {"", "OpenWhisk", "http", "stdin "}) {
    c.environment = {{"FORKLET_HANDLER_CONVENTION", bad}};
    EXPECT_EQ(Problem(c),
              "The environment variable FORKLET_HANDLER_CONVENTION is '" + std::string(bad) +
                  "'; it must be one of: lambda, openwhisk, stdin.");
  }
  // Other runtimes call handlers the Lambda way only: another convention is refused, not ignored.
  c.runtime = "nodejs20.x";
  c.environment = {{"FORKLET_HANDLER_CONVENTION", "lambda"}};
  EXPECT_EQ(Problem(c), "");
  c.environment = {{"FORKLET_HANDLER_CONVENTION", "stdin"}};
  EXPECT_NE(Problem(c).find("supported by the python3 runtimes only"), std::string::npos);
}

TEST(FunctionConfigTest, SnapshotPolicyIsOffOnOrAuto) {
  auto c = Valid();
  for (const char* ok : {"off", "on", "auto"}) {
    c.environment = {{"FORKLET_SNAPSHOT", ok}};
    EXPECT_EQ(Problem(c), "") << ok;
  }
  for (const char* bad : {"", "yes", "ON", "auto "}) {
    c.environment = {{"FORKLET_SNAPSHOT", bad}};
    EXPECT_NE(Problem(c).find("FORKLET_SNAPSHOT must be off, on or auto"), std::string::npos) << bad;
  }
}

TEST(FunctionConfigTest, NetworkIsEgressOrNone) {
  auto c = Valid();
  for (const char* ok : {"egress", "none"}) {
    c.environment = {{"FORKLET_NETWORK", ok}};
    EXPECT_EQ(Problem(c), "") << ok;
  }
  for (const char* bad : {"", "off", "EGRESS", "vpc"}) {
    c.environment = {{"FORKLET_NETWORK", bad}};
    EXPECT_NE(Problem(c).find("FORKLET_NETWORK must be egress or none"), std::string::npos) << bad;
  }
}

TEST(FunctionConfigTest, DescriptionUpTo256) {
  auto c = Valid();
  c.description = std::string(256, 'd');
  EXPECT_EQ(Problem(c), "");
  c.description += "d";
  EXPECT_NE(Problem(c).find("at 'description'"), std::string::npos);
}

TEST(FunctionConfigTest, HugeValuesAreCutInMessages) {
  auto c = Valid();
  c.name = std::string(100000, 'x');
  EXPECT_LT(Problem(c).size(), 400u);
}

TEST(FunctionJsonTest, LambdaConfigurationShape) {
  auto c = Valid();
  c.memory_mb = 256;
  c.timeout_s = 30;
  c.code_sha256 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
  c.code_size = 1234;
  c.revision = 3;
  c.last_modified = "2026-11-23T12:00:00.000+0000";
  c.role = "arn:aws:iam::000000000000:role/lambda";
  json j = ToLambdaJson(c);
  EXPECT_EQ(j["FunctionName"], "hello");
  EXPECT_EQ(j["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:hello");
  EXPECT_EQ(j["Runtime"], "python3.12");
  EXPECT_EQ(j["Handler"], "app.handler");
  EXPECT_EQ(j["Role"], c.role);
  EXPECT_EQ(j["MemorySize"], 256);
  EXPECT_EQ(j["Timeout"], 30);
  EXPECT_EQ(j["CodeSize"], 1234);
  EXPECT_EQ(j["CodeSha256"], c.code_sha256);
  EXPECT_EQ(j["LastModified"], c.last_modified);
  EXPECT_EQ(j["Version"], "$LATEST");
  EXPECT_EQ(j["State"], "Active");
  EXPECT_EQ(j["LastUpdateStatus"], "Successful");
  EXPECT_EQ(j["PackageType"], "Zip");
  EXPECT_EQ(j["Architectures"], json::array({"x86_64"}));
  EXPECT_EQ(j["EphemeralStorage"]["Size"], 512);
  EXPECT_EQ(j["TracingConfig"]["Mode"], "PassThrough");
  EXPECT_EQ(j["Description"], "");
  EXPECT_FALSE(j.contains("Environment"));
  ASSERT_TRUE(j["RevisionId"].is_string());
  EXPECT_EQ(j["RevisionId"].get<std::string>().size(), 36u);

  c.environment = {{"K1", "v"}};
  c.revision = 4;
  json j2 = ToLambdaJson(c);
  EXPECT_EQ(j2["Environment"], (json{{"Variables", {{"K1", "v"}}}}));
  EXPECT_NE(j2["RevisionId"], j["RevisionId"]);
}

TEST(FunctionJsonTest, StateRoundTrip) {
  auto c = Valid();
  c.environment = {{"A1", "x"}, {"B2", "y"}};
  c.description = "desc";
  c.role = "r";
  c.code_sha256 = "sha";
  c.code_size = 99;
  c.revision = 7;
  c.last_modified = "2026-01-01T00:00:00.000+0000";
  auto back = FromStateJson(ToStateJson(c));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(ToStateJson(back.value()), ToStateJson(c));
}

TEST(FunctionJsonTest, StateRejectsMissingFieldsAndUnsafeNames) {
  json j = ToStateJson(Valid());
  j.erase("memory_mb");
  EXPECT_FALSE(FromStateJson(j));
  j = ToStateJson(Valid());
  j["name"] = "../../etc";
  EXPECT_FALSE(FromStateJson(j));
  EXPECT_FALSE(FromStateJson(json::array()));
}

TEST(ApplyLambdaChangesTest, AppliesPresentFieldsOnly) {
  auto base = Valid();
  base.environment = {{"OLD", "1"}};
  auto c = ApplyLambdaChanges(base, json{{"MemorySize", 512}, {"Timeout", 60},
                                         {"Environment", {{"Variables", {{"NEW", "2"}}}}},
                                         {"FunctionName", "ignored"}, {"Layers", json::array()}});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->memory_mb, 512u);
  EXPECT_EQ(c->timeout_s, 60u);
  EXPECT_EQ(c->environment, (std::map<std::string, std::string>{{"NEW", "2"}}));
  EXPECT_EQ(c->handler, "app.handler");
  EXPECT_EQ(c->name, "hello");

  auto cleared = ApplyLambdaChanges(base, json{{"Environment", json::object()}});
  ASSERT_TRUE(cleared);
  EXPECT_TRUE(cleared->environment.empty());
}

TEST(ApplyLambdaChangesTest, RejectsWrongTypesAndOutOfRangeIntegers) {
  auto base = Valid();
  EXPECT_FALSE(ApplyLambdaChanges(base, json{{"MemorySize", "512"}}));
  EXPECT_FALSE(ApplyLambdaChanges(base, json{{"MemorySize", 512.5}}));
  EXPECT_FALSE(ApplyLambdaChanges(base, json{{"Handler", 3}}));
  EXPECT_FALSE(ApplyLambdaChanges(base, json{{"Environment", {{"Variables", {{"A1", 1}}}}}}));
  auto neg = ApplyLambdaChanges(base, json{{"Timeout", -5}});
  ASSERT_FALSE(neg);
  EXPECT_NE(neg.error().message.find("Value '-5' at 'timeout'"), std::string::npos);
  auto huge = ApplyLambdaChanges(base, json{{"MemorySize", 4294967424ull}});  // 2^32 + 128
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message.find("less than or equal to 10240"), std::string::npos);
  EXPECT_FALSE(ApplyLambdaChanges(base, json::array()));
}

TEST(ApplyLambdaChangesTest, EphemeralStorageIsTheSizeOfTmpAndPersisted) {
  auto c = ApplyLambdaChanges(Valid(), json{{"EphemeralStorage", {{"Size", 1024}}}});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->ephemeral_storage_mb, 1024u);
  EXPECT_EQ(ToLambdaJson(*c)["EphemeralStorage"]["Size"], 1024);
  EXPECT_EQ(FromStateJson(ToStateJson(*c))->ephemeral_storage_mb, 1024u);
  EXPECT_EQ(ApplyLambdaChanges(*c, json{{"Timeout", 9}})->ephemeral_storage_mb, 1024u) << "kept";
  for (int64_t bad : {0, 511, 10241, 100000}) {
    auto r = ApplyLambdaChanges(Valid(), json{{"EphemeralStorage", {{"Size", bad}}}});
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("at 'ephemeralStorage.size'"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(ApplyLambdaChanges(Valid(), json{{"EphemeralStorage", {{"Size", "1024"}}}}));
  json old = ToStateJson(Valid());
  old.erase("ephemeral_storage_mb");
  EXPECT_EQ(FromStateJson(old)->ephemeral_storage_mb, 512u) << "state written before the field";
}

TEST(FunctionChangesTest, DeadLetterTargetsAreRefusedNeverStored) {
  // An SQS queue or SNS topic: refused, naming where dead letters do go.
  for (const char* arn : {"arn:aws:sqs:us-east-1:000000000000:dlq", "arn:aws:sns:us-east-1:000000000000:t"}) {
    auto r = ApplyLambdaChanges(Valid(), json{{"DeadLetterConfig", {{"TargetArn", arn}}}});
    ASSERT_FALSE(r) << arn;
    EXPECT_EQ(r.error().op, "InvalidParameterValueException");
    EXPECT_NE(r.error().message.find("no SQS or SNS"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("dead-letter store"), std::string::npos) << r.error().message;
  }
  // Not an ARN: Lambda's validation message.
  auto bad = ApplyLambdaChanges(Valid(), json{{"DeadLetterConfig", {{"TargetArn", "queue"}}}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'deadLetterConfig.targetArn'"), std::string::npos) << bad.error().message;
  // None (how a DLQ is removed): taken.
  EXPECT_TRUE(ApplyLambdaChanges(Valid(), json{{"DeadLetterConfig", {{"TargetArn", ""}}}}));
  EXPECT_TRUE(ApplyLambdaChanges(Valid(), json{{"DeadLetterConfig", json::object()}}));
  EXPECT_FALSE(ApplyLambdaChanges(Valid(), json{{"DeadLetterConfig", "x"}}));
}

}  // namespace
}  // namespace forklet::registry
