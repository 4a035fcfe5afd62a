// The benchmark's daemon-side support: X-Forklet-Fresh-Instance gives every such invocation a
// new sandbox and leaves the idle pool alone; health lists the idle instances' pids.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {

using nlohmann::json;

api::HttpResponse Call(Daemon& d, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers = {}) {
  auto r = api::HttpCall(d.endpoint(), method, target, method == "POST" ? "{}" : "", headers);
  if (!r) throw std::runtime_error(method + " " + target + ": " + r.error().ToString());
  return std::move(r.value());
}

std::string Header(const api::HttpResponse& r, const std::string& lower) {
  auto it = r.headers.find(lower);
  return it == r.headers.end() ? "" : it->second;
}

TEST(FreshInstance, EachInvocationGetsANewSandboxAndTheWarmOneStaysIdle) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "counter", "counter").exit_code, 0);
  const std::string invoke = "/2015-03-31/functions/counter/invocations";
  const std::map<std::string, std::string> fresh = {{"X-Forklet-Fresh-Instance", "1"}};

  auto first = Call(*d, "POST", invoke);  // leaves one warm instance with calls == 1
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(json::parse(first.body)["calls"], 1);

  for (int i = 0; i < 3; ++i) {
    auto r = Call(*d, "POST", invoke, fresh);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Header(r, "x-forklet-start-kind"), "zygote");
    EXPECT_EQ(json::parse(r.body)["calls"], 1) << "a fresh instance has fresh module state";
  }

  auto health = json::parse(Call(*d, "GET", "/forklet/v1/health").body);
  EXPECT_EQ(health["instances"]["idle"], 1) << health.dump();  // fresh instances are not kept
  ASSERT_EQ(health["instances"]["idle_pids"].size(), 1u) << health.dump();
  int pid = health["instances"]["idle_pids"][0];
  EXPECT_EQ(kill(pid, 0), 0) << "the idle instance's pid is a live process";

  auto warm = Call(*d, "POST", invoke);
  EXPECT_EQ(Header(warm, "x-forklet-start-kind"), "warm");
  EXPECT_EQ(json::parse(warm.body)["calls"], 2) << "the first instance was kept for reuse";
}

}  // namespace
}  // namespace forklet::testing
