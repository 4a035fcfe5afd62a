// The nodejs runtime through the real aws CLI: the async and callback forms, Lambda's context and
// error shapes, init errors, limits, start kinds (cold, pre-booted stem cell, warm) and what a
// stem cell may never carry from one function into another.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

// Until the nodejs stem-cell pool is full (it starts with the first Node function and refills in
// the background after each start); at once when the daemon keeps none.
bool WaitForStemCells(Daemon& d) {
  for (int i = 0; i < 300; ++i) {
    auto h = Health(d);
    if (!h.is_object()) return false;
    if (!h.contains("stem_cells") || !h["stem_cells"].contains("nodejs")) return true;
    const auto& s = h["stem_cells"]["nodejs"];
    if (s["ready"] >= s["target"]) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Deploys tests/functions/DIR as FN on nodejs20.x (handler index.handler unless extra says), then
// waits for the stem cells the first Node function starts.
CmdResult DeployNode(Daemon& d, const std::string& fn, const std::string& dir,
                     const std::vector<std::string>& extra = {}) {
  std::string zip = ZipFunction(dir);
  std::vector<std::string> args = {"create-function", "--function-name", fn, "--runtime", "nodejs20.x",
                                   "--handler", "index.handler", "--zip-file", "fileb://" + zip,
                                   "--role", "arn:aws:iam::000000000000:role/x"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = d.Aws(args);
  unlink(zip.c_str());
  if (r.exit_code == 0 && !WaitForStemCells(d)) r.err += "\n(the stem cells did not boot)";
  return r;
}

struct Invoked {
  CmdResult cli;
  json out;       // the CLI's JSON: StatusCode, FunctionError, LogResult
  json body;      // the function's response
  std::string log;
  std::string kind;  // the start kind in REPORT
};

Invoked InvokeNode(Daemon& d, const std::string& fn, const std::string& payload = "{}") {
  Invoked r;
  std::string body;
  r.cli = Invoke(d, fn, payload, &body, {"--log-type", "Tail"});
  r.out = json::parse(r.cli.out, nullptr, false);
  r.body = json::parse(body, nullptr, false);
  if (r.out.is_object() && r.out.contains("LogResult")) r.log = Base64Decode(r.out["LogResult"]);
  auto pos = r.log.find("Start Kind: ");
  if (pos != std::string::npos) r.kind = r.log.substr(pos + 12, r.log.find('\t', pos) - pos - 12);
  return r;
}

class NodejsTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(NodejsTest, AsyncHandlerGetsEventContextAndEnvironment) {
  auto c = DeployNode(*daemon_, "hello-js", "node-hello",
                      {"--memory-size", "256", "--timeout", "5", "--environment", "Variables={GREETING=hi}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(json::parse(c.out)["Runtime"], "nodejs20.x");
  auto i = InvokeNode(*daemon_, "hello-js", R"({"name": "node", "list": [1, 2]})");
  ASSERT_EQ(i.cli.exit_code, 0) << i.cli.err;
  EXPECT_EQ(i.out["StatusCode"], 200);
  EXPECT_FALSE(i.out.contains("FunctionError")) << i.body;
  const auto& b = i.body;
  EXPECT_EQ(b["hello"], "node");
  EXPECT_EQ(b["event"]["list"], json({1, 2}));
  EXPECT_EQ(b["function_name"], "hello-js");
  EXPECT_EQ(b["memory_limit_in_mb"], "256");
  EXPECT_EQ(b["arn"], "arn:aws:lambda:us-east-1:000000000000:function:hello-js");
  EXPECT_EQ(b["request_id"].get<std::string>().size(), 36u);
  EXPECT_EQ(b["log_group"], "/aws/lambda/hello-js");
  EXPECT_GT(b["remaining_ms"].get<int>(), 3000);
  EXPECT_LE(b["remaining_ms"].get<int>(), 5000);
  EXPECT_EQ(b["waits_for_empty_loop"], true);
  EXPECT_EQ(b["env_greeting"], "hi");
  EXPECT_EQ(b["env_handler"], "index.handler");
  EXPECT_EQ(b["task_root"], "/var/task");
  EXPECT_EQ(b["cwd"], "/var/task");
  EXPECT_EQ(b["dirname"], "/var/task");
  EXPECT_EQ(b["node"].get<std::string>().rfind("v20.", 0), 0u) << b["node"];
  // console.log in Lambda's line format, between START and REPORT.
  EXPECT_NE(i.log.find("START RequestId: "), std::string::npos) << i.log;
  EXPECT_NE(i.log.find("\t" + b["request_id"].get<std::string>() + "\tINFO\thello called with {\"name\":\"node\""),
            std::string::npos)
      << i.log;
  EXPECT_NE(i.log.find("REPORT RequestId: "), std::string::npos) << i.log;
  // State stays in a warm instance.
  auto again = InvokeNode(*daemon_, "hello-js");
  EXPECT_EQ(again.kind, "warm");
  EXPECT_EQ(again.body["calls"], 2);
}

TEST_F(NodejsTest, CallbackFormWaitsForTheEmptyEventLoopUnlessToldNot) {
  ASSERT_EQ(DeployNode(*daemon_, "cb", "node-callback").exit_code, 0);
  // The first call's timer fires before its response goes out (callbackWaitsForEmptyEventLoop).
  EXPECT_EQ(InvokeNode(*daemon_, "cb").body, json({{"form", "callback"}, {"fired_before", 0}}));
  EXPECT_EQ(InvokeNode(*daemon_, "cb").body["fired_before"], 1);
  // Without waiting, the response goes out at once and the instance is frozen with the timer
  // pending: the next call still sees it unfired.
  EXPECT_EQ(InvokeNode(*daemon_, "cb", R"({"no_wait": true})").body["fired_before"], 2);
  EXPECT_EQ(InvokeNode(*daemon_, "cb", R"({"no_wait": true})").body["fired_before"], 2);

  auto e = InvokeNode(*daemon_, "cb", R"({"fail": true})");
  EXPECT_EQ(e.out["FunctionError"], "Unhandled");
  EXPECT_EQ(e.body["errorType"], "TypeError");
  EXPECT_EQ(e.body["errorMessage"], "callback failure");
  auto s = InvokeNode(*daemon_, "cb", R"({"string_error": true})");
  EXPECT_EQ(s.out["FunctionError"], "Unhandled");
  EXPECT_EQ(s.body, json({{"errorType", "string"}, {"errorMessage", "plain string error"}, {"trace", json::array()}}));
}

TEST_F(NodejsTest, EsModuleWithTopLevelAwait) {
  ASSERT_EQ(DeployNode(*daemon_, "esm", "node-esm").exit_code, 0);
  auto i = InvokeNode(*daemon_, "esm", R"({"k": "v"})");
  ASSERT_EQ(i.cli.exit_code, 0) << i.cli.err;
  EXPECT_EQ(i.body, json({{"module", "esm"}, {"echo", {{"k", "v"}}}})) << i.log;
}

TEST_F(NodejsTest, FunctionErrorsHaveLambdasNodeShape) {
  ASSERT_EQ(DeployNode(*daemon_, "fail-js", "node-fail").exit_code, 0);
  auto i = InvokeNode(*daemon_, "fail-js", R"({"why": "testing"})");
  ASSERT_EQ(i.cli.exit_code, 0) << i.cli.err;
  EXPECT_EQ(i.out["FunctionError"], "Unhandled");
  EXPECT_EQ(i.body["errorType"], "CustomError");
  EXPECT_EQ(i.body["errorMessage"], "something went wrong: testing");
  ASSERT_TRUE(i.body["trace"].is_array()) << i.body;
  EXPECT_EQ(i.body["trace"][0], "CustomError: something went wrong: testing");
  EXPECT_NE(i.body.dump().find("/var/task/index.js"), std::string::npos) << i.body;
  EXPECT_NE(i.log.find("\tERROR\tInvoke Error"), std::string::npos) << i.log;
  // The instance survives and serves the next ones warm.
  auto r = InvokeNode(*daemon_, "fail-js", R"({"reject_string": true})");
  EXPECT_EQ(r.kind, "warm");
  EXPECT_EQ(r.body["errorType"], "string");
  EXPECT_EQ(r.body["errorMessage"], "rejected with a string");
  auto u = InvokeNode(*daemon_, "fail-js", R"({"uncaught": true})");
  EXPECT_EQ(u.kind, "warm");
  EXPECT_EQ(u.out["FunctionError"], "Unhandled");
  EXPECT_EQ(u.body["errorType"], "RangeError");
  EXPECT_EQ(u.body["errorMessage"], "thrown from a timer");
}

TEST_F(NodejsTest, InitErrorsNameTheCause) {
  ASSERT_EQ(DeployNode(*daemon_, "syntax", "node-syntax").exit_code, 0);
  auto s = InvokeNode(*daemon_, "syntax");
  ASSERT_EQ(s.cli.exit_code, 0) << s.cli.err;
  EXPECT_EQ(s.out["FunctionError"], "Unhandled");
  EXPECT_EQ(s.body["errorType"], "Runtime.UserCodeSyntaxError") << s.body;
  EXPECT_EQ(s.body["errorMessage"].get<std::string>().rfind("SyntaxError: ", 0), 0u) << s.body;

  ASSERT_EQ(DeployNode(*daemon_, "nohandler", "node-hello", {"--handler", "index.nothing_here"}).exit_code, 0);
  auto h = InvokeNode(*daemon_, "nohandler");
  EXPECT_EQ(h.body["errorType"], "Runtime.HandlerNotFound") << h.body;
  EXPECT_EQ(h.body["errorMessage"], "index.nothing_here is undefined or not exported");

  ASSERT_EQ(DeployNode(*daemon_, "nomodule", "node-hello", {"--handler", "missing.handler"}).exit_code, 0);
  auto m = InvokeNode(*daemon_, "nomodule");
  EXPECT_EQ(m.body["errorType"], "Runtime.ImportModuleError") << m.body;
  EXPECT_NE(m.body["errorMessage"].get<std::string>().find("Cannot find module 'missing'"), std::string::npos)
      << m.body;
}

TEST_F(NodejsTest, TimeoutEndsTheInvocationAndTheNextOneStartsFresh) {
  ASSERT_EQ(DeployNode(*daemon_, "sleepy", "node-sleep", {"--timeout", "1"}).exit_code, 0);
  auto t = InvokeNode(*daemon_, "sleepy", R"({"ms": 5000})");
  ASSERT_EQ(t.cli.exit_code, 0) << t.cli.err;
  EXPECT_EQ(t.out["FunctionError"], "Unhandled");
  EXPECT_EQ(t.body["errorMessage"], "Task timed out after 1.00 seconds") << t.body;
  auto ok = InvokeNode(*daemon_, "sleepy", R"({"ms": 10})");
  EXPECT_EQ(ok.body["slept_ms"], 10) << ok.body;
  EXPECT_NE(ok.kind, "warm");
}

TEST_F(NodejsTest, MemoryLimitEndsTheInvocationWithOutOfMemory) {
  ASSERT_EQ(DeployNode(*daemon_, "hog", "node-oom", {"--memory-size", "128"}).exit_code, 0);
  auto o = InvokeNode(*daemon_, "hog", R"({"mb": 512})");
  ASSERT_EQ(o.cli.exit_code, 0) << o.cli.err;
  EXPECT_EQ(o.out["FunctionError"], "Unhandled");
  EXPECT_EQ(o.body["errorType"], "Runtime.OutOfMemory") << o.body;
  // Within the limit it runs.
  auto fine = InvokeNode(*daemon_, "hog", R"({"mb": 16})");
  EXPECT_EQ(fine.body["allocated_mb"], 16) << fine.body;
}

TEST_F(NodejsTest, StartKindsPreBootedWarmAndColdOnDemand) {
  ASSERT_EQ(DeployNode(*daemon_, "kinds", "node-hello").exit_code, 0);
  auto first = InvokeNode(*daemon_, "kinds");
  EXPECT_EQ(first.kind, "zygote") << first.log;  // a stem cell, booted with the daemon
  EXPECT_NE(first.log.find("mount_code="), std::string::npos) << first.log;
  EXPECT_EQ(first.log.find("runtime_boot="), std::string::npos) << first.log;  // not on its path
  EXPECT_EQ(InvokeNode(*daemon_, "kinds").kind, "warm");
  ASSERT_EQ(daemon_->Cli({"drop-instances", "kinds"}).exit_code, 0);
  ASSERT_TRUE(WaitForStemCells(*daemon_));
  EXPECT_EQ(InvokeNode(*daemon_, "kinds").kind, "zygote");
  ASSERT_EQ(daemon_->Cli({"drop-instances", "kinds"}).exit_code, 0);
  ASSERT_EQ(daemon_->Cli({"drop-zygote", "nodejs20.x"}).exit_code, 0);
  auto cold = InvokeNode(*daemon_, "kinds");
  EXPECT_EQ(cold.kind, "cold") << cold.log;
  EXPECT_NE(cold.log.find("runtime_boot="), std::string::npos) << cold.log;  // Node booted for it
  EXPECT_EQ(cold.body["calls"], 1);
  EXPECT_EQ(InvokeNode(*daemon_, "kinds").kind, "warm");
  // After a cold start the pool fills again.
  EXPECT_TRUE(WaitForStemCells(*daemon_));
}

TEST_F(NodejsTest, SandboxedLikeEveryInstance) {
  ASSERT_EQ(DeployNode(*daemon_, "probe-js", "node-probe").exit_code, 0);
  auto p = InvokeNode(*daemon_, "probe-js").body;
  ASSERT_FALSE(p.contains("errorType")) << p;
  EXPECT_GE(p["uid"].get<int>(), 100000);
  EXPECT_NE(p["gid"], 0);
  EXPECT_EQ(p["CapEff"], "0000000000000000");
  EXPECT_EQ(p["CapBnd"], "0000000000000000");
  EXPECT_EQ(p["NoNewPrivs"], "1");
  EXPECT_EQ(p["Seccomp"], "2");
  EXPECT_EQ(p["pids_visible"], json({1}));
  EXPECT_EQ(p["write_var_task"], false);
  EXPECT_EQ(p["write_runtime"], false);
  EXPECT_EQ(p["write_tmp"], true);
  EXPECT_EQ(p["var_task"], json({"index.js"}));
}

TEST_F(NodejsTest, AStemCellServesOneFunctionOnlyAndCarriesNothingOver) {
  ASSERT_EQ(DeployNode(*daemon_, "tenant-a", "node-probe").exit_code, 0);
  ASSERT_EQ(DeployNode(*daemon_, "tenant-b", "node-hello", {"--handler", "index.handler"}).exit_code, 0);
  ASSERT_EQ(DeployNode(*daemon_, "tenant-c", "node-probe").exit_code, 0);
  auto a = InvokeNode(*daemon_, "tenant-a");
  ASSERT_EQ(a.kind, "zygote") << a.log;
  EXPECT_EQ(a.body["tmp_files"], json({"marker-tenant-a", "owned"}));
  auto pids_a = Health(*daemon_)["instances"]["idle_pids"];
  ASSERT_EQ(pids_a.size(), 1u);
  // B and C get fresh stem cells, never A's instance (A's stays idle and warm for A).
  ASSERT_TRUE(WaitForStemCells(*daemon_));
  EXPECT_EQ(InvokeNode(*daemon_, "tenant-b").kind, "zygote");
  ASSERT_TRUE(WaitForStemCells(*daemon_));
  auto c = InvokeNode(*daemon_, "tenant-c");
  ASSERT_EQ(c.kind, "zygote") << c.log;
  EXPECT_EQ(c.body["tmp_files"], json({"marker-tenant-c", "owned"}));  // nothing of A's /tmp
  EXPECT_EQ(c.body["var_task"], json({"index.js"}));
  auto pids = Health(*daemon_)["instances"]["idle_pids"];
  EXPECT_EQ(pids.size(), 3u) << pids;
  EXPECT_EQ(InvokeNode(*daemon_, "tenant-a").kind, "warm");
  EXPECT_EQ(Health(*daemon_)["instances"]["idle_pids"].size(), 3u);
}

TEST_F(NodejsTest, StemCellsYieldToTheMemoryBudget) {
  // A 256 MB budget: one stem cell (128 MB while standing by) until a 256 MB instance needs it all.
  daemon_.reset();
  daemon_ = Daemon::Start({"--memory-budget-mb", "256"});
  ASSERT_EQ(DeployNode(*daemon_, "big", "node-hello", {"--memory-size", "256"}).exit_code, 0);
  auto i = InvokeNode(*daemon_, "big");
  EXPECT_EQ(i.kind, "zygote") << i.log;
  EXPECT_EQ(i.body["memory_limit_in_mb"], "256");
  // While the instance holds the whole budget no stem cell boots.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto h = Health(*daemon_);
  EXPECT_EQ(h["stem_cells"]["nodejs"]["ready"], 0) << h;
  EXPECT_EQ(h["stem_cells"]["nodejs"]["booting"], 0) << h;
  // Once it goes, the pool fills again.
  ASSERT_EQ(daemon_->Cli({"drop-instances", "big"}).exit_code, 0);
  EXPECT_TRUE(WaitForStemCells(*daemon_));
}

TEST_F(NodejsTest, NoNodeRunsUntilANodeFunctionIsDeployedAndItsStemCellsComeBackAfterARestart) {
  EXPECT_FALSE(Health(*daemon_)["stem_cells"].contains("nodejs"));
  ASSERT_EQ(Deploy(*daemon_, "py", "hello").exit_code, 0);  // Python only: still none
  EXPECT_FALSE(Health(*daemon_)["stem_cells"].contains("nodejs"));
  ASSERT_EQ(DeployNode(*daemon_, "js", "node-hello").exit_code, 0);
  EXPECT_EQ(Health(*daemon_)["stem_cells"]["nodejs"]["ready"], 1);
  std::string state = daemon_->state_dir() + "-kept";
  daemon_.reset();
  {
    auto d = Daemon::Start({}, state);
    ASSERT_EQ(DeployNode(*d, "js", "node-hello").exit_code, 0);
  }
  auto d = Daemon::Start({}, state);  // finds a Node function: boots its stem cells
  EXPECT_TRUE(WaitForStemCells(*d));
  EXPECT_EQ(Health(*d)["stem_cells"]["nodejs"]["ready"], 1);
  EXPECT_EQ(InvokeNode(*d, "js").kind, "zygote");
  d.reset();
  std::filesystem::remove_all(state);
}

TEST(NodejsWithoutStemCells, EveryNewInstanceIsCold) {
  auto d = Daemon::Start({"--node-stem-cells", "0"});
  ASSERT_EQ(DeployNode(*d, "plain", "node-hello").exit_code, 0);
  auto i = InvokeNode(*d, "plain");
  EXPECT_EQ(i.kind, "cold") << i.log;
  EXPECT_EQ(i.body["hello"], "world");
  EXPECT_EQ(InvokeNode(*d, "plain").kind, "warm");
}

}  // namespace
}  // namespace forklet::testing
