// /tmp as Lambda has it: EphemeralStorage.Size (512-10240 MB) on disk, not counted against the
// function's memory, its own per instance, and nothing of it left when the daemon goes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

// Loop devices backed by a file below state (its /tmp areas), waiting up to 3 s for them to clear.
std::vector<std::string> LoopsOf(const std::string& state, bool wait_for_none) {
  std::vector<std::string> found;
  for (int i = 0; i < 150; ++i) {
    found.clear();
    for (const auto& e : fs::directory_iterator("/sys/block")) {
      std::ifstream f(e.path() / "loop/backing_file");
      std::string backing;
      if (std::getline(f, backing) && backing.rfind(state + "/", 0) == 0)
        found.push_back(e.path().filename().string() + ": " + backing);
    }
    if (!wait_for_none || found.empty()) break;
    usleep(20000);
  }
  return found;
}

class EphemeralStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = "/tmp/forklet-test-state-ephemeral-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    state_ = t;
    daemon_ = Daemon::Start({}, state_);
    ASSERT_TRUE(daemon_);
    if (daemon_->ReadLog().find("/tmp is a tmpfs") != std::string::npos)
      GTEST_SKIP() << "this host cannot make disk-backed /tmp areas: " << daemon_->log();
  }
  void TearDown() override {
    daemon_.reset();
    EXPECT_EQ(LoopsOf(state_, true), std::vector<std::string>{}) << "no loop device left";
    std::error_code ec;
    EXPECT_TRUE(!fs::exists(state_ + "/tmp-areas") || fs::is_empty(state_ + "/tmp-areas"))
        << "no image left";
    fs::remove_all(state_, ec);
  }
  json Call(const std::string& fn, const json& event) {
    std::string body;
    auto r = Invoke(*daemon_, fn, event.dump(), &body, {"--cli-read-timeout", "300"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return json::object();
    auto out = json::parse(r.out);
    EXPECT_FALSE(out.contains("FunctionError")) << body << "\n" << daemon_->ReadLog();
    return json::parse(body);
  }
  std::string state_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(EphemeralStorageTest, TmpHoldsMoreThanMemoryAndStopsAtItsSize) {
  auto d = Deploy(*daemon_, "big", "tmpfill",
                  {"--memory-size", "128", "--timeout", "300", "--ephemeral-storage", "Size=1024"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(json::parse(d.out)["EphemeralStorage"]["Size"], 1024);
  auto g = daemon_->Aws({"get-function-configuration", "--function-name", "big"});
  EXPECT_EQ(json::parse(g.out)["EphemeralStorage"]["Size"], 1024) << g.out;

  // 600 MB in a 128 MB function: the page cache of a disk is not the function's memory.
  auto first = Call("big", {{"write_mb", 600}, {"name", "a"}});
  EXPECT_EQ(first["error"], nullptr) << first;
  EXPECT_EQ(first["written_mb"], 600) << first;
  EXPECT_EQ(first["fs"], "ext4") << first;
  EXPECT_GT(first["size_mb"].get<int>(), 960) << first;
  EXPECT_LE(first["size_mb"].get<int>(), 1024) << first;
  // Past its size: ENOSPC in the function, which answers normally; the daemon is unharmed.
  auto second = Call("big", {{"write_mb", 600}, {"name", "b"}});
  EXPECT_EQ(second["error"], "ENOSPC") << second;
  EXPECT_LT(second["written_mb"].get<int>(), 430) << second;
  EXPECT_EQ(second["files"], json::array({"a", "b"})) << "the same (warm) instance's /tmp";
  EXPECT_TRUE(daemon_->Alive());

  // Another instance (a new configuration makes new ones) starts with an empty /tmp.
  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "big", "--timeout", "299"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  auto fresh = Call("big", json::object());
  EXPECT_EQ(fresh["files"], json::array()) << fresh;
  EXPECT_EQ(fresh["fs"], "ext4");
  // And so does another function's.
  ASSERT_EQ(Deploy(*daemon_, "other", "tmpfill").exit_code, 0);
  auto other = Call("other", json::object());
  EXPECT_EQ(other["files"], json::array()) << other;
  EXPECT_GT(other["size_mb"].get<int>(), 480) << "Lambda's default: 512 MB";
  EXPECT_LE(other["size_mb"].get<int>(), 512);
  auto og = daemon_->Aws({"get-function-configuration", "--function-name", "other"});
  EXPECT_EQ(json::parse(og.out)["EphemeralStorage"]["Size"], 512);
}

TEST_F(EphemeralStorageTest, SizesOutsideLambdasRangeAreRefusedAndTheSettingPersists) {
  // The aws CLI itself refuses sizes below 512; above 10240 it asks the daemon.
  for (const char* size : {"Size=10241", "Size=100000"}) {
    auto r = Deploy(*daemon_, "f", "tmpfill", {"--ephemeral-storage", size});
    EXPECT_NE(r.exit_code, 0) << size;
    EXPECT_NE(r.err.find("at 'ephemeralStorage.size' failed to satisfy constraint: Member must have "
                         "value less than or equal to 10240"),
              std::string::npos)
        << r.err;
  }
  for (int size : {0, 511}) {  // what a client without the CLI's check sends
    json body = {{"FunctionName", "f"}, {"Runtime", "python3.11"}, {"Handler", "app.handler"},
                 {"Role", "arn:aws:iam::000000000000:role/x"}, {"Code", {{"ZipFile", "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}},
                 {"EphemeralStorage", {{"Size", size}}}};
    auto r = api::HttpCall(daemon_->endpoint(), "POST", "/2015-03-31/functions", body.dump());
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("greater than or equal to 512"), std::string::npos) << r->body;
  }
  EXPECT_EQ(json::parse(daemon_->Aws({"list-functions"}).out)["Functions"].size(), 0u);
  ASSERT_EQ(Deploy(*daemon_, "f", "tmpfill", {"--ephemeral-storage", "Size=10240"}).exit_code, 0);
  auto bad = daemon_->Aws({"update-function-configuration", "--function-name", "f",
                           "--ephemeral-storage", "Size=20000"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("InvalidParameterValueException"), std::string::npos) << bad.err;
  auto big = Call("f", json::object());
  EXPECT_GT(big["size_mb"].get<int>(), 9800) << big;
  EXPECT_LE(big["size_mb"].get<int>(), 10240) << big;
  ASSERT_EQ(daemon_->Aws({"update-function-configuration", "--function-name", "f",
                          "--ephemeral-storage", "Size=2048"}).exit_code, 0);
  // Kept across a kill -9 and restart; the killed daemon's areas are gone after the restart.
  daemon_->Kill9();
  daemon_ = Daemon::Start({}, state_);
  auto g = daemon_->Aws({"get-function-configuration", "--function-name", "f"});
  EXPECT_EQ(json::parse(g.out)["EphemeralStorage"]["Size"], 2048) << g.out;
  auto after = Call("f", {{"write_mb", 8}});
  EXPECT_GT(after["size_mb"].get<int>(), 1900) << after;
  EXPECT_LE(after["size_mb"].get<int>(), 2048) << after;
  EXPECT_EQ(after["files"], json::array({"data"})) << "a fresh /tmp after the restart";
}

// A churn of new instances reuses the areas of those that ended, emptied: each new instance sees
// only what it wrote itself.
TEST_F(EphemeralStorageTest, AreasOfEndedInstancesAreReusedEmpty) {
  for (const char* fn : {"writer", "reader"}) ASSERT_EQ(Deploy(*daemon_, fn, "tmpfill").exit_code, 0) << fn;
  const std::map<std::string, std::string> fresh = {{"X-Forklet-Fresh-Instance", "1"}};
  for (int i = 0; i < 12; ++i) {
    const std::string fn = i % 3 == 2 ? "reader" : "writer";
    json event = fn == "writer" ? json{{"write_mb", 2}, {"name", "secret-" + std::to_string(i)}} : json::object();
    auto r = api::HttpCall(daemon_->endpoint(), "POST", "/2015-03-31/functions/" + fn + "/invocations",
                           event.dump(), fresh);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
    auto out = json::parse(r->body);
    EXPECT_EQ(out["error"], nullptr) << out;
    EXPECT_EQ(out["fs"], "ext4") << out;
    const json own = fn == "writer" ? json::array({"secret-" + std::to_string(i)}) : json::array();
    EXPECT_EQ(out["files"], own) << "instance " << i << " (" << fn << ") saw another instance's files";
  }
  // The emptying happens off the start path, just after an instance ends.
  json areas;
  for (int i = 0; i < 100; ++i) {
    areas = Health(*daemon_)["tmp_areas"];
    if (areas["recycled"].get<int>() >= 8) break;
    usleep(50000);
  }
  EXPECT_GE(areas["recycled"].get<int>(), 8) << areas;
  EXPECT_EQ(areas["discarded"], 0) << areas;
  EXPECT_LE(areas["made"].get<int>(), 8) << "areas were made rather than reused: " << areas;
}

}  // namespace
}  // namespace forklet::testing
