// Faults the daemon must come through with its state: kill -9 of the daemon under load, kill -9
// of a zygote, a full disk under the state dir.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"
#include "tests/soak/daemon_footprint.h"
#include "tests/soak/ledger_check.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

Result<api::HttpResponse> InvokeHttp(Daemon& d, const std::string& fn, const std::string& payload,
                                     const std::map<std::string, std::string>& headers = {}) {
  return api::HttpCall(d.endpoint(), "POST", "/2015-03-31/functions/" + fn + "/invocations", payload,
                       headers);
}

std::string Header(const api::HttpResponse& r, const std::string& lower) {
  auto it = r.headers.find(lower);
  return it == r.headers.end() ? "" : it->second;
}

std::set<std::string> FunctionNames(Daemon& d) {
  std::set<std::string> names;
  auto r = api::HttpCall(d.endpoint(), "GET", "/2015-03-31/functions/");
  if (!r) return names;
  json list = json::parse(r->body, nullptr, false);
  for (auto& f : list["Functions"]) names.insert(f["FunctionName"].get<std::string>());
  return names;
}

std::vector<pid_t> ZygotePids(Daemon& d) {
  std::vector<pid_t> pids;
  json health = Health(d);
  for (auto& z : health["zygotes"]) pids.push_back(z["pid"].get<pid_t>());
  return pids;
}


TEST(FaultsTest, Kill9OfTheDaemonUnderLoadLeavesNothingBehindAndLosesNoFunction) {
  std::string state = "/tmp/forklet-test-state-k9load-" + std::to_string(getpid());
  auto d = Daemon::Start({}, state);
  std::string tag = CgroupTag(*d);
  ASSERT_FALSE(tag.empty()) << d->log();
  const std::vector<std::string> functions = {"quick", "slow", "echo"};
  ASSERT_EQ(Deploy(*d, "quick", "hello").exit_code, 0);
  ASSERT_EQ(Deploy(*d, "slow", "sleep", {"--timeout", "30"}).exit_code, 0);
  ASSERT_EQ(Deploy(*d, "echo", "echo").exit_code, 0);

  // Eight clients; what they were answered must all be in the ledger after the crash.
  std::mutex mu;
  std::set<std::string> answered;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        const std::string& fn = functions[(c + i) % 3];
        auto r = InvokeHttp(*d, fn, fn == "slow" ? R"({"seconds": 20})" : R"({"n": 1})");
        if (!r) break;  // the daemon is gone
        std::lock_guard lock(mu);
        if (r->status == 200) answered.insert(Header(*r, "x-amzn-requestid"));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto before = Footprint(d->pid(), tag, state);
  d->Kill9();
  stop = true;
  for (auto& t : clients) t.join();
  auto orphaned = Footprint(0, tag, state).cgroup_pids;  // instances (and the zygote) left alone
  EXPECT_FALSE(orphaned.empty()) << "the kill came while instances were running";
  EXPECT_FALSE(answered.empty());

  d = Daemon::Start({}, state);  // start-up cleanup of what the predecessor left
  auto after = Footprint(d->pid(), tag, state);
  for (pid_t pid : orphaned) EXPECT_FALSE(Running(pid)) << "orphan " << pid << " survived the restart";
  auto zygotes = ZygotePids(*d);
  for (pid_t pid : after.cgroup_pids)
    EXPECT_NE(std::find(zygotes.begin(), zygotes.end(), pid), zygotes.end())
        << "process " << pid << " in the daemon's cgroups is not its new zygote";
  EXPECT_LE(after.cgroups.size(), before.cgroups.size()) << "stale cgroups were removed";
  EXPECT_EQ(after.state_dir_mounts, 0);
  EXPECT_EQ(after.zombie_children, std::vector<pid_t>{});
  EXPECT_EQ(FunctionNames(*d), std::set<std::string>(functions.begin(), functions.end()));
  for (const auto& fn : functions) {
    auto r = InvokeHttp(*d, fn, fn == "slow" ? R"({"seconds": 0})" : "{}");
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->status, 200) << fn << ": " << r->body;
    EXPECT_EQ(Header(*r, "x-amz-function-error"), "") << fn << ": " << r->body;
  }
  d.reset();
  bool ledger = CheckLedger(state, answered);
  fs::remove_all(state);
  if (!ledger) GTEST_SKIP() << "no ledger in this build (runtime/billing): ledger checks skipped";
}

TEST(FaultsTest, Kill9OfAZygoteIsNoticedAndRepairedWithOneColdStart) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "fn", "hello").exit_code, 0);
  auto fresh = [&] {  // an invocation that needs a new instance, hence the function's zygote
    auto r = InvokeHttp(*d, "fn", "{}", {{"X-Forklet-Fresh-Instance", "1"}});
    EXPECT_TRUE(r) << r.error().ToString();
    if (!r) return std::string("failed");
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Header(*r, "x-amz-function-error"), "") << r->body;
    return Header(*r, "x-forklet-start-kind");
  };
  // The Python zygote serving fn, and the spare (function-less) ones, from GET health (not the
  // cold-start fork server, runtime python3-cold).
  auto zygotes_of = [&](const std::string& function) {
    std::vector<pid_t> pids;
    json health = Health(*d);
    for (auto& z : health["zygotes"])
      if (z.value("function", "") == function && z.value("runtime", "") == "python3")
        pids.push_back(z["pid"].get<pid_t>());
    return pids;
  };
  EXPECT_EQ(fresh(), "zygote");
  auto bound = zygotes_of("fn");
  ASSERT_EQ(bound.size(), 1u) << Health(*d).dump();
  // A spare dies: the supervisor notices without any request, reaps it and boots a successor.
  std::vector<pid_t> spares;
  for (int t = 0; t < 100 && spares.empty(); ++t) {
    spares = zygotes_of("");
    if (spares.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(spares.size(), 1u);
  ASSERT_EQ(kill(spares[0], SIGKILL), 0);
  std::vector<pid_t> now;
  for (int t = 0; t < 200; ++t) {
    now = zygotes_of("");
    if (now.size() == 1 && now[0] != spares[0]) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0], spares[0]);
  EXPECT_FALSE(Running(spares[0]));
  EXPECT_NE(d->ReadLog().find("spare zygote python3 (pid " + std::to_string(spares[0]) + ") died"),
            std::string::npos) << d->log();
  // The function's own zygote dies: noticed too; its next start binds a spare (not cold).
  ASSERT_EQ(kill(bound[0], SIGKILL), 0);
  for (int t = 0; t < 200 && !zygotes_of("fn").empty(); ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(zygotes_of("fn"), std::vector<pid_t>{});
  EXPECT_EQ(fresh(), "zygote");
  auto rebound = zygotes_of("fn");
  ASSERT_EQ(rebound.size(), 1u);
  EXPECT_NE(rebound[0], bound[0]);
  // No child stays a zombie (one exiting right now may be one for a moment before its reaping).
  std::vector<pid_t> zombies;
  for (int t = 0; t < 60; ++t) {
    zombies = Footprint(d->pid(), CgroupTag(*d), d->state_dir()).zombie_children;
    if (zombies.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(zombies, std::vector<pid_t>{}) << "killed zygote " << bound[0] << "; log:\n" << d->ReadLog();
  // Killed again, right before a request: at most that request is cold; the rest are not.
  ASSERT_EQ(kill(rebound[0], SIGKILL), 0);
  int cold = 0;
  for (int i = 0; i < 6; ++i) cold += fresh() == "cold";
  EXPECT_LE(cold, 1);
}

TEST(FaultsTest, DiskFullInTheStateDirFailsDeploysClearlyAndKeepsEverythingElse) {
  SmallDisk disk("diskfull", "48m");
  ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << strerror(errno);
  auto d = Daemon::Start({}, disk.path());
  ASSERT_EQ(Deploy(*d, "kept", "hello").exit_code, 0);
  auto code_sha = [&] {
    auto r = d->Aws({"get-function", "--function-name", "kept"});
    return json::parse(r.out, nullptr, false)["Configuration"]["CodeSha256"];
  };
  auto sha = code_sha();
  std::string body;
  ASSERT_EQ(Invoke(*d, "kept", "{}", &body).exit_code, 0);
  {  // fill the disk
    std::ofstream filler(disk.path() + "/filler", std::ios::binary);
    std::string mb(1 << 20, 'x');
    while (filler.write(mb.data(), mb.size()) && filler.flush()) {
    }
  }
  auto refused = Deploy(*d, "new", "echo");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("No space left on device"), std::string::npos) << refused.err;
  std::string zip = ZipFunction("echo");
  auto update = d->Aws({"update-function-code", "--function-name", "kept", "--zip-file", "fileb://" + zip});
  unlink(zip.c_str());
  EXPECT_NE(update.exit_code, 0);
  EXPECT_NE(update.err.find("No space left on device"), std::string::npos) << update.err;
  // What exists still works: warm, and on a new instance.
  auto i = Invoke(*d, "kept", R"({"name": "full"})", &body);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["hello"], "full");
  ASSERT_EQ(d->Cli({"drop-instances", "kept"}).exit_code, 0);
  i = Invoke(*d, "kept", R"({"name": "fresh"})", &body);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(json::parse(body)["hello"], "fresh");
  EXPECT_EQ(FunctionNames(*d), std::set<std::string>{"kept"});
  EXPECT_EQ(code_sha(), sha);
  // With room again, a restart finds the same state, with nothing half-written in it.
  fs::remove(disk.path() + "/filler");
  d.reset();
  d = Daemon::Start({}, disk.path());
  EXPECT_EQ(FunctionNames(*d), std::set<std::string>{"kept"});
  for (const auto& e : fs::directory_iterator(disk.path() + "/functions"))
    EXPECT_EQ(e.path().filename(), "kept") << "left over: " << e.path();
  i = Invoke(*d, "kept", R"({"name": "again"})", &body);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(Deploy(*d, "new", "echo").exit_code, 0);
  d.reset();
}

}  // namespace
}  // namespace forklet::testing
