// The provided runtime through the real aws CLI: a bootstrap in the code bundle speaking the
// Lambda Runtime API. tests/functions/provided-bash is AWS's custom-runtime tutorial, unmodified
// (links to tools/examples/provided-bash, plus handler scripts of its shape); tests/functions/provided-api drives the API's edges.
// Start kinds and isolation: runtimes_test.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kBash = std::string(TEST_FUNCTIONS_DIR) + "/provided-bash";
const std::string kApi = std::string(TEST_FUNCTIONS_DIR) + "/provided-api";

class ProvidedTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  void TearDown() override {
    for (const auto& d : temp_dirs_) fs::remove_all(d);
  }
  CmdResult Deploy(const std::string& fn, const std::string& dir, const std::string& handler,
                   const std::vector<std::string>& extra = {}) {
    return DeployDir(*daemon_, fn, dir, "provided.al2023", handler, extra);
  }
  json InvokeFn(const std::string& fn, const std::string& payload, std::string* body,
                std::string* log = nullptr) {
    return InvokeWithLog(*daemon_, fn, payload, body, log);
  }
  // A function directory made here: files with their modes.
  std::string MakeDir(const std::map<std::string, std::pair<std::string, fs::perms>>& files) {
    std::string dir = fs::temp_directory_path() / ("forklet-provided-" + std::to_string(getpid()) + "-" +
                                                   std::to_string(temp_dirs_.size()));
    fs::create_directories(dir);
    temp_dirs_.push_back(dir);
    for (const auto& [name, file] : files) {
      std::ofstream(dir + "/" + name) << file.first;
      fs::permissions(dir + "/" + name, file.second);
    }
    return dir;
  }
  std::unique_ptr<Daemon> daemon_;
  std::vector<std::string> temp_dirs_;
};

TEST_F(ProvidedTest, TheTutorialsBashBootstrapRunsUnmodified) {
  // As the tutorial creates it: --runtime provided --handler function.handler.
  auto c = DeployDir(*daemon_, "bash-runtime", kBash, "provided", "function.handler");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string body, log;
  auto out = InvokeFn("bash-runtime", R"({"text":"Hello"})", &body, &log);
  EXPECT_EQ(out["StatusCode"], 200);
  EXPECT_FALSE(out.contains("FunctionError")) << out << log;
  EXPECT_EQ(body, R"(Echoing request: '{"text":"Hello"}')") << log;
  // The handler's stderr is the function's log.
  EXPECT_NE(log.find("{\"text\":\"Hello\"}\n"), std::string::npos) << log;
  EXPECT_NE(log.find("REPORT RequestId: " + RequestIdIn(log)), std::string::npos) << log;
  EXPECT_NE(log.find("Init Duration"), std::string::npos) << log;
  out = InvokeFn("bash-runtime", R"({"text":"again"})", &body, &log);
  EXPECT_EQ(body, R"(Echoing request: '{"text":"again"}')") << log;
  EXPECT_EQ(StartKindIn(log), "warm");
}

TEST_F(ProvidedTest, NextGivesTheEventWithLambdasHeadersAndEnvironment) {
  ASSERT_EQ(Deploy("echo", kApi, "api.echo", {"--timeout", "7", "--environment", "Variables={GREETING=hi}"})
                .exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("echo", R"({"x": [1, 2, 3]})", &body, &log);
  EXPECT_FALSE(out.contains("FunctionError")) << body << log;
  auto r = json::parse(body);
  EXPECT_EQ(r["event"]["x"], json({1, 2, 3}));
  EXPECT_EQ(r["request_id"], RequestIdIn(log));
  const json& h = r["headers"];
  EXPECT_EQ(h["Lambda-Runtime-Aws-Request-Id"], RequestIdIn(log));
  EXPECT_EQ(h["Lambda-Runtime-Invoked-Function-Arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo");
  EXPECT_EQ(h["Lambda-Runtime-Trace-Id"].get<std::string>().rfind("Root=1-", 0), 0u) << h;
  int64_t deadline = std::stoll(h["Lambda-Runtime-Deadline-Ms"].get<std::string>());
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(deadline, now + 4000);
  EXPECT_LE(deadline, now + 7000);
  EXPECT_EQ(r["env"]["_HANDLER"], "api.echo");
  EXPECT_EQ(r["env"]["LAMBDA_TASK_ROOT"], "/var/task");
  EXPECT_EQ(r["env"]["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
  EXPECT_EQ(r["env"]["AWS_LAMBDA_FUNCTION_NAME"], "echo");
  EXPECT_EQ(r["env"]["GREETING"], "hi");
  EXPECT_EQ(r["cwd"], "/var/task");
  EXPECT_EQ(r["pid"], 2);  // pid 1 is the Runtime API server, which ends the instance with it
  EXPECT_NE(log.find("echo called with"), std::string::npos) << log;
  // The same keep-alive connection serves the next invocation; a chunked response is read.
  int port = r["local_port"];
  InvokeFn("echo", R"({"chunked": true})", &body, &log);
  r = json::parse(body);
  EXPECT_EQ(r["calls"], 2);
  EXPECT_EQ(r["local_port"], port);
  EXPECT_EQ(r["event"]["chunked"], true);
}

TEST_F(ProvidedTest, ErrorsKeepTheRuntimesTypeAndMessage) {
  ASSERT_EQ(Deploy("err", kApi, "api.error").exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("err", "{}", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  auto e = json::parse(body);
  EXPECT_EQ(e["errorType"], "CustomError");
  EXPECT_EQ(e["errorMessage"], "something went wrong");
  EXPECT_EQ(e["stackTrace"], json({"bootstrap line 1", "bootstrap line 2"}));
  // Without a JSON payload, the Lambda-Runtime-Function-Error-Type header names it.
  out = InvokeFn("err", R"({"header_only": true})", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  e = json::parse(body);
  EXPECT_EQ(e["errorType"], "HeaderType");
  EXPECT_EQ(e["errorMessage"], "not json");
  EXPECT_EQ(StartKindIn(log), "warm");  // an error leaves the runtime running
}

TEST_F(ProvidedTest, WrongIdsPathsMethodsAndStatesAreRefused) {
  ASSERT_EQ(Deploy("edges", kApi, "api.edges").exit_code, 0);
  std::string body;
  auto out = InvokeFn("edges", "{}", &body);
  EXPECT_FALSE(out.contains("FunctionError")) << body;
  auto r = json::parse(body);
  EXPECT_EQ(r["codes"]["wrong_id"], 400);
  EXPECT_EQ(r["wrong_id"]["errorType"], "InvalidRequestID");
  EXPECT_EQ(r["codes"]["unknown_path"], 404);
  EXPECT_EQ(r["codes"]["wrong_method"], 405);
  EXPECT_EQ(r["codes"]["next_again"], 403);
  EXPECT_EQ(r["codes"]["late_init_error"], 403);
}

TEST_F(ProvidedTest, InitErrors) {
  ASSERT_EQ(Deploy("initerr", kApi, "api.init_error").exit_code, 0);
  ASSERT_EQ(Deploy("initexit", kApi, "api.exit_in_init").exit_code, 0);
  std::string missing = MakeDir({{"function.sh", {"function handler () { echo 1; }\n", fs::perms(0755)}}});
  std::string noexec = MakeDir({{"bootstrap", {"#!/bin/sh\necho never\n", fs::perms(0644)}}});
  ASSERT_EQ(Deploy("missing", missing, "function.handler").exit_code, 0);
  ASSERT_EQ(Deploy("noexec", noexec, "function.handler").exit_code, 0);
  std::string body, log;
  using Error = std::pair<std::string, std::string>;  // errorType, errorMessage
  auto error = [&](const std::string& fn) {
    auto out = InvokeFn(fn, "{}", &body, &log);
    EXPECT_EQ(out["FunctionError"], "Unhandled") << fn;
    auto e = json::parse(body, nullptr, false);
    return e.is_object() ? Error{e.value("errorType", ""), e.value("errorMessage", "")} : Error{};
  };
  EXPECT_EQ(error("initerr"), Error("InitFailure", "cannot start"));
  EXPECT_NE(log.find("reporting an init error"), std::string::npos) << log;
  EXPECT_EQ(error("initexit"), Error("Runtime.ExitError", "Runtime exited with error: exit status 3"));
  EXPECT_NE(log.find("exiting during init"), std::string::npos) << log;
  EXPECT_EQ(error("missing"), Error("Runtime.InvalidEntrypoint",
                                    "Couldn't find valid bootstrap(s): [/var/task/bootstrap]"));
  EXPECT_EQ(error("noexec"), Error("Runtime.InvalidEntrypoint",
                                   "fork/exec /var/task/bootstrap: permission denied"));
}

TEST_F(ProvidedTest, ABootstrapThatExitsEndsItsInstance) {
  ASSERT_EQ(Deploy("dies", kApi, "api.exit_in_invoke").exit_code, 0);
  ASSERT_EQ(DeployDir(*daemon_, "bashfail", kBash, "provided", "fail.handler").exit_code, 0);
  ASSERT_EQ(Deploy("oneshot", kApi, "api.exit_after_response").exit_code, 0);
  ASSERT_EQ(Deploy("hasty", kApi, "api.post_and_exit").exit_code, 0);
  std::string body, log;
  for (int i = 0; i < 2; ++i) {
    auto out = InvokeFn("dies", "{}", &body, &log);
    EXPECT_EQ(out["FunctionError"], "Unhandled");
    auto e = json::parse(body);
    EXPECT_EQ(e["errorType"], "Runtime.ExitError");
    EXPECT_EQ(e["errorMessage"], "RequestId: " + RequestIdIn(log) + " Error: Runtime exited with error: exit status 4");
    EXPECT_NE(StartKindIn(log), "warm");
  }
  // The tutorial's bootstrap under `set -e`: a failing handler ends it.
  auto out = InvokeFn("bashfail", "{}", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorMessage"],
            "RequestId: " + RequestIdIn(log) + " Error: Runtime exited with error: exit status 3");
  EXPECT_NE(log.find("failing on purpose"), std::string::npos) << log;
  // A runtime that exits after its response (or right after sending it): the response stands;
  // the next call gets a new instance.
  for (const char* fn : {"oneshot", "oneshot", "hasty", "hasty"}) {
    out = InvokeFn(fn, "{}", &body, &log);
    EXPECT_FALSE(out.contains("FunctionError")) << fn << ": " << body;
    EXPECT_EQ(json::parse(body, nullptr, false).value("calls", 0), 1) << fn << ": " << body;
    EXPECT_NE(StartKindIn(log), "warm") << fn;
  }
  EXPECT_TRUE(daemon_->Alive());
}

TEST_F(ProvidedTest, TimeoutEndsTheInvocation) {
  ASSERT_EQ(DeployDir(*daemon_, "sleepy", kBash, "provided", "sleep.handler", {"--timeout", "1"}).exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("sleepy", R"({"seconds": 30})", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorMessage"], "Task timed out after 1.00 seconds") << body;
  EXPECT_NE(log.find("Billed Duration: 1000 ms"), std::string::npos) << log;
  // Within its time the same function answers.
  InvokeFn("sleepy", R"({"seconds": 0})", &body, &log);
  EXPECT_EQ(body, "\"slept\"");
}

TEST_F(ProvidedTest, MemoryLimitEndsTheInvocationWithOutOfMemory) {
  // Filling 128 MB through bash's pipes takes seconds of CPU on a 128 MB function's quota (a
  // quarter of a core): a timeout far enough not to come first.
  ASSERT_EQ(DeployDir(*daemon_, "bashhog", kBash, "provided", "oom.handler",
                      {"--memory-size", "128", "--timeout", "20"}).exit_code, 0);
  ASSERT_EQ(Deploy("pyhog", kApi, "api.oom", {"--memory-size", "128", "--timeout", "20"}).exit_code, 0);
  std::string body;
  for (const char* fn : {"bashhog", "pyhog"}) {
    auto out = InvokeFn(fn, R"({"mb": 400})", &body);
    EXPECT_EQ(out["FunctionError"], "Unhandled") << fn;
    EXPECT_EQ(json::parse(body)["errorType"], "Runtime.OutOfMemory") << fn << ": " << body;
  }
  InvokeFn("pyhog", R"({"mb": 8})", &body);
  EXPECT_EQ(json::parse(body)["held_mb"], 8) << body;
}

TEST_F(ProvidedTest, ResponsesUpToSixMegabytesAndNoMore) {
  ASSERT_EQ(Deploy("big", kApi, "api.big", {"--memory-size", "512"}).exit_code, 0);
  std::string body, log;
  auto out = InvokeFn("big", R"({"bytes": 5000000})", &body, &log);
  EXPECT_FALSE(out.contains("FunctionError")) << body.substr(0, 200) << log;
  EXPECT_EQ(body.size(), 5000002u);
  out = InvokeFn("big", R"({"bytes": 7000000})", &body, &log);
  EXPECT_EQ(out["FunctionError"], "Unhandled");
  EXPECT_EQ(json::parse(body)["errorType"], "Function.ResponseSizeTooLarge") << body.substr(0, 200);
  // The runtime carried on: curl was refused with 413.
  out = InvokeFn("big", R"({"report": true})", &body, &log);
  EXPECT_EQ(json::parse(body)["previous_curl"], "413") << body;
  EXPECT_EQ(StartKindIn(log), "warm");
}

}  // namespace
}  // namespace forklet::testing
