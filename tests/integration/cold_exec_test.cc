// Python's cold start (lang-runners/python/python_mode.cc, Launcher::ForkSource): when no zygote
// is ready for a function, its new instance execs a fresh interpreter inside its sandbox, and the
// function's own zygote boots once that start is done. What a user notices: the start is cold and
// says where its time went (runtime_boot), the sandbox is the one a zygote start gets, and the
// function's next new instance forks from its own zygote again.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {

using nlohmann::json;

struct Answer {
  int status = 0;
  std::string kind, stages;
  json body;
};

Answer InvokeFresh(Daemon& d, const std::string& fn, const json& event) {
  auto r = api::HttpCall(d.endpoint(), "POST", "/2015-03-31/functions/" + fn + "/invocations", event.dump(),
                         {{"X-Forklet-Fresh-Instance", "1"}});
  if (!r) throw std::runtime_error("invoke " + fn + ": " + r.error().ToString());
  Answer a;
  a.status = r->status;
  if (auto it = r->headers.find("x-forklet-start-kind"); it != r->headers.end()) a.kind = it->second;
  if (auto it = r->headers.find("x-forklet-stages"); it != r->headers.end()) a.stages = " " + it->second;
  a.body = json::parse(r->body, nullptr, false);
  return a;
}

bool HasStage(const Answer& a, const std::string& name) { return a.stages.find(" " + name + "=") != std::string::npos; }

// Pids of the zygotes bound to fn, from health.
std::vector<int> ZygotesOf(Daemon& d, const std::string& fn) {
  std::vector<int> pids;
  const json health = Health(d);
  for (const auto& z : health["zygotes"])
    if (z.value("function", "") == fn) pids.push_back(z["pid"]);
  return pids;
}

std::vector<int> AwaitZygotesOf(Daemon& d, const std::string& fn) {
  std::vector<int> pids;
  for (int i = 0; i < 100 && pids.empty(); ++i) {
    pids = ZygotesOf(d, fn);
    if (pids.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pids;
}

TEST(ColdExec, AColdPythonInstanceBootsInTheSameSandboxAndItsZygoteFollows) {
  auto d = Daemon::Start({"--preforked", "0"});
  ASSERT_EQ(Deploy(*d, "probe", "probe").exit_code, 0);
  const int port = std::stoi(d->endpoint().substr(d->endpoint().rfind(':') + 1));
  const json event{{"state_dir", d->state_dir()}, {"daemon_port", port}};

  Answer zygote = InvokeFresh(*d, "probe", event);  // binds the spare booted at the daemon's start
  ASSERT_EQ(zygote.status, 200) << zygote.body.dump();
  ASSERT_EQ(zygote.kind, "zygote");
  ASSERT_FALSE(zygote.body.contains("errorType")) << zygote.body.dump();

  ASSERT_EQ(d->Cli({"drop-zygote", "python3"}).exit_code, 0);
  ASSERT_TRUE(ZygotesOf(*d, "probe").empty());
  Answer cold = InvokeFresh(*d, "probe", event);
  ASSERT_EQ(cold.status, 200) << cold.body.dump();
  EXPECT_EQ(cold.kind, "cold");
  EXPECT_TRUE(HasStage(cold, "runtime_boot")) << "the interpreter booted in the sandbox:" << cold.stages;
  EXPECT_FALSE(HasStage(cold, "zygote_boot")) << "no zygote boot on the start's path:" << cold.stages;
  ASSERT_FALSE(cold.body.contains("errorType")) << cold.body.dump();
  // The same sandbox as a zygote start's: every property but the per-instance ones.
  EXPECT_NE(cold.body["uid"], 0);
  for (const char* key : {"gid", "groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
                          "Seccomp", "pids_visible", "hostname", "write_var_task", "write_etc", "write_usr",
                          "write_root", "write_tmp", "etc_shadow_exists", "root_home_exists",
                          "state_dir_visible", "var_task", "interfaces", "routes", "host_loopback_reachable",
                          "unshare_errno", "mount_errno", "setuid0_errno", "ptrace_errno"})
    EXPECT_EQ(cold.body[key], zygote.body[key]) << key;
  EXPECT_EQ(cold.body["tmp_files"].size(), zygote.body["tmp_files"].size())  // its marker and "owned"
      << "its own /tmp: " << cold.body["tmp_files"].dump();

  // Its zygote boots after it; the next new instance forks from that one.
  auto bound = AwaitZygotesOf(*d, "probe");
  ASSERT_EQ(bound.size(), 1u) << Health(*d)["zygotes"].dump();
  Answer next = InvokeFresh(*d, "probe", event);
  ASSERT_EQ(next.status, 200) << next.body.dump();
  EXPECT_EQ(next.kind, "zygote") << next.stages;
  EXPECT_FALSE(HasStage(next, "runtime_boot")) << next.stages;
  EXPECT_EQ(ZygotesOf(*d, "probe"), bound);
}

TEST(ColdExec, ConcurrentColdStartsAllAnswerAndLeaveOneZygote) {
  auto d = Daemon::Start({"--preforked", "0"});
  ASSERT_EQ(Deploy(*d, "counter", "counter").exit_code, 0);
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(d->Cli({"drop-zygote", "python3"}).exit_code, 0);
    constexpr int kClients = 4;
    std::vector<Answer> answers(kClients);
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i)
      clients.emplace_back([&, i] { answers[i] = InvokeFresh(*d, "counter", json::object()); });
    for (auto& t : clients) t.join();
    std::multiset<std::string> kinds;
    for (const auto& a : answers) {
      EXPECT_EQ(a.status, 200) << a.body.dump();
      EXPECT_EQ(a.body.value("calls", 0), 1) << "each one a fresh instance: " << a.body.dump();
      kinds.insert(a.kind);
    }
    EXPECT_GE(kinds.count("cold"), 1u) << round;
    EXPECT_EQ(kinds.count("cold") + kinds.count("zygote"), static_cast<size_t>(kClients)) << round;
    // One zygote for the function, however many cold starts asked for it.
    auto bound = AwaitZygotesOf(*d, "counter");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // any second boot would show now
    EXPECT_EQ(ZygotesOf(*d, "counter").size(), 1u) << round << ": " << Health(*d)["zygotes"].dump();
  }
}

// The cold-start fork server killed (kill -9): the next cold start still answers (the launcher
// boots a new server on that start's path, or the supervisor already has).
TEST(ColdExec, AKilledColdServerIsReplacedAndTheColdStartStillAnswers) {
  auto d = Daemon::Start({"--preforked", "0"});
  ASSERT_EQ(Deploy(*d, "counter", "counter").exit_code, 0);
  auto server = [&] {
    const json health = Health(*d);
    for (const auto& z : health["zygotes"])
      if (z.value("runtime", "") == "python3-cold") return z["pid"].get<int>();
    return 0;
  };
  const int killed = server();
  ASSERT_GT(killed, 0) << Health(*d).dump();
  ASSERT_EQ(kill(killed, SIGKILL), 0);
  ASSERT_EQ(d->Cli({"drop-zygote", "python3"}).exit_code, 0);
  Answer a = InvokeFresh(*d, "counter", json::object());
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.kind, "cold");
  EXPECT_EQ(a.body.value("calls", 0), 1) << a.body.dump();
  EXPECT_TRUE(HasStage(a, "runtime_boot")) << a.stages;
  int now = 0;
  for (int i = 0; i < 100 && (now == 0 || now == killed); ++i) {
    now = server();
    if (now == 0 || now == killed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(now, 0);
  EXPECT_NE(now, killed);
}

// Every cold instance forks from one fork server shared by all functions, then execs: nothing
// that protects its memory or its dicts is the server's or another function's (DESIGN.md rule 10).
TEST(ColdExec, ColdInstancesOfTwoFunctionsShareNoSecret) {
  auto d = Daemon::Start({"--preforked", "0"});
  ASSERT_EQ(Deploy(*d, "one", "secrets").exit_code, 0);
  ASSERT_EQ(Deploy(*d, "two", "secrets").exit_code, 0);
  ASSERT_EQ(d->Cli({"drop-zygote", "python3"}).exit_code, 0);
  Answer one = InvokeFresh(*d, "one", json::object());
  ASSERT_EQ(d->Cli({"drop-zygote", "python3"}).exit_code, 0);
  Answer two = InvokeFresh(*d, "two", json::object());
  ASSERT_EQ(one.status, 200) << one.body.dump();
  ASSERT_EQ(two.status, 200) << two.body.dump();
  ASSERT_EQ(one.kind, "cold");
  ASSERT_EQ(two.kind, "cold");
  for (const char* key : {"at_random", "libc_base", "hash", "random"})
    EXPECT_NE(one.body[key], two.body[key]) << key << ": " << one.body.dump() << " " << two.body.dump();
}

}  // namespace
}  // namespace forklet::testing
