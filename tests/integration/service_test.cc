// forkletd as a systemd service: the installed files and unit, the notify protocol (through a
// fake NOTIFY_SOCKET), draining on SIGTERM under load, and live reloads on SIGHUP.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string TempDir(const std::string& name) {
  static int n = 0;
  std::string dir =
      "/tmp/forklet-" + name + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
  fs::create_directories(dir);
  return dir;
}

// What systemd listens on for sd_notify: a datagram Unix socket, here bound by the test.
class NotifySocket {
 public:
  NotifySocket() : path_(TempDir("notify") + "/notify.sock") {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("bind " + path_);
  }
  ~NotifySocket() {
    close(fd_);
    fs::remove_all(fs::path(path_).parent_path());
  }
  const std::string& path() const { return path_; }

  // Reads messages until one has the line `line` (e.g. "READY=1"); false after timeout_s.
  bool WaitFor(const std::string& line, int timeout_s = 30) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      std::string message(buf, static_cast<size_t>(n));
      messages_.push_back(message);
      if (("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos) return true;
    }
    return false;
  }
  // Every message so far, one per line (for failure output).
  std::string seen() const {
    std::string out;
    for (const auto& m : messages_) out += "[" + m + "]\n";
    return out;
  }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

// Starts a daemon with extra environment (the harness passes its own on).
std::unique_ptr<Daemon> StartWithEnv(const std::map<std::string, std::string>& env,
                                     const std::vector<std::string>& args) {
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  auto d = Daemon::Start(args);
  for (const auto& [k, v] : env) unsetenv(k.c_str());
  return d;
}

// The daemon's exit code once it has exited, leaving it to the harness to reap.
int ExitCode(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0) return -1;
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

CmdResult Curl(const Daemon& d, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-s", "--max-time", "120"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

json Capacity(const Daemon& d) {
  auto r = Curl(d, {d.endpoint() + "/forklet/v1/capacity"});
  return json::parse(r.out, nullptr, false);
}

// forklet's cgroups of one daemon: its ready line names its root, "forklet.<tag>".
std::vector<std::string> CgroupsOf(const Daemon& d) {
  std::smatch m;
  std::regex root(R"((forklet\.\d+))");
  std::vector<std::string> found;
  if (!std::regex_search(d.log(), m, root)) return {"no cgroup root in the log: " + d.log()};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() > 7) it.disable_recursion_pending();
    if (it->path().filename() == m[1].str()) found.push_back(it->path().string());
  }
  return found;
}

// ---- installing: the files land, the unit verifies, the installed daemon runs ----

class InstallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    destdir_ = new std::string(TempDir("destdir"));
    install_ = new CmdResult(forklet::testing::Run(
        {CMAKE_COMMAND, "--install", BUILD_DIR}, {{"DESTDIR", *destdir_}}));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*destdir_);
    delete destdir_;
    delete install_;
  }
  void SetUp() override { ASSERT_EQ(install_->exit_code, 0) << install_->out << install_->err; }
  static std::string* destdir_;
  static CmdResult* install_;
};
std::string* InstallTest::destdir_ = nullptr;
CmdResult* InstallTest::install_ = nullptr;

TEST_F(InstallTest, PutsEveryFileWhereTheUnitAndTheDaemonLookForIt) {
  for (std::string f : {INSTALL_BINDIR "/forkletd", INSTALL_BINDIR "/forklet",
                        INSTALL_LIBDIR "/forklet/libforklet_zygote.so",
                        INSTALL_LIBEXECDIR "/forklet/forklet-zygote",
                        INSTALL_INCLUDEDIR "/forklet/forklet.h",
                        INSTALL_DATADIR "/forklet/lang-runners/python/forklet_zygote.py",
                        INSTALL_DATADIR "/forklet/lang-runners/python/forklet_instance.py",
                        INSTALL_DATADIR "/forklet/lang-runners/nodejs/forklet_runner.js",
                        INSTALL_DATADIR "/forklet/lang-runners/nodejs/forklet_warmup.js",
                        INSTALL_UNITDIR "/forkletd.service", INSTALL_CONFIG})
    EXPECT_TRUE(fs::exists(*destdir_ + f)) << f;
  std::ifstream config(*destdir_ + INSTALL_CONFIG);
  EXPECT_FALSE(json::parse(config, nullptr, false).is_discarded()) << "the config is not JSON";
}

TEST_F(InstallTest, UnitPassesSystemdAnalyzeVerify) {
  // The unit names the installed forkletd, which verify checks: show it the installed binaries
  // in a private mount namespace (nothing changes for the rest of the host).
  std::string unit = *destdir_ + INSTALL_UNITDIR "/forkletd.service";
  auto r = forklet::testing::Run(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
       "mount -t overlay overlay -o lowerdir=\"$1$3\":\"$3\" \"$3\" && "
       "exec systemd-analyze verify \"$2\"",
       "sh", *destdir_, unit, INSTALL_BINDIR});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out + r.err, "") << "systemd-analyze has remarks";
}

TEST_F(InstallTest, InstalledDaemonFindsItsRunnersAndServesWithTheInstalledConfig) {
  // The installed config's listen address, state dir and socket are the host's; flags win.
  std::string work = TempDir("installed");
  auto r = forklet::testing::Run({"/bin/sh", "-c", R"(
      W=$2; FN=$3; BIN=$1$4; CONFIG=$1$5
      "$BIN/forkletd" --config "$CONFIG" --listen 127.0.0.1:0 \
          --state-dir "$W/state" --socket "$W/forkletd.sock" --cgroup-pool 1 2>"$W/log" &
      pid=$!
      for i in $(seq 300); do grep -q "ready on" "$W/log" && break; sleep 0.1; done
      "$BIN/forklet" --endpoint "unix:$W/forkletd.sock" deploy hello "$FN" >/dev/null &&
      "$BIN/forklet" --endpoint "unix:$W/forkletd.sock" invoke hello '{"name": "installed"}' &&
      "$BIN/forklet" --endpoint "unix:$W/forkletd.sock" deploy native-hello "$6" --runtime native \
          --handler libhello.handler >/dev/null &&
      "$BIN/forklet" --endpoint "unix:$W/forkletd.sock" invoke native-hello '{"name": "libexec"}'
      rc=$?
      kill -TERM $pid; wait $pid; echo "exit=$?"
      cat "$W/log" >&2
      exit $rc)",
                "sh", *destdir_, work, std::string(TEST_FUNCTIONS_DIR) + "/hello", INSTALL_BINDIR,
                INSTALL_CONFIG, std::string(BUILT_EXAMPLES_DIR) + "/native-hello"});
  fs::remove_all(work);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("installed"), std::string::npos) << r.out << r.err;
  // The native runtime's zygote, from LIBEXECDIR, finds its library in LIBDIR/forklet.
  EXPECT_NE(r.out.find(R"("hello": "libexec")"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("exit=0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("config " + *destdir_ + INSTALL_CONFIG), std::string::npos) << r.err;
}

// ---- the notify protocol ----

TEST(ServiceNotify, SendsReadyStatusWatchdogAndStopping) {
  NotifySocket notify;
  auto d = StartWithEnv({{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "400000"}}, {});
  ASSERT_TRUE(notify.WaitFor("READY=1")) << notify.seen();
  // READY=1 comes once the API answers, with the live counts.
  const std::string& ready = notify.messages().back();
  EXPECT_NE(ready.find("STATUS=ready: instances 0 idle"), std::string::npos) << ready;
  // The spare Python zygote and Python's cold-start fork server (python3-cold), both booted before READY.
  EXPECT_NE(ready.find("2 zygotes"), std::string::npos) << ready;
  EXPECT_EQ(d->Cli({"health"}).exit_code, 0);
  ASSERT_TRUE(notify.WaitFor("WATCHDOG=1")) << notify.seen();

  // STATUS= follows what happens: a warm instance after an invocation.
  ASSERT_EQ(Deploy(*d, "fn", "hello").exit_code, 0);
  std::string body;
  ASSERT_EQ(Invoke(*d, "fn", "{}", &body).exit_code, 0);
  bool saw_idle = false;
  for (int i = 0; i < 50 && !saw_idle; ++i) {
    notify.WaitFor("WATCHDOG=1", 5);
    for (const auto& m : notify.messages())
      saw_idle = saw_idle || m.find("STATUS=ready: instances 1 idle") != std::string::npos;
  }
  EXPECT_TRUE(saw_idle) << notify.seen();

  kill(d->pid(), SIGTERM);
  ASSERT_TRUE(notify.WaitFor("STOPPING=1")) << notify.seen();
  EXPECT_EQ(ExitCode(d->pid()), 0);
  // Logs carry journald priorities, one line per event.
  EXPECT_NE(d->log().find("<5>forkletd: ready on http://127.0.0.1:"), std::string::npos)
      << d->log();
}

// ---- SIGTERM drains ----

class DrainTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& args) {
    daemon_ = Daemon::Start(args);
    ASSERT_EQ(Deploy(*daemon_, "sleepy", "sleep", {"--timeout", "60"}).exit_code, 0);
  }
  // Waits until the daemon counts `n` invocations in flight.
  void WaitInFlight(uint32_t n) {
    for (int i = 0; i < 600; ++i) {
      auto c = Capacity(*daemon_);
      if (c.is_object() && c["in_flight"] == n) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "never " << n << " in flight: " << Capacity(*daemon_).dump();
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DrainTest, SigtermUnderLoadFinishesEveryInvocationInFlight) {
  Start({"--drain-grace", "60"});
  std::vector<std::future<std::pair<CmdResult, std::string>>> calls;
  for (int i = 0; i < 4; ++i)
    calls.push_back(std::async(std::launch::async, [&] {
      std::string body;
      auto r = Invoke(*daemon_, "sleepy", R"({"seconds": 4})", &body);
      return std::make_pair(r, body);
    }));
  std::string body;
  // Two Event invocations: accepted (202) now, they count as in flight until they have run.
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(Invoke(*daemon_, "sleepy", R"({"seconds": 4})", &body,
                     {"--invocation-type", "Event"}).exit_code, 0);
  WaitInFlight(6);

  kill(daemon_->pid(), SIGTERM);
  // Draining: the node says so and turns new invocations away with a clear error.
  json c;
  for (int i = 0; i < 100; ++i) {
    c = Capacity(*daemon_);
    if (c.is_object() && c["status"] == "draining") break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(c["status"], "draining") << c.dump();
  auto health = Curl(*daemon_, {daemon_->endpoint() + "/forklet/v1/health"});
  EXPECT_EQ(json::parse(health.out, nullptr, false).value("status", ""), "draining") << health.out;
  auto refused = Invoke(*daemon_, "sleepy", R"({"seconds": 0})", &body);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("ServiceUnavailableException"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("draining"), std::string::npos) << refused.err;

  for (auto& f : calls) {
    auto [r, b] = f.get();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out, nullptr, false).value("FunctionError", ""), "") << r.out;
    EXPECT_EQ(json::parse(b, nullptr, false).value("slept", 0), 4) << b;
  }
  EXPECT_EQ(ExitCode(daemon_->pid()), 0) << daemon_->log();
  // Every instance went with it.
  EXPECT_EQ(CgroupsOf(*daemon_), std::vector<std::string>{});
}

TEST_F(DrainTest, PastTheGracePeriodRunningInvocationsAreStopped) {
  Start({"--drain-grace", "1"});
  auto call = std::async(std::launch::async, [&] {
    std::string body;
    auto r = Invoke(*daemon_, "sleepy", R"({"seconds": 50})", &body);
    return std::make_pair(r, body);
  });
  WaitInFlight(1);
  kill(daemon_->pid(), SIGTERM);
  auto [r, b] = call.get();
  // The client gets an answer (an error of the runtime), not a dropped connection.
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out, nullptr, false).value("FunctionError", ""), "Unhandled") << r.out;
  EXPECT_EQ(json::parse(b, nullptr, false).value("errorType", ""), "Runtime.ExitError") << b;
  EXPECT_EQ(ExitCode(daemon_->pid()), 0);
  EXPECT_EQ(CgroupsOf(*daemon_), std::vector<std::string>{});
}

TEST_F(DrainTest, DrainCallStopsNewInvocationsAndKeepsTheDaemon) {
  Start({});
  std::string body;
  ASSERT_EQ(Invoke(*daemon_, "sleepy", R"({"seconds": 0})", &body).exit_code, 0);
  auto r = Curl(*daemon_, {"-X", "POST", daemon_->endpoint() + "/forklet/v1/admin/drain"});
  auto c = json::parse(r.out, nullptr, false);
  EXPECT_EQ(c.value("status", ""), "draining") << r.out;
  EXPECT_EQ(c["instances"]["idle"], 1) << r.out;
  auto refused = Invoke(*daemon_, "sleepy", R"({"seconds": 0})", &body);
  EXPECT_NE(refused.err.find("ServiceUnavailableException"), std::string::npos) << refused.err;
  EXPECT_TRUE(daemon_->Alive());
  EXPECT_EQ(daemon_->Cli({"list"}).exit_code, 0);  // the rest of the API still answers
}

// ---- SIGHUP reloads ----

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("reload");
    config_ = dir_ + "/forkletd.json";
    Write(R"({"max-concurrency": 1, "keep-alive": 600})");
    daemon_ = StartWithEnv({{"NOTIFY_SOCKET", notify_.path()}}, {"--config", config_});
    ASSERT_TRUE(notify_.WaitFor("READY=1")) << notify_.seen();
    ASSERT_EQ(Deploy(*daemon_, "sleepy", "sleep", {"--timeout", "30"}).exit_code, 0);
  }
  void TearDown() override {
    daemon_.reset();
    fs::remove_all(dir_);
  }
  void Write(const std::string& text) { std::ofstream(config_) << text; }
  // SIGHUP, then wait for the reload to be done (RELOADING=1, then READY=1 again).
  void Reload() {
    kill(daemon_->pid(), SIGHUP);
    ASSERT_TRUE(notify_.WaitFor("RELOADING=1")) << notify_.seen();
    ASSERT_TRUE(notify_.WaitFor("READY=1")) << notify_.seen();
  }
  // Two invocations at once; returns how many were throttled.
  int ThrottledOfTwo() {
    auto call = [&] {
      std::string body;
      return Invoke(*daemon_, "sleepy", R"({"seconds": 3})", &body);
    };
    auto a = std::async(std::launch::async, call);
    auto b = std::async(std::launch::async, call);
    int throttled = 0;
    for (auto* f : {&a, &b}) {
      auto r = f->get();
      if (r.err.find("TooManyRequestsException") != std::string::npos) ++throttled;
      else EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    return throttled;
  }
  NotifySocket notify_;
  std::string dir_, config_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(ReloadTest, SighupChangesTheConcurrencyLimitLiveAndKeepsWarmInstances) {
  EXPECT_EQ(ThrottledOfTwo(), 1);
  EXPECT_EQ(Capacity(*daemon_)["max_concurrency"], 1);
  ASSERT_EQ(Capacity(*daemon_)["instances"]["idle"], 1);

  Write(R"({"max-concurrency": 2, "keep-alive": 600})");
  Reload();
  EXPECT_EQ(Capacity(*daemon_)["max_concurrency"], 2);
  // The warm instance survived the reload: the next invocation reuses it.
  EXPECT_EQ(Capacity(*daemon_)["instances"]["idle"], 1);
  auto warm = Curl(*daemon_, {"-i", "-X", "POST", "-d", R"({"seconds": 0})",
                              daemon_->endpoint() + "/2015-03-31/functions/sleepy/invocations"});
  EXPECT_NE(warm.out.find("X-Forklet-Start-Kind: warm"), std::string::npos) << warm.out;
  EXPECT_EQ(ThrottledOfTwo(), 0);
}

TEST_F(ReloadTest, AnInvalidFileKeepsTheRunningConfiguration) {
  Write(R"({"max-concurrency": 3)");  // cut short
  Reload();
  EXPECT_EQ(Capacity(*daemon_)["max_concurrency"], 1);
  Write(R"({"max-concurrency": 0})");  // out of range
  Reload();
  EXPECT_EQ(Capacity(*daemon_)["max_concurrency"], 1);
  Write(R"({"max-concurency": 3})");  // a typo is an error, not silently ignored
  Reload();
  EXPECT_EQ(Capacity(*daemon_)["max_concurrency"], 1);
  EXPECT_TRUE(daemon_->Alive());
}

TEST_F(ReloadTest, FlagsWinOverTheFile) {
  daemon_.reset();
  Write(R"({"max-concurrency": 5, "keep-alive": 42})");
  daemon_ = Daemon::Start({"--config", config_, "--max-concurrency", "7"});
  auto c = Capacity(*daemon_);
  EXPECT_EQ(c["max_concurrency"], 7);
  EXPECT_EQ(c["keep_alive_s"], 42);
}

TEST(ConfigFile, ABadFileStopsTheDaemonWithTheFileNamed) {
  std::string dir = TempDir("badconfig");
  std::ofstream(dir + "/forkletd.json") << R"({"keep-alive": "soon"})";
  auto r = forklet::testing::Run(
      {FORKLETD_PATH, "--config", dir + "/forkletd.json", "--state-dir", dir + "/state"});
  fs::remove_all(dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("<3>forkletd: configuration " + dir +
                       "/forkletd.json: --keep-alive: expected a number"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace forklet::testing
