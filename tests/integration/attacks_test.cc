// Hostile functions (tests/attacks/<name>/app.py): each tries one escape, one way to starve the
// host, or one way to break the daemon's protocol, and reports what it got. Every attack must end
// contained, with a neighbour function answering throughout. docs/attacks.md maps each attack to
// what stops it and to its test here.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "sandbox/code_image.h"
#include "sandbox/host_probe.h"
#include "tests/integration/daemon.h"
#include "tests/soak/daemon_footprint.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

// One invocation as a client sees it.
struct Invocation {
  int status = 0;
  std::string function_error;  // X-Amz-Function-Error
  std::string outcome;         // X-Forklet-Outcome: success, unhandled, timeout, oom, crashed
  std::string log;             // decoded X-Amz-Log-Result
  std::string raw;
  json body;
};

Invocation Call(Daemon& d, const std::string& fn, const json& event, bool tail = false) {
  std::map<std::string, std::string> h;
  if (tail) h["X-Amz-Log-Type"] = "Tail";
  auto r = api::HttpCall(d.endpoint(), "POST", "/2015-03-31/functions/" + fn + "/invocations",
                         event.dump(), h);
  Invocation out;
  if (!r) {
    out.raw = r.error().ToString();
    return out;
  }
  auto header = [&](const char* name) {
    auto it = r->headers.find(name);
    return it == r->headers.end() ? std::string() : it->second;
  };
  out.status = r->status;
  out.function_error = header("x-amz-function-error");
  out.outcome = header("x-forklet-outcome");
  out.log = Base64Decode(header("x-amz-log-result"));
  out.raw = r->body;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

void DropInstances(Daemon& d, const std::string& fn) {
  ASSERT_TRUE(api::HttpCall(d.endpoint(), "POST", "/forklet/v1/admin/instances/drop?function=" + fn));
}

std::string Errno(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Invokes the neighbour without pause while an attack runs, and keeps what went wrong.
class NeighbourWatch {
 public:
  explicit NeighbourWatch(Daemon* d) : d_(d), thread_([this] { Loop(); }) {}
  ~NeighbourWatch() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int answered() const { return answered_; }
  std::vector<std::string> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  // The handler's own time, and the client's round trip, of each answered invocation.
  std::vector<double> work_ms() {
    std::lock_guard lock(mu_);
    return work_ms_;
  }
  std::vector<double> latency_ms() {
    std::lock_guard lock(mu_);
    return latency_ms_;
  }

 private:
  void Loop() {
    while (!stop_) {
      auto t0 = std::chrono::steady_clock::now();
      auto i = Call(*d_, "neighbour", json::object());
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      {
        std::lock_guard lock(mu_);
        if (i.status != 200 || !i.function_error.empty() || !i.body.contains("instance")) {
          failures_.push_back(std::to_string(i.status) + " " + i.raw);
        } else {
          ++answered_;
          work_ms_.push_back(i.body["work_ms"].get<double>());
          latency_ms_.push_back(ms);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  Daemon* d_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<double> work_ms_, latency_ms_;
  std::thread thread_;
};

class AttacksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A secret in the daemon's environment: no instance may ever see it.
    canary_ = "forklet-canary-" + std::to_string(getpid());
    setenv("FORKLET_ATTACK_CANARY", canary_.c_str(), 1);
    daemon_ = Daemon::Start({"--tmp-size-mb", "16"}).release();
    unsetenv("FORKLET_ATTACK_CANARY");
    tag_ = CgroupTag(*daemon_);
    auto r = DeployDir(*daemon_, "neighbour", Dir("neighbour"), {"--timeout", "5"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(daemon_, nullptr);
    auto n = Call(*daemon_, "neighbour", json::object());
    ASSERT_EQ(n.status, 200) << n.raw;
    watch_ = std::make_unique<NeighbourWatch>(daemon_);
  }
  void TearDown() override {
    watch_->Stop();
    for (const auto& f : watch_->failures()) ADD_FAILURE() << "the neighbour failed during the attack: " << f;
    EXPECT_TRUE(daemon_->Alive()) << daemon_->log();
    auto n = Call(*daemon_, "neighbour", json::object());
    EXPECT_EQ(n.status, 200) << n.raw;
    EXPECT_TRUE(n.function_error.empty()) << n.raw;
  }

  static std::string Dir(const std::string& name) { return std::string(ATTACKS_DIR) + "/" + name; }
  // Once per daemon (the suite shares one when its tests run in one process).
  static void Deploy(const std::string& fn, const std::string& dir,
                     const std::vector<std::string>& extra = {}) {
    auto exists = api::HttpCall(daemon_->endpoint(), "GET", "/2015-03-31/functions/" + fn);
    if (exists && exists->status == 200) return;
    auto r = DeployDir(*daemon_, fn, Dir(dir), extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static Invocation Attack(const std::string& fn, const json& event = json::object(), bool tail = false) {
    return Call(*daemon_, fn, event, tail);
  }
  // The attack's own report: a successful invocation whose body says what it got.
  static json Report(const std::string& fn, const json& event = json::object()) {
    auto i = Attack(fn, event);
    EXPECT_EQ(i.status, 200) << i.raw;
    EXPECT_TRUE(i.function_error.empty()) << i.raw;
    return i.body;
  }
  static int DaemonPort() {
    auto e = daemon_->endpoint();
    return std::stoi(e.substr(e.rfind(':') + 1));
  }
  static std::vector<pid_t> IdlePids() {
    std::vector<pid_t> pids;
    json health = Health(*daemon_);
    for (auto& p : health["instances"]["idle_pids"]) pids.push_back(p.get<pid_t>());
    return pids;
  }

  static Daemon* daemon_;
  static std::string canary_, tag_;
  std::unique_ptr<NeighbourWatch> watch_;
};
Daemon* AttacksTest::daemon_ = nullptr;
std::string AttacksTest::canary_, AttacksTest::tag_;

// ---- host secrets, other functions' files, writes outside /tmp ----

TEST_F(AttacksTest, CannotReadHostSecretsOrAnotherInstancesFiles) {
  Deploy("victim", "victim");
  Deploy("read_secrets", "read_secrets");
  std::string secret = "forklet-secret-" + std::to_string(getpid());
  json hold{{"abstract_name", "forklet-victim"}, {"ipc_key", 4242}, {"secret_name", "secret"},
            {"secret", secret}};
  ASSERT_EQ(Attack("victim", hold).status, 200);  // stays warm, holding its /tmp secret
  // The neighbour's unpacked code revision, as its record names it.
  std::ifstream record(daemon_->state_dir() + "/functions/neighbour/function.json");
  json rec = json::parse(record);
  std::string code = daemon_->state_dir() + "/code/" + rec["function_id"].get<std::string>() + "-" +
                     std::to_string(rec["code_revision"].get<uint64_t>());
  ASSERT_TRUE(fs::is_directory(code)) << code;
  const std::string source_dir = fs::path(ATTACKS_DIR).parent_path().parent_path().string();
  auto r = Report("read_secrets", {{"state_dir", daemon_->state_dir()}, {"other_code_dir", code},
                                   {"secret", secret}, {"canary", canary_},
                                   {"host_markers", {daemon_->state_dir(), source_dir}}});
  EXPECT_EQ(r["read"], json::object()) << "read what is not its own: " << r["read"].dump();
  // /etc and the runners are tmpfs copies (a bind showed their host paths as its root); the
  // zygote's command line (every forked instance's /proc/1/cmdline) is neutral, and so is a cold
  // Python instance's (it execs the interpreter with sandbox paths only); /proc/cmdline masked.
  for (const char* m : {"/etc", "/var/runtime"}) {
    EXPECT_EQ(r["mounts"][m]["fstype"], "tmpfs") << m;
    EXPECT_EQ(r["mounts"][m]["root"], "/") << m;
  }
  EXPECT_EQ(r["proc_cmdline"], "") << "the host's boot line";
  const std::string cmdline = r["proc1_cmdline"].get<std::string>();
  EXPECT_TRUE(cmdline == "forklet-zygote" ||
              cmdline.rfind("python3 -I -S -B -c import sys; sys.path.insert(0, '/var/runtime/python'); ", 0) == 0)
      << cmdline;
  for (const std::string& host : {daemon_->state_dir(), source_dir})
    EXPECT_EQ(cmdline.find(host), std::string::npos) << cmdline;
  // The code is a file system of its own (its EROFS image, mounted from the file): /var/task's
  // root is "/" and its source a descriptor's name. Without code images (no mkfs.erofs, a kernel
  // before 6.12), a bind of the code directory shows the directory's path (docs/attacks.md).
  auto leaks = r["host_paths"];
  if (sandbox::CodeImagesSupported()) {
    EXPECT_EQ(r["mounts"]["/var/task"]["fstype"], "erofs") << r["mounts"].dump();
    EXPECT_EQ(r["mounts"]["/var/task"]["root"], "/") << r["mounts"].dump();
  } else {
    ASSERT_LE(leaks["/proc/self/mountinfo"].size(), 1u) << leaks.dump();
    if (!leaks["/proc/self/mountinfo"].empty()) {
      EXPECT_NE(leaks["/proc/self/mountinfo"][0].get<std::string>().find(" /var/task "), std::string::npos)
          << leaks.dump();
    }
    leaks.erase("/proc/self/mountinfo");
  }
  EXPECT_EQ(leaks, json::object()) << "host paths in /proc";
  EXPECT_EQ(r["found_secret"], json::array());
  EXPECT_TRUE(r["proc1_is_self"]) << "PID 1 in its namespace is itself, not the host's init";
  EXPECT_FALSE(r["canary_in_proc1_environ"]);
  EXPECT_FALSE(r["canary_in_environ"]);
}

TEST_F(AttacksTest, CannotWriteOutsideItsTmp) {
  Deploy("write_outside", "write_outside");
  auto r = Report("write_outside", {{"state_dir", daemon_->state_dir()}});
  EXPECT_EQ(r["wrote"], json::array());
  EXPECT_FALSE(r["oom_score_adj_lowered"]);
  EXPECT_TRUE(r["tmp_writable"]);
  EXPECT_FALSE(fs::exists(daemon_->state_dir() + "/owned"));
}

// ---- processes, other instances, the network ----

TEST_F(AttacksTest, CannotSeeOrSignalHostOrOtherInstanceProcesses) {
  Deploy("see_processes", "see_processes");
  auto health = Health(*daemon_);
  pid_t zygote = health["zygotes"][0]["pid"].get<pid_t>();
  std::vector<pid_t> targets = {daemon_->pid(), zygote, getpid()};
  for (pid_t p : IdlePids()) targets.push_back(p);  // the neighbour's instance among them
  auto r = Report("see_processes", {{"host_pids", targets}});
  EXPECT_EQ(r["visible"], json({1})) << "only itself, its pid namespace's init";
  for (pid_t pid : targets) {
    const json& t = r[std::to_string(pid)];
    EXPECT_FALSE(t["proc_entry"]) << pid;
    EXPECT_EQ(Errno(t["kill0"]), "ESRCH") << pid;
    EXPECT_EQ(Errno(t["ptrace_attach"]), "EPERM") << pid;
    EXPECT_EQ(Errno(t["ptrace_seize"]), "EPERM") << pid;
    EXPECT_EQ(Errno(t["process_vm_readv"]), "EPERM") << pid;
    EXPECT_EQ(Errno(t["pidfd_open"]), "ESRCH") << pid;
  }
  EXPECT_EQ(Errno(r["ptrace_own_child"]), "EPERM");  // seccomp, not just the namespace
  EXPECT_EQ(Errno(r["process_vm_readv_self"]), "EPERM");
  // kill(-1, SIGKILL) reached only its own child: the host and the neighbour live on.
  EXPECT_TRUE(Running(daemon_->pid()));
  EXPECT_TRUE(Running(zygote));
  for (pid_t p : targets) EXPECT_TRUE(Running(p)) << p;
}

TEST_F(AttacksTest, CannotTalkToAnotherInstanceOrTheHost) {
  Deploy("victim", "victim");
  Deploy("cross_instance", "cross_instance");
  json hold{{"abstract_name", "forklet-victim"}, {"ipc_key", 4242}, {"secret_name", "secret"},
            {"secret", "s3cret"}};
  ASSERT_EQ(Attack("victim", hold).status, 200);
  // The host side: an abstract socket and SysV objects of this test process.
  std::string host_name = "forklet-attack-host-" + std::to_string(getpid());
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path + 1, host_name.data(), host_name.size());
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr),
                 offsetof(sockaddr_un, sun_path) + 1 + host_name.size()), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  key_t host_key = 0x464b0000 + (getpid() & 0xffff);
  int shm = shmget(host_key, 4096, IPC_CREAT | 0600);
  int msg = msgget(host_key, IPC_CREAT | 0600);
  ASSERT_GE(shm, 0);
  ASSERT_GE(msg, 0);
  auto r = Report("cross_instance", {{"abstract_names", {"forklet-victim", host_name}},
                                     {"ipc_keys", {4242, host_key}},
                                     {"daemon_socket", daemon_->state_dir() + "/forkletd.sock"},
                                     {"secret_name", "secret"}});
  shmctl(shm, IPC_RMID, nullptr);
  msgctl(msg, IPC_RMID, nullptr);
  close(listener);
  for (auto& [name, result] : r["abstract"].items()) EXPECT_EQ(Errno(result), "ECONNREFUSED") << name;
  for (auto& [key, kinds] : r["ipc"].items())
    for (auto& [kind, result] : kinds.items()) EXPECT_EQ(Errno(result), "ENOENT") << key << " " << kind;
  EXPECT_EQ(Errno(r["daemon_socket"]), "ENOENT");
  EXPECT_EQ(Errno(r["mq_open"]), "ENOENT");
  EXPECT_FALSE(r["secret_file"]);
}

// Its eth0 (egress, the default) leads out only; network_test.cc tries the host's addresses over it.
TEST_F(AttacksTest, ReachesNothingOfTheHostsLoopback) {
  Deploy("network", "network");
  auto r = Report("network", {{"daemon_port", DaemonPort()}});
  EXPECT_EQ(r["interfaces"], json({"lo", "eth0"}));
  EXPECT_EQ(r["routes_v4"], 2);  // its subnet and the default route through the bridge
  for (auto& dev : r["routes_v6"]) EXPECT_EQ(dev, "lo");
  EXPECT_EQ(Errno(r["host_v4"]), "ECONNREFUSED") << "the daemon's port on the host's loopback";
  EXPECT_NE(Errno(r["host_v6"]), "OK");
  EXPECT_EQ(Errno(r["raw_socket"]), "EPERM");
  EXPECT_EQ(Errno(r["packet_socket"]), "EPERM");
  EXPECT_EQ(Errno(r["netlink_add_address"]), "EPERM");
  EXPECT_EQ(Errno(r["own_loopback"]), "OK");
}

// ---- regaining privilege ----

TEST_F(AttacksTest, SetuidBinariesGiveNoPrivilege) {
  Deploy("setuid_exec", "setuid_exec", {"--timeout", "30"});
  auto r = Report("setuid_exec");
  EXPECT_FALSE(r["ran"].empty()) << "the host has setuid binaries (su, mount, passwd) to try";
  EXPECT_EQ(r["elevated"], json::array());
  EXPECT_TRUE(r["usr_nosuid"]);
}

TEST_F(AttacksTest, CannotMakeOrJoinNamespaces) {
  Deploy("namespaces", "namespaces");
  auto r = Report("namespaces");
  for (const char* group : {"unshare", "clone", "setns"})
    for (auto& [ns, result] : r[group].items()) EXPECT_EQ(Errno(result), "EPERM") << group << " " << ns;
  EXPECT_EQ(Errno(r["clone3"]), "ENOSYS");  // so that glibc falls back to the checked clone
}

TEST_F(AttacksTest, CannotMountPivotOrChroot) {
  Deploy("mounts", "mounts");
  auto r = Report("mounts");
  ASSERT_FALSE(r.empty());
  for (auto& [call, result] : r.items()) EXPECT_EQ(Errno(result), "EPERM") << call;
}

TEST_F(AttacksTest, KernelAttackSurfaceIsClosed) {
  Deploy("kernel_syscalls", "kernel_syscalls");
  auto r = Report("kernel_syscalls");
  for (auto& [call, result] : r.items()) {
    if (call == "socket_families" || call == "socketpair_families" || call == "socketpair_unix")
      continue;
    EXPECT_EQ(Errno(result), "EPERM") << call;
  }
  for (auto& [family, result] : r["socket_families"].items()) EXPECT_EQ(Errno(result), "EPERM") << family;
  // socketpair(AF_VSOCK) reached the vsock module (ENODEV) while socket(AF_VSOCK) was denied.
  ASSERT_FALSE(r["socketpair_families"].empty());
  for (auto& [family, result] : r["socketpair_families"].items())
    EXPECT_EQ(Errno(result), "EPERM") << "socketpair " << family;
  EXPECT_EQ(Errno(r["socketpair_unix"]), "OK");
}

long HostAioEvents() {
  std::ifstream in("/proc/sys/fs/aio-nr");
  long n = -1;
  in >> n;
  return n;
}

TEST_F(AttacksTest, LinuxAioContextsAreDenied) {
  Deploy("aio_exhaustion", "aio_exhaustion");
  const long before = HostAioEvents();
  auto r = Report("aio_exhaustion");
  EXPECT_EQ(r["io_setup"], json({"EPERM", "EPERM", "EPERM", "EPERM"})) << r.dump();
  // The warm instance would hold what it got: the host's table is as it was.
  EXPECT_EQ(HostAioEvents(), before);
  DropInstances(*daemon_, "aio_exhaustion");
}

TEST_F(AttacksTest, CannotInjectIntoATerminal) {
  Deploy("tiocsti", "tiocsti");
  auto r = Report("tiocsti");
  for (auto& [what, result] : r.items()) {
    if (what.rfind("tiocsti", 0) == 0 || what.rfind("tioclinux", 0) == 0) {
      EXPECT_EQ(Errno(result), "EPERM") << what;
    } else if (what.rfind("/dev/", 0) == 0) {
      EXPECT_EQ(Errno(result), "ENOENT") << what;
    }
  }
  EXPECT_EQ(Errno(r["other_ioctl_passes"]), "ENOTTY") << "only the two requests are filtered";
}

TEST_F(AttacksTest, ReachesNoDeviceNode) {
  Deploy("devices", "devices");
  auto r = Report("devices");
  EXPECT_EQ(r["dev"], json({"fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout",
                            "urandom", "zero"}));
  EXPECT_EQ(r["opened"], json::array());
  for (auto& [node, result] : r["mknod"].items()) EXPECT_EQ(Errno(result), "EPERM") << node;
}

TEST_F(AttacksTest, ForeignSyscallAbisAreKilled) {
  Deploy("foreign_abi", "foreign_abi");
  auto r = Report("foreign_abi");
  // SIGSYS from the filter where the kernel has a 32-bit entry; where it has none (no IA32
  // emulation), the CPU's fault comes first: SIGSEGV. No 32-bit syscall runs either way.
  EXPECT_EQ(r["int80"], forklet::sandbox::HasIa32SyscallEntry() ? "SIGSYS" : "SIGSEGV");
  EXPECT_EQ(r["x32"], "SIGSYS");
}

TEST_F(AttacksTest, InheritsNoDescriptorButItsOwn) {
  Deploy("inherited_fds", "inherited_fds");
  auto r = Report("inherited_fds")["fds"];
  ASSERT_EQ(r.size(), 4u) << r.dump();
  EXPECT_EQ(r["0"]["target"], "/dev/null");
  EXPECT_EQ(r["1"]["target"].get<std::string>().rfind("pipe:", 0), 0u);
  EXPECT_EQ(r["2"]["target"], r["1"]["target"]);
  EXPECT_EQ(r["3"]["type"], "stream") << "its channel; the zygote's control socket is seqpacket";
}

// ---- exhausting the host ----

TEST_F(AttacksTest, ForkBombStopsAtThePidsLimit) {
  Deploy("fork_bomb", "fork_bomb", {"--memory-size", "512", "--timeout", "60"});
  auto r = Report("fork_bomb");
  EXPECT_EQ(r["stopped_by"], "EAGAIN");
  EXPECT_LT(r["started"].get<int>(), 1024) << "the instance's pids limit";
  EXPECT_GT(r["started"].get<int>(), 100);
  EXPECT_EQ(forklet::testing::Run({"/bin/true"}).exit_code, 0) << "the host still forks";
}

TEST_F(AttacksTest, MemoryBombIsOomKilledAloneAndNeighboursLive) {
  Deploy("memory_bomb", "memory_bomb", {"--memory-size", "128", "--timeout", "60"});
  // Every process of the daemon's before the bomb: the zygote, the neighbour's instance.
  auto bystanders = Footprint(daemon_->pid(), tag_, daemon_->state_dir()).cgroup_pids;
  ASSERT_FALSE(bystanders.empty());
  auto i = Attack("memory_bomb");
  EXPECT_EQ(i.status, 200);
  EXPECT_EQ(i.function_error, "Unhandled");
  EXPECT_EQ(i.body["errorType"], "Runtime.OutOfMemory") << i.raw;
  for (pid_t p : bystanders) EXPECT_TRUE(Running(p)) << "the OOM killer took a bystander: " << p;
  // Within its limit, the same function works on a fresh instance.
  auto ok = Attack("memory_bomb", {{"mb", 32}});
  EXPECT_EQ(ok.body["allocated_mb"], 32) << ok.raw;
}

// The host's TCP memory (pages), from the "TCP: ... mem N" line of /proc/net/sockstat: one
// counter for every socket of the host, whatever its namespace.
long HostTcpPages() {
  std::ifstream in("/proc/net/sockstat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("TCP:", 0) != 0) continue;
    auto at = line.find(" mem ");
    return at == std::string::npos ? -1 : std::stol(line.substr(at + 5));
  }
  return -1;
}

TEST_F(AttacksTest, SocketBuffersAreChargedToTheInstance) {
  Deploy("socket_buffers", "socket_buffers", {"--memory-size", "128", "--timeout", "60"});
  const long page = sysconf(_SC_PAGESIZE);
  const long before = HostTcpPages();
  ASSERT_GE(before, 0);
  auto r = Report("socket_buffers", {{"connections", 100}});
  // The instance is idle now and keeps its connections: what they queued is still held.
  const long held = HostTcpPages() - before;
  RecordProperty("queued_mb", std::to_string(r["queued_mb"].get<double>()));
  RecordProperty("host_tcp_growth_mb", std::to_string(held * page >> 20));
  EXPECT_GT(r["queued_mb"].get<double>(), 1) << r.dump();
  // Unbounded, 100 connections queued 918 MB and the host's TCP memory grew by as much.
  EXPECT_LT(r["queued_mb"].get<double>(), 160) << "about its 128 MB, no more: " << r.dump();
  EXPECT_LT(held * page, 160l << 20) << "the host's TCP memory grew by " << (held * page >> 20) << " MB";
  EXPECT_TRUE(r["stopped_by"].contains("EAGAIN")) << "the instance's writes are refused: " << r.dump();
  // The host's own TCP still works: the daemon's API answers (TearDown asks it again).
  EXPECT_EQ(Call(*daemon_, "neighbour", json::object()).status, 200);
  DropInstances(*daemon_, "socket_buffers");
}

TEST_F(AttacksTest, DiskFillStopsAtTheTmpSizeLimit) {
  Deploy("disk_fill", "disk_fill", {"--memory-size", "256", "--timeout", "60"});
  auto r = Report("disk_fill");
  EXPECT_EQ(r["tmp_error"], "ENOSPC");
  // Its /tmp is its EphemeralStorage (512 MB by default), on disk.
  EXPECT_LE(r["tmp_bytes"].get<uint64_t>(), 512ull << 20);
  EXPECT_GT(r["tmp_bytes"].get<uint64_t>(), 400ull << 20);
  for (auto& [path, result] : r["others"].items()) EXPECT_EQ(result["bytes"], 0) << path;
  // The neighbour's /tmp is its own: it still takes writes.
  auto n = Call(*daemon_, "neighbour", {{"write_tmp_mb", 8}});
  EXPECT_EQ(n.status, 200);
  EXPECT_TRUE(n.function_error.empty()) << n.raw;
}

TEST_F(AttacksTest, FdExhaustionStopsAtItsOwnLimit) {
  Deploy("fd_exhaustion", "fd_exhaustion");
  int daemon_fds = Footprint(daemon_->pid(), tag_, daemon_->state_dir()).fds;
  auto r = Report("fd_exhaustion");
  EXPECT_EQ(r["stopped_by"], "EMFILE");
  EXPECT_LT(r["opened"].get<int>(), 1024);
  EXPECT_EQ(r["raise_limit"], "EPERM");
  EXPECT_LT(Footprint(daemon_->pid(), tag_, daemon_->state_dir()).fds, daemon_fds + 16)
      << "the daemon's own descriptors are not the instance's to take";
  EXPECT_EQ(Report("fd_exhaustion")["stopped_by"], "EMFILE") << "and again, warm";
}

TEST_F(AttacksTest, LogFloodIsBoundedAndTheInvocationStillEnds) {
  Deploy("log_flood", "log_flood", {"--timeout", "2"});
  long rss = Footprint(daemon_->pid(), tag_, daemon_->state_dir()).rss_kb;
  auto burst = Attack("log_flood", {{"mode", "burst"}, {"mb", 64}}, /*tail=*/true);
  EXPECT_EQ(burst.status, 200);
  EXPECT_EQ(burst.outcome, "success") << burst.raw;
  EXPECT_LE(burst.log.size(), 4096u);
  EXPECT_NE(burst.log.find("FLOOD-END"), std::string::npos) << "the tail of the output is kept";
  EXPECT_NE(burst.log.find("REPORT RequestId"), std::string::npos);
  EXPECT_LT(Footprint(daemon_->pid(), tag_, daemon_->state_dir()).rss_kb, rss + 32 * 1024)
      << "64 MB of output must not become the daemon's memory";
  // A flood that goes on after the response, then one that never ends.
  EXPECT_EQ(Attack("log_flood", {{"mode", "background"}}).outcome, "success");
  auto next = Attack("log_flood", {{"mode", "quiet"}});
  EXPECT_EQ(next.outcome, "success") << next.raw;
  auto forever = Attack("log_flood", {{"mode", "forever"}});
  EXPECT_EQ(forever.outcome, "timeout") << forever.raw;
  EXPECT_EQ(forever.body["errorMessage"], "Task timed out after 2.00 seconds");
}

// The daemon's CPU time (user + system) so far, in seconds (/proc/<pid>/stat fields 14 and 15).
double DaemonCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
  std::string f;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoul(f);
    if (i == 15) stime = std::stoul(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

TEST_F(AttacksTest, AnInstanceThatHangsUpItsOutputIsWaitedForAsleep) {
  Deploy("log_flood", "log_flood", {"--timeout", "10"});
  ASSERT_EQ(Attack("log_flood", {{"mode", "quiet"}}).outcome, "success");  // started: warm
  watch_->Stop();  // the neighbour's invocations cost the daemon CPU of their own
  double before = DaemonCpuSeconds(daemon_->pid());
  auto closed = Attack("log_flood", {{"mode", "closed"}, {"seconds", 2}});
  double spent = DaemonCpuSeconds(daemon_->pid()) - before;
  EXPECT_EQ(closed.outcome, "success") << closed.raw;
  EXPECT_EQ(closed.body["mode"], "closed") << closed.raw;
  // Polling a hung-up pipe in a loop would burn the 2 s of the wait (a daemon thread per such
  // invocation: a few of them would take the host's CPUs).
  EXPECT_LT(spent, 0.5) << "the daemon used " << spent << " s of CPU while one instance slept 2 s";
}

TEST_F(AttacksTest, CpuSpinLeavesTheNeighboursTheirShare) {
  Deploy("cpu_spin", "cpu_spin", {"--timeout", "30"});
  auto before = watch_->work_ms();
  auto before_latency = watch_->latency_ms();
  auto spin = std::async(std::launch::async, [] {
    return Attack("cpu_spin", {{"seconds", 6}, {"procs", 8}});
  });
  std::this_thread::sleep_for(std::chrono::seconds(7));
  auto i = spin.get();
  EXPECT_EQ(i.outcome, "success") << i.raw;
  auto during = watch_->work_ms();
  // Every neighbour invocation during the spin answered (TearDown checks); how fast is recorded
  // for the table in docs/attacks.md, not asserted (speed belongs to benchmarks).
  ASSERT_GT(during.size(), before.size() + 10) << "the neighbour kept being served";
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  auto latency = watch_->latency_ms();
  RecordProperty("neighbour_work_ms_median_before_spin", std::to_string(median(before)));
  RecordProperty("neighbour_work_ms_median_during_spin",
                 std::to_string(median({during.begin() + before.size(), during.end()})));
  RecordProperty("neighbour_latency_ms_median_before_spin", std::to_string(median(before_latency)));
  RecordProperty("neighbour_latency_ms_median_during_spin",
                 std::to_string(median({latency.begin() + before_latency.size(), latency.end()})));
}

// CPU time (ns) of the cgroup holding `pid`, read on the host: cpuacct.usage (v1) or cpu.stat's
// usage_usec (v2). -1 when it cannot be found.
int64_t CgroupCpuNs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line, v1, v2;
  while (std::getline(in, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (("," + controllers + ",").find(",cpuacct,") != std::string::npos) v1 = path;
    if (line.rfind("0::", 0) == 0) v2 = path;
  }
  for (const char* mount : {"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"}) {
    std::ifstream usage(std::string(mount) + v1 + "/cpuacct.usage");
    int64_t ns = -1;
    if (!v1.empty() && usage >> ns) return ns;
  }
  for (const char* mount : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    std::ifstream stat(std::string(mount) + v2 + "/cpu.stat");
    std::string key;
    int64_t us = 0;
    while (!v2.empty() && stat >> key >> us)
      if (key == "usage_usec") return us * 1000;
  }
  return -1;
}

TEST_F(AttacksTest, AnIdleInstanceDoesNotRun) {
  Deploy("after_response", "after_response", {"--memory-size", "1769", "--timeout", "10"});
  auto r = Report("after_response", {{"mode", "background"}});
  auto pids = ProcessesOfUid(tag_, r["uid"].get<uid_t>());
  ASSERT_GE(pids.size(), 2u) << "the instance and its spinner";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // freezing is asynchronous
  const int64_t t0 = CgroupCpuNs(pids[0]);
  ASSERT_GE(t0, 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int64_t idle_ms = (CgroupCpuNs(pids[0]) - t0) / 1'000'000;
  RecordProperty("idle_cpu_ms_over_2s", std::to_string(idle_ms));
  // Unfrozen, the spinner took a full core (a 1,769 MB function's quota): 2,000 ms.
  EXPECT_LT(idle_ms, 50) << "an idle instance used " << idle_ms << " ms of CPU in 2 s";
  // The next invocation thaws it: the instance answers, and its spinner runs again meanwhile.
  auto again = Report("after_response", {{"mode", "spin"}, {"seconds", 0.5}});
  EXPECT_EQ(again["uid"], r["uid"]) << "the same (warm) instance";
  DropInstances(*daemon_, "after_response");
}

TEST_F(AttacksTest, CpuIsCappedInProportionToMemory) {
  Deploy("spin_885", "after_response", {"--memory-size", "885", "--timeout", "10"});
  Report("spin_885", {{"mode", "spin"}, {"seconds", 0.1}});  // the first start: init is not capped
  auto r = Report("spin_885", {{"mode", "spin"}, {"seconds", 2}});
  const double cpu_ms = r["cpu_ms"].get<double>();
  RecordProperty("cpu_ms_in_2s_at_885mb", std::to_string(cpu_ms));
  // 885/1769 of a core is 1,000 ms in 2 s; uncapped on an idle core it was 2,000.
  EXPECT_LT(cpu_ms, 1400) << "an 885 MB function got " << cpu_ms << " ms of CPU in 2 s";
  EXPECT_GT(cpu_ms, 100) << "but it does get its share";
  DropInstances(*daemon_, "spin_885");
}

// Memory charged (bytes) to the cgroup holding `pid`: memory.usage_in_bytes (v1) or
// memory.current (v2). -1 when it cannot be found.
int64_t CgroupMemoryBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    const bool v1 = ("," + controllers + ",").find(",memory,") != std::string::npos;
    if (!v1 && line.rfind("0::", 0) != 0) continue;
    std::ifstream f(v1 ? "/sys/fs/cgroup/memory" + path + "/memory.usage_in_bytes"
                       : "/sys/fs/cgroup" + path + "/memory.current");
    int64_t bytes = -1;
    if (f >> bytes) return bytes;
  }
  return -1;
}

// The kernel tables an instance can fill besides files and processes: each is bounded per
// instance (its uid's limits, its own IPC namespace) or charged to its memory, which it holds while
// it idles. Reports and charges are recorded for docs/attacks.md.
TEST_F(AttacksTest, KernelTablesAreBoundedPerInstanceAndCharged) {
  Deploy("kernel_tables", "kernel_tables", {"--memory-size", "128", "--timeout", "60"});
  auto probe = [&](json event) {
    const std::string mode = event["mode"];
    auto i = Attack("kernel_tables", event);
    int64_t charged = -1;
    if (i.body.contains("uid")) {
      auto pids = ProcessesOfUid(tag_, i.body["uid"].get<uid_t>());
      if (!pids.empty()) charged = CgroupMemoryBytes(pids[0]);
    }
    RecordProperty(mode + "_outcome", i.outcome);
    RecordProperty(mode + "_report", i.raw.substr(0, 300));
    RecordProperty(mode + "_charged_mb", std::to_string(charged >> 20));
    DropInstances(*daemon_, "kernel_tables");
    return std::make_pair(i, charged);
  };
  // Unix socket buffers (2 processes x 450 pairs x ~208 KB of send buffer) and System V message
  // queues (its own IPC namespace: 32,000 queues of 16 KB) could hold far more than 128 MB: both are
  // charged to the instance, whose OOM killer ends it.
  for (const json& event : {json{{"mode", "unix"}, {"procs", 2}, {"fds", 900}}, json{{"mode", "sysv"}}}) {
    auto [i, charged] = probe(event);
    if (i.outcome == "success") {
      EXPECT_LT(i.body["queued_mb"].get<double>(), 160) << i.raw;
    } else {
      EXPECT_EQ(i.outcome, "oom") << i.raw;
    }
  }
  // inotify: the per-user limits, and each instance has a uid of its own.
  auto [inotify, inotify_charged] = probe({{"mode", "inotify"}});
  auto sysctl = [](const char* path) {
    std::ifstream in(path);
    long n = -1;
    in >> n;
    return n;
  };
  EXPECT_EQ(inotify.body["instances"], sysctl("/proc/sys/fs/inotify/max_user_instances")) << inotify.raw;
  EXPECT_LE(inotify.body["watches"].get<long>(), sysctl("/proc/sys/fs/inotify/max_user_watches"));
  EXPECT_GT(inotify_charged, 0) << "the watches' memory is the instance's";
  // POSIX locks: no count limit (RLIMIT_LOCKS is not enforced), charged to the instance's memory.
  auto [locks, locks_charged] = probe({{"mode", "locks"}});
  EXPECT_EQ(locks.outcome, "success") << locks.raw;
  EXPECT_GT(locks_charged, 0);
}

TEST_F(AttacksTest, AHandlerThatNeverReturnsIsKilledAtItsTimeout) {
  Deploy("never_returns", "never_returns", {"--timeout", "1"});
  for (const char* mode : {"spin", "sleep", "deaf"}) {
    auto i = Attack("never_returns", {{"mode", mode}});
    EXPECT_EQ(i.outcome, "timeout") << mode << ": " << i.raw;
    EXPECT_EQ(i.body["errorMessage"], "Task timed out after 1.00 seconds") << mode;
  }
  EXPECT_EQ(Attack("never_returns", {{"mode", "ok"}}).outcome, "success");
}

TEST_F(AttacksTest, ProcessesLeftBehindDieWithTheInstance) {
  Deploy("orphans", "orphans");
  auto r = Report("orphans");
  uid_t uid = r["uid"].get<uid_t>();
  // While the instance is warm its processes may live (the Lambda model); then they go with it.
  EXPECT_GE(ProcessesOfUid(tag_, uid).size(), 4u) << "the instance and its three sleepers";
  DropInstances(*daemon_, "orphans");
  for (int t = 0; t < 100 && !ProcessesOfUid(tag_, uid).empty(); ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ProcessesOfUid(tag_, uid), std::vector<pid_t>{});
  EXPECT_EQ(Footprint(daemon_->pid(), tag_, daemon_->state_dir()).zombie_children, std::vector<pid_t>{});
}

// ---- breaking the protocol ----

// A broken channel ends the instance at once as a crash (not at the timeout), as a function error.
void ExpectCrashed(const Invocation& i, const std::string& what) {
  EXPECT_EQ(i.status, 200) << what << ": " << i.raw;
  EXPECT_EQ(i.function_error, "Unhandled") << what;
  EXPECT_EQ(i.outcome, "crashed") << what << ": " << i.raw;
  EXPECT_EQ(i.body["errorType"], "Runtime.ExitError") << what << ": " << i.raw;
}

TEST_F(AttacksTest, GarbageOnTheChannelEndsOnlyThatInstance) {
  Deploy("channel_garbage", "channel_garbage", {"--timeout", "30"});
  for (const char* mode : {"random", "wrong_type"})
    ExpectCrashed(Attack("channel_garbage", {{"mode", mode}}), mode);
}

TEST_F(AttacksTest, OversizedFramesAreRefusedWithoutWaitingOrAllocating) {
  Deploy("channel_oversized", "channel_oversized", {"--timeout", "2"});
  long rss = Footprint(daemon_->pid(), tag_, daemon_->state_dir()).rss_kb;
  ExpectCrashed(Attack("channel_oversized", {{"mode", "huge"}}), "huge");  // metadata past the protocol
  // A result past Lambda's 6 MB is read and dropped into a scratch buffer, never allocated, so that
  // a healthy instance lives on with Function.ResponseSizeTooLarge; one that never sends what it
  // announced is waited for until its timeout, no longer.
  auto just_over = Attack("channel_oversized", {{"mode", "just_over"}});
  EXPECT_EQ(just_over.outcome, "timeout") << just_over.raw;
  EXPECT_LT(Footprint(daemon_->pid(), tag_, daemon_->state_dir()).rss_kb, rss + 32 * 1024);
  auto stall = Attack("channel_oversized", {{"mode", "stall"}});
  EXPECT_EQ(stall.outcome, "timeout") << "half a frame is waited for until the timeout, no longer";
}

TEST_F(AttacksTest, LyingMetadataIsAFunctionErrorAndLeaksNoCapacity) {
  Deploy("channel_bad_meta", "channel_bad_meta", {"--timeout", "30"});
  // More than the concurrency limit (10): a leaked slot per attack would end in 429s.
  for (int round = 0; round < 4; ++round)
    for (const char* mode : {"types", "not_json", "deep"})
      ExpectCrashed(Attack("channel_bad_meta", {{"mode", mode}}), mode);
  watch_->Stop();  // the neighbour's own invocation in flight would count as busy too
  auto counts = Health(*daemon_)["instances"];
  EXPECT_EQ(counts["busy"], 0) << counts.dump();
}

TEST_F(AttacksTest, ClosingTheChannelMidResponseEndsTheInstance) {
  Deploy("channel_close", "channel_close", {"--timeout", "30"});
  for (const char* mode : {"partial_exit", "close_and_live"})
    ExpectCrashed(Attack("channel_close", {{"mode", mode}}), mode);
}

TEST_F(AttacksTest, DescriptorsPassedOnTheChannelAreNotKept) {
  Deploy("channel_fd_passing", "channel_fd_passing");
  ASSERT_EQ(Report("channel_fd_passing")["passed_fds"], 1000);
  int fds = Footprint(daemon_->pid(), tag_, daemon_->state_dir()).fds;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Report("channel_fd_passing")["passed_fds"], 1000);
  EXPECT_LT(Footprint(daemon_->pid(), tag_, daemon_->state_dir()).fds, fds + 16)
      << "3000 descriptors were sent; none may stay with the daemon";
}

TEST_F(AttacksTest, ExitDuringInitIsAnInitError) {
  Deploy("exit_in_init", "exit_in_init");
  auto i = Attack("exit_in_init");
  EXPECT_EQ(i.status, 200) << i.raw;
  EXPECT_EQ(i.function_error, "Unhandled");
  EXPECT_EQ(i.body["errorMessage"], "Runtime exited during init") << i.raw;
}

TEST_F(AttacksTest, HostileFramesDuringInitAreAnInitErrorNotAServiceError) {
  for (const char* mode : {"deep", "types", "wrong_type", "garbage"})
    Deploy(std::string("init_") + mode, "init_bad_frame",
           {"--environment", std::string("Variables={MODE=") + mode + "}"});
  // Its own init error: passed on in Lambda's shape only (no forged fields, no deep nesting).
  auto deep = Attack("init_deep");
  EXPECT_EQ(deep.status, 200) << deep.raw;
  EXPECT_EQ(deep.body, json({{"errorMessage", "deep"}, {"errorType", "Deep"}})) << deep.raw;
  for (const char* mode : {"types", "wrong_type", "garbage"}) {
    auto i = Attack(std::string("init_") + mode);
    EXPECT_EQ(i.status, 200) << mode << ": " << i.raw;
    EXPECT_EQ(i.function_error, "Unhandled") << mode;
    EXPECT_EQ(i.body["errorType"], "Runtime.ExitError") << mode << ": " << i.raw;
  }
  watch_->Stop();  // the neighbour's own invocation in flight would count as busy too
  EXPECT_EQ(Health(*daemon_)["instances"]["busy"], 0);
}

// A daemon of its own: its subtree's pids limit is set low enough for three instances to reach.
TEST(SubtreeLimitsTest, APidsFloodAcrossInstancesStopsAtTheSubtreeLimit) {
  constexpr int kSubtree = 1500, kEach = 700, kBombs = 3;
  auto d = Daemon::Start({"--subtree-pids", std::to_string(kSubtree), "--no-warmup"});
  ASSERT_TRUE(d);
  auto dep = DeployDir(*d, "bomb", std::string(ATTACKS_DIR) + "/fork_bomb",
                       {"--memory-size", "1769", "--timeout", "60"});
  ASSERT_EQ(dep.exit_code, 0) << dep.err;
  std::vector<std::future<Invocation>> bombs;
  for (int i = 0; i < kBombs; ++i)
    bombs.push_back(std::async(std::launch::async, [&] {
      return Call(*d, "bomb", {{"max", kEach}, {"hold_s", 6}});
    }));
  std::this_thread::sleep_for(std::chrono::seconds(4));  // all three hold what they got
  EXPECT_EQ(forklet::testing::Run({"/bin/true"}).exit_code, 0) << "the host still forks";
  int total = 0, refused = 0;
  for (auto& f : bombs) {
    auto i = f.get();
    ASSERT_EQ(i.status, 200) << i.raw;
    ASSERT_TRUE(i.function_error.empty()) << i.raw;
    total += i.body["started"].get<int>();
    if (i.body["stopped_by"] == "EAGAIN") ++refused;
  }
  RecordProperty("started_in_all_instances", std::to_string(total));
  EXPECT_LT(total, kSubtree) << "the zygote and the instances themselves count too";
  EXPECT_GT(total, kSubtree - 100);
  EXPECT_GE(refused, 1) << "3 x " << kEach << " asked for more than the subtree holds";
  // Once they let go, the subtree is free again.
  auto after = Call(*d, "bomb", {{"max", kEach}});
  EXPECT_EQ(after.body["started"], kEach) << after.raw;
}

}  // namespace
}  // namespace forklet::testing
