// New instances restored from CRIU snapshots: same results, faster starts, the same isolation,
// nothing shared between two restores, snapshots gone with the deployment, failures fall back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

struct Invoked {
  json body;
  std::string start_kind;
  double init_ms = 0;  // the REPORT's Init Duration: the whole start of a new instance
};

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = Daemon::Start();
    // The daemon proves CRIU with a checkpoint and restore of its own after it starts.
    auto criu = Health()["snapshots"]["criu"];
    for (int i = 0; i < 600 && criu.value("state", "") == "testing"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      criu = Health()["snapshots"]["criu"];
    }
    if (!criu.value("available", false))
      GTEST_SKIP() << "CRIU is not available (" << criu.dump()
                   << "); tools/setup-criu.sh installs it";
  }

  json Health() {
    auto h = daemon_->Cli({"health"});
    EXPECT_EQ(h.exit_code, 0) << h.err;
    return json::parse(h.out, nullptr, false);
  }

  Invoked Call(const std::string& fn, const json& event) {
    std::string body;
    auto i = Invoke(*daemon_, fn, event.dump(), &body, {"--log-type", "Tail"});
    EXPECT_EQ(i.exit_code, 0) << i.err;
    Invoked out;
    out.body = json::parse(body, nullptr, false);
    std::string log = Base64Decode(json::parse(i.out)["LogResult"]);
    auto kind = log.find("Start Kind: ");
    if (kind != std::string::npos) out.start_kind = log.substr(kind + 12, log.find('\t', kind) - kind - 12);
    auto init = log.find("Init Duration: ");
    if (init != std::string::npos) out.init_ms = std::stod(log.substr(init + 15));
    return out;
  }

  // Deploys tests/functions/NAME as FN with FORKLET_SNAPSHOT=on, starts one instance (zygote),
  // and waits for its snapshot, made in the background.
  Invoked DeployAndSnapshot(const std::string& fn, const std::string& name, const json& event) {
    auto d = Deploy(*daemon_, fn, name, {"--environment", "Variables={FORKLET_SNAPSHOT=on}"});
    EXPECT_EQ(d.exit_code, 0) << d.err;
    auto first = Call(fn, event);
    EXPECT_EQ(first.start_kind, "zygote");
    EXPECT_TRUE(WaitForSnapshot(fn)) << Health()["snapshots"].dump();
    return first;
  }

  bool WaitForSnapshot(const std::string& fn) {
    for (int i = 0; i < 300; ++i) {
      auto f = Health()["snapshots"]["functions"][fn];
      if (f.is_object() && f.contains("size_bytes") && !f.value("dumping", true)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  bool WaitForStemCells() {  // until the nodejs stem-cell pool is full
    for (int i = 0; i < 300; ++i) {
      auto h = Health();
      if (!h.contains("stem_cells") || !h["stem_cells"].contains("nodejs")) return true;
      if (h["stem_cells"]["nodejs"]["ready"] >= h["stem_cells"]["nodejs"]["target"]) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  bool HasSnapshotFiles(const std::string& fn) {
    return fs::exists(daemon_->state_dir() + "/snapshots/" + fn);
  }

  void DropInstances(const std::string& fn) {
    ASSERT_EQ(daemon_->Cli({"drop-instances", fn}).exit_code, 0);
  }

  std::unique_ptr<Daemon> daemon_;
};

TEST_F(SnapshotTest, RestoresGiveTheSameResultsAndStartMuchFaster) {
  json event{{"key", 11}};
  auto zygote = DeployAndSnapshot("slow", "slowinit", event);
  ASSERT_EQ(zygote.body["entries"], 2000) << zygote.body.dump();
  double fastest_restore = 1e9;
  for (int i = 0; i < 3; ++i) {
    DropInstances("slow");
    auto restored = Call("slow", event);
    ASSERT_EQ(restored.start_kind, "restore") << Health()["snapshots"].dump();
    for (const char* same : {"value", "entries", "calls", "tmp", "marker"})
      EXPECT_EQ(restored.body[same], zygote.body[same]) << same;
    EXPECT_NE(restored.body["request_id"], zygote.body["request_id"]);
    EXPECT_NE(restored.body["random"], zygote.body["random"]);  // reseeded on restore
    fastest_restore = std::min(fastest_restore, restored.init_ms);
  }
  // The function's import does ~300 ms of work; a restore skips it.
  double init_work_ms = zygote.body["init_ms"];
  EXPECT_LT(fastest_restore, init_work_ms) << "restore " << fastest_restore << " ms, the function's own init "
                                           << init_work_ms << " ms, zygote start " << zygote.init_ms << " ms";
  auto f = Health()["snapshots"]["functions"]["slow"];
  EXPECT_GE(f["restores"], 3);
  EXPECT_EQ(f["failures"], 0);
  // `forklet stats` says what was decided for the function and why.
  auto stats = daemon_->Cli({"stats", "--function", "slow"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("snapshots: CRIU"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("slow: restore: policy on; restores "), std::string::npos) << stats.out;
  // A warm start after a restore is the restored instance itself, with its own state.
  auto warm = Call("slow", event);
  EXPECT_EQ(warm.start_kind, "warm");
  EXPECT_EQ(warm.body["calls"], 2);
}

TEST_F(SnapshotTest, TheIsolationProbePassesInARestoredInstance) {
  int port = std::stoi(daemon_->endpoint().substr(daemon_->endpoint().rfind(':') + 1));
  json event{{"state_dir", daemon_->state_dir()}, {"daemon_port", port}};
  DeployAndSnapshot("probe", "probe", event);
  DropInstances("probe");
  auto r = Call("probe", event);
  ASSERT_EQ(r.start_kind, "restore");
  const json& p = r.body;
  ASSERT_FALSE(p.contains("errorType")) << p.dump();
  EXPECT_NE(p["uid"], 0);
  EXPECT_NE(p["gid"], 0);
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_EQ(p[cap], "0000000000000000") << cap;
  EXPECT_EQ(p["NoNewPrivs"], "1");
  EXPECT_EQ(p["Seccomp"], "2");
  for (const char* call : {"unshare_errno", "mount_errno", "setuid0_errno", "ptrace_errno"})
    EXPECT_EQ(p[call], "EPERM") << call;
  EXPECT_EQ(p["pids_visible"], json({1}));
  EXPECT_EQ(p["hostname"], "forklet");
  for (const char* path : {"write_var_task", "write_etc", "write_usr", "write_root"})
    EXPECT_EQ(p[path], false) << path;
  EXPECT_EQ(p["write_tmp"], true);
  EXPECT_EQ(p["etc_shadow_exists"], false);
  EXPECT_EQ(p["root_home_exists"], false);
  EXPECT_EQ(p["state_dir_visible"], false);
  EXPECT_EQ(p["var_task"], json({"app.py"}));
  EXPECT_EQ(p["interfaces"], json({"lo", "eth0"}));  // its own, from the egress pool
  EXPECT_EQ(p["routes"], 2);
  EXPECT_EQ(p["host_loopback_reachable"], false);
  // A fresh /tmp: only what this invocation wrote (the snapshot was taken before any).
  EXPECT_EQ(p["tmp_files"].size(), 2u) << p["tmp_files"].dump();  // owned, marker-<its id>
}

TEST_F(SnapshotTest, TwoConcurrentRestoresShareNothingWritable) {
  DeployAndSnapshot("slow", "slowinit", json{{"key", 1}});
  DropInstances("slow");
  Invoked a, b;
  std::thread ta([&] { a = Call("slow", json{{"key", 1}, {"marker", "first"}, {"sleep_ms", 1500}}); });
  std::thread tb([&] { b = Call("slow", json{{"key", 1}, {"marker", "second"}, {"sleep_ms", 1500}}); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.start_kind, "restore");
  EXPECT_EQ(b.start_kind, "restore");
  EXPECT_EQ(a.body["tmp"], json({"first"}));
  EXPECT_EQ(b.body["tmp"], json({"second"}));
  EXPECT_EQ(a.body["marker"], "first");
  EXPECT_EQ(b.body["marker"], "second");
  EXPECT_EQ(a.body["calls"], 1);
  EXPECT_EQ(b.body["calls"], 1);
  EXPECT_NE(a.body["random"], b.body["random"]);
}

TEST_F(SnapshotTest, UpdateAndDeleteRemoveTheSnapshot) {
  DeployAndSnapshot("slow", "slowinit", json{});
  ASSERT_TRUE(HasSnapshotFiles("slow"));
  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "slow", "--environment",
                         "Variables={FORKLET_SNAPSHOT=on,CHANGED=1}"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_FALSE(HasSnapshotFiles("slow"));
  // The new configuration gets its own snapshot after its first start...
  EXPECT_EQ(Call("slow", json{}).start_kind, "zygote");
  ASSERT_TRUE(WaitForSnapshot("slow"));
  ASSERT_TRUE(HasSnapshotFiles("slow"));
  // ... which goes with the function.
  auto del = daemon_->Aws({"delete-function", "--function-name", "slow"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_FALSE(HasSnapshotFiles("slow"));
  EXPECT_EQ(Health()["snapshots"]["store"]["snapshots"], 0);
}

TEST_F(SnapshotTest, SnapshotsAreReadableByTheDaemonOnly) {
  DeployAndSnapshot("slow", "slowinit", json{});
  for (const auto& dir : {daemon_->state_dir() + "/snapshots", daemon_->state_dir() + "/snapshots/slow"}) {
    auto mode = fs::status(dir).permissions();
    EXPECT_EQ(mode & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << dir;
  }
}

// Damages every image whose name starts with `prefix`: same size (garbage) or truncated.
void Damage(const std::string& dir, const std::string& prefix, bool keep_size) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) != 0) continue;
    auto size = fs::file_size(e.path());
    std::ofstream(e.path(), std::ios::trunc) << std::string(keep_size ? size : size / 2, 'x');
  }
}

TEST_F(SnapshotTest, ACorruptedSnapshotFallsBackToAZygoteStart) {
  DeployAndSnapshot("slow", "slowinit", json{{"key", 5}});
  const std::string dir = daemon_->state_dir() + "/snapshots/slow";
  // Garbage of the right size: criu refuses it. A truncated memory image: the daemon does.
  for (auto [prefix, keep_size] : {std::pair{"core-", true}, std::pair{"pages-", false}}) {
    SCOPED_TRACE(prefix);
    Damage(dir, prefix, keep_size);
    DropInstances("slow");
    auto r = Call("slow", json{{"key", 5}});
    EXPECT_EQ(r.start_kind, "zygote");
    EXPECT_EQ(r.body["entries"], 2000) << r.body.dump();
    auto f = Health()["snapshots"]["functions"]["slow"];
    EXPECT_GE(f["failures"], 1) << f.dump();
    EXPECT_NE(f.value("last_error", ""), "");
    EXPECT_NE(daemon_->ReadLog().find("restore of slow failed"), std::string::npos);
    ASSERT_TRUE(WaitForSnapshot("slow"));  // the zygote start made a new one
    DropInstances("slow");
    EXPECT_EQ(Call("slow", json{{"key", 5}}).start_kind, "restore");
  }
}

// Node: the snapshot of a booted, initialized runner; with policy on a restore comes before a
// pre-booted stem cell and answers as a zygote (stem-cell) start does.
TEST_F(SnapshotTest, NodeRestoresGiveTheSameResultsAsAZygoteStart) {
  auto d = DeployDir(*daemon_, "nsnap", std::string(TEST_FUNCTIONS_DIR) + "/node-snap", "nodejs20.x",
                     "index.handler", {"--environment", "Variables={FORKLET_SNAPSHOT=on}"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  ASSERT_TRUE(WaitForStemCells());
  json event{{"key", 21}};
  auto zygote = Call("nsnap", event);
  ASSERT_EQ(zygote.start_kind, "zygote") << zygote.body.dump();
  ASSERT_EQ(zygote.body["entries"], 2000) << zygote.body.dump();
  ASSERT_TRUE(WaitForSnapshot("nsnap")) << Health()["snapshots"].dump();
  std::vector<Invoked> restores;
  for (int i = 0; i < 3; ++i) {
    DropInstances("nsnap");
    auto restored = Call("nsnap", event);
    ASSERT_EQ(restored.start_kind, "restore") << Health()["snapshots"].dump();
    for (const char* same : {"value", "entries", "calls", "tmp", "function_name", "memory_limit_in_mb", "cwd", "env"})
      EXPECT_EQ(restored.body[same], zygote.body[same]) << same << ": " << restored.body.dump();
    EXPECT_NE(restored.body["request_id"], zygote.body["request_id"]);
    restores.push_back(restored);
  }
  // The init's state is the snapshot's: every restore has the marker its source drew.
  EXPECT_EQ(restores[1].body["marker"], restores[0].body["marker"]);
  EXPECT_EQ(restores[2].body["marker"], restores[0].body["marker"]);
  auto f = Health()["snapshots"]["functions"]["nsnap"];
  EXPECT_GE(f["restores"], 3);
  EXPECT_EQ(f["failures"], 0) << f.dump();
  auto warm = Call("nsnap", event);
  EXPECT_EQ(warm.start_kind, "warm");
  EXPECT_EQ(warm.body["calls"], 2);
  EXPECT_EQ(warm.body["tmp"], json::array({"seen"}));
}

// auto never checkpoints a Node function, however slow its init: its copies would share
// Math.random's and OpenSSL's generator state.
TEST_F(SnapshotTest, AutoDoesNotCheckpointNode) {
  auto d = DeployDir(*daemon_, "nauto", std::string(TEST_FUNCTIONS_DIR) + "/node-snap", "nodejs20.x",
                     "index.handler", {"--environment", "Variables={FORKLET_SNAPSHOT=auto,INIT_MS=120}"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  ASSERT_TRUE(WaitForStemCells());
  EXPECT_EQ(Call("nauto", json{}).start_kind, "zygote");
  DropInstances("nauto");
  ASSERT_TRUE(WaitForStemCells());
  EXPECT_EQ(Call("nauto", json{}).start_kind, "zygote");
  EXPECT_FALSE(Health()["snapshots"]["functions"].contains("nauto")) << Health()["snapshots"].dump();
  EXPECT_FALSE(HasSnapshotFiles("nauto"));
}

// A criu that passes `criu check` but hangs in its dump (as 4.1.1 does on some kernels): the
// daemon's start-up self-test kills it at its deadline, says why, and snapshots stay off.
TEST(CriuSelfTest, ACriuWhoseDumpHangsIsTurnedOffWithTheReason) {
  char dir_template[] = "/tmp/forklet-test-state-fakecriu-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string fake = std::string(dir_template) + "/criu";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\n"
         "case \"$1\" in\n"
         "  check) echo 'Looks good.'; exit 0;;\n"
         "  --version) echo 'Version: 0.0-hangs'; exit 0;;\n"
         "  dump) exec sleep 3600;;\n"
         "esac\n"
         "exit 1\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  auto d = Daemon::Start({"--criu", fake});
  json criu;
  for (int i = 0; i < 400; ++i) {  // the self-test's dump has a 10 s deadline
    auto h = d->Cli({"health"});
    criu = json::parse(h.out, nullptr, false)["snapshots"]["criu"];
    if (criu.value("state", "") != "testing") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(criu.value("state", ""), "off") << criu.dump();
  EXPECT_FALSE(criu.value("available", true));
  EXPECT_NE(criu.value("reason", "").find("fails its self-test"), std::string::npos) << criu.dump();
  EXPECT_NE(criu.value("reason", "").find("no answer"), std::string::npos) << criu.dump();
  EXPECT_EQ(criu.value("version", ""), "0.0-hangs");
  // Neither the hung criu nor the process it was dumping is left.
  auto hung = forklet::testing::Run({"/usr/bin/pgrep", "-x", "-f", "sleep 3600"});
  EXPECT_NE(hung.exit_code, 0) << "the hung criu is left running: " << hung.out;
  auto source = forklet::testing::Run({"/usr/bin/pgrep", "-P", std::to_string(d->pid()), "-x", "sleep"});
  EXPECT_NE(source.exit_code, 0) << "the self-test's process is left running: " << source.out;
  auto stats = d->Cli({"stats"});
  EXPECT_NE(stats.out.find("fails its self-test"), std::string::npos) << stats.out;
  d.reset();
  fs::remove_all(dir_template);
}

}  // namespace
}  // namespace forklet::testing
