// Tests for the default seccomp policy: every probe runs in a forked child under the filter.
#include "sandbox/seccomp_policy.h"
#include "sandbox/host_probe.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace forklet::sandbox {
namespace {

constexpr int kSetupFailed = 255;

// In a forked child: no_new_privs, then the filter, as the real child setup does.
void ConfineSelfOrExit(const SeccompProgram& prog) {
  sock_fprog fprog = prog.fprog();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || InstallSeccompInChild(&fprog) != 0)
    _exit(kSetupFailed);
}

std::string Describe(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by SIG") + sigabbrev_np(WTERMSIG(status));
  int code = WEXITSTATUS(status);
  if (code == 0) return "ok";
  if (code == kSetupFailed) return "setup failed";
  const char* name = strerrorname_np(code);
  return name ? name : "exit " + std::to_string(code);
}

int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// What `call` does inside a confined child: "ok", an errno name ("EPERM"), or "killed by SIGSYS".
// `call` returns -1 with errno set on failure, as syscalls do.
std::string Outcome(const SeccompProgram& prog, const std::function<long()>& call) {
  pid_t pid = fork();
  if (pid == 0) {
    ConfineSelfOrExit(prog);
    _exit(call() == -1 ? errno : 0);
  }
  return Describe(Wait(pid));
}

struct CommandResult {
  std::string outcome;  // as Outcome: "ok" is exit status 0
  std::string output;   // stdout and stderr
};

// Execs argv under the filter with a small environment; a hung command dies after 60 s.
CommandResult RunConfined(const SeccompProgram& prog, std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  char* env[] = {const_cast<char*>("PATH=/usr/bin:/bin"), const_cast<char*>("HOME=/tmp"),
                 const_cast<char*>("LANG=C.UTF-8"), nullptr};
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return {"pipe failed", ""};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    alarm(60);  // survives execve
    ConfineSelfOrExit(prog);
    execve(args[0], args.data(), env);
    _exit(errno);
  }
  close(out[1]);
  CommandResult r;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) != 0;) {
    if (n > 0) r.output.append(buf, n);
    else if (errno != EINTR) break;
  }
  close(out[0]);
  r.outcome = Describe(Wait(pid));
  return r;
}

class SeccompPolicyTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto compiled = CompileDefaultPolicy();
    if (compiled) program_ = std::move(compiled).value();
    else error_ = compiled.error().ToString();
  }
  void SetUp() override { ASSERT_TRUE(program_.has_value()) << error_; }
  std::string Try(const std::function<long()>& call) { return Outcome(*program_, call); }
  CommandResult Run(std::vector<std::string> argv) { return RunConfined(*program_, argv); }

  static inline std::optional<SeccompProgram> program_;
  static inline std::string error_;
};

TEST_F(SeccompPolicyTest, CompilesToAProgramTheKernelAccepts) {
  EXPECT_GT(program_->instructions.size(), 0u);
  EXPECT_LE(program_->instructions.size(), static_cast<size_t>(BPF_MAXINSNS));
  EXPECT_EQ(Try([] { return 0L; }), "ok");

  auto start = std::chrono::steady_clock::now();
  auto again = CompileDefaultPolicy();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->instructions.size(), program_->instructions.size());
  EXPECT_LT(us, 1'000'000) << "compiled once per daemon, but should still be quick";
  RecordProperty("instructions", static_cast<int>(program_->instructions.size()));
  RecordProperty("compile_us", static_cast<int>(us));
  std::printf("[ info     ] %zu instructions, compiled in %lld us\n",
              program_->instructions.size(), static_cast<long long>(us));
}

TEST_F(SeccompPolicyTest, InstallRejectsAnEmptyProgram) {
  sock_fprog empty{0, nullptr};
  EXPECT_EQ(InstallSeccompInChild(nullptr), -EINVAL);
  EXPECT_EQ(InstallSeccompInChild(&empty), -EINVAL);
}

TEST_F(SeccompPolicyTest, AllowsGetpidPipesAndFiles) {
  EXPECT_EQ(Try([] { return getpid() > 0 ? 0L : -1L; }), "ok");
  EXPECT_EQ(Try([] {
              int p[2];
              if (pipe2(p, O_CLOEXEC) != 0) return -1L;
              return write(p[1], "x", 1) == 1 ? 0L : -1L;
            }),
            "ok");
  EXPECT_EQ(Try([] {
              int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY | O_CLOEXEC);
              char c;
              return fd >= 0 && read(fd, &c, 1) >= 0 ? 0L : -1L;
            }),
            "ok");
}

TEST_F(SeccompPolicyTest, AllowsForkAndThreads) {
  EXPECT_EQ(Try([] {
              pid_t pid = fork();
              if (pid == 0) _exit(7);
              int status = pid > 0 ? Wait(pid) : 0;
              return WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0L : -1L;
            }),
            "ok");
  EXPECT_EQ(Try([] {
              int ran = 0;
              std::thread([&] { ran = 1; }).join();  // glibc tries clone3, then clone
              return ran == 1 ? 0L : -1L;
            }),
            "ok");
}

TEST_F(SeccompPolicyTest, AllowsLoopbackTcp) {
  EXPECT_EQ(Try([] {
              sockaddr_in addr{};
              addr.sin_family = AF_INET;
              addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
              socklen_t len = sizeof addr;
              auto* sa = reinterpret_cast<sockaddr*>(&addr);
              int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
              if (srv < 0 || bind(srv, sa, len) != 0 || listen(srv, 1) != 0 ||
                  getsockname(srv, sa, &len) != 0)
                return -1L;
              int cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
              if (cli < 0 || connect(cli, sa, len) != 0) return -1L;
              int conn = accept4(srv, nullptr, nullptr, SOCK_CLOEXEC);
              char c = 0;
              if (conn < 0 || send(cli, "x", 1, 0) != 1 || recv(conn, &c, 1, 0) != 1) return -1L;
              return c == 'x' ? 0L : -1L;
            }),
            "ok");
}

TEST_F(SeccompPolicyTest, AllowsOnlyOrdinarySocketFamilies) {
  for (int family : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}) {
    SCOPED_TRACE(family);
    int type = family == AF_NETLINK ? SOCK_RAW : SOCK_DGRAM;
    EXPECT_EQ(Try([=] { return socket(family, type, 0) >= 0 ? 0L : -1L; }), "ok");
  }
  for (int family : {AF_PACKET, AF_VSOCK, AF_ALG, AF_BLUETOOTH}) {
    SCOPED_TRACE(family);
    EXPECT_EQ(Try([=] { return static_cast<long>(socket(family, SOCK_DGRAM, 0)); }), "EPERM");
  }
}

TEST_F(SeccompPolicyTest, DeniesNamespacesMountsAndTracing) {
  // The test runs as root, so each call would work (or fail otherwise) without the filter.
  EXPECT_EQ(Try([] { return long{mount("none", "/nonexistent", "tmpfs", 0, nullptr)}; }), "EPERM");
  EXPECT_EQ(Try([] { return long{unshare(CLONE_NEWUSER)}; }), "EPERM");
  EXPECT_EQ(Try([] {
              int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
              return fd < 0 ? -1L : setns(fd, CLONE_NEWUTS);
            }),
            "EPERM");
  EXPECT_EQ(Try([] {
              long rc = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
              if (rc == 0) _exit(0);
              return rc > 0 ? 0L : rc;
            }),
            "EPERM");
  EXPECT_EQ(Try([] { return ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); }), "EPERM");
}

TEST_F(SeccompPolicyTest, DeniesKernelAttackSurface) {
  EXPECT_EQ(Try([] {
              bpf_attr attr{};
              attr.map_type = BPF_MAP_TYPE_ARRAY;
              attr.key_size = 4;
              attr.value_size = 4;
              attr.max_entries = 1;
              return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
            }),
            "EPERM");
  EXPECT_EQ(Try([] {
              return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1);
            }),
            "EPERM");
  EXPECT_EQ(Try([] {
              perf_event_attr attr{};
              attr.size = sizeof attr;
              attr.type = PERF_TYPE_SOFTWARE;
              attr.config = PERF_COUNT_SW_CPU_CLOCK;
              attr.disabled = 1;
              return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
            }),
            "EPERM");
  EXPECT_EQ(Try([] { return syscall(SYS_userfaultfd, O_CLOEXEC); }), "EPERM");
  EXPECT_EQ(Try([] { return syscall(SYS_io_uring_setup, 1, nullptr); }), "EPERM");
}

TEST_F(SeccompPolicyTest, AllowsOnlyHarmlessPersonalities) {
  EXPECT_EQ(Try([] { return long{personality(0xffffffff)}; }), "ok");  // a query
  EXPECT_EQ(Try([] { return long{personality(PER_LINUX)}; }), "ok");
  EXPECT_EQ(Try([] { return long{personality(READ_IMPLIES_EXEC)}; }), "EPERM");
  EXPECT_EQ(Try([] { return long{personality(ADDR_NO_RANDOMIZE)}; }), "EPERM");
}

TEST_F(SeccompPolicyTest, DeniesTerminalInjectionButNotOtherIoctls) {
  // Opens a pty inside the child, which itself takes ordinary ioctls (TIOCSPTLCK, TIOCGPTN).
  auto on_pty = [](unsigned long request) {
    return [request]() -> long {
      int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1;
      int tty = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (tty < 0) return -1;
      char c = 'x';
      winsize ws;
      void* arg = request == TIOCGWINSZ ? static_cast<void*>(&ws) : &c;
      return syscall(SYS_ioctl, tty, request, arg) == -1 ? -1 : 0;
    };
  };
  EXPECT_EQ(Try(on_pty(TIOCGWINSZ)), "ok");
  EXPECT_EQ(Try(on_pty(TIOCSTI)), "EPERM");
  EXPECT_EQ(Try(on_pty(TIOCSTI | (1ul << 32))), "EPERM");  // the kernel reads 32 bits
  EXPECT_EQ(Try(on_pty(TIOCLINUX)), "EPERM");
}

TEST_F(SeccompPolicyTest, Clone3FailsWithEnosysSoLibcFallsBack) {
  EXPECT_EQ(Try([] {
              clone_args args{};
              args.exit_signal = SIGCHLD;
              long rc = syscall(SYS_clone3, &args, sizeof args);
              if (rc == 0) _exit(0);
              return rc > 0 ? 0L : rc;
            }),
            "ENOSYS");
}

TEST_F(SeccompPolicyTest, DeniesEveryListedSyscall) {
  // All-ones arguments make each call fail harmlessly even if the filter let it through.
  for (const char* name : DeniedSyscallNames()) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr < 0) continue;  // not an x86-64 syscall, or unknown to this libseccomp
    SCOPED_TRACE(name);
    EXPECT_EQ(Try([nr] {
                setsid();  // no controlling terminal, for vhangup
                long m = -1;
                return syscall(nr, m, m, m, m, m, m);
              }),
              "EPERM");
  }
}

TEST_F(SeccompPolicyTest, KillsOtherAbis) {
  constexpr long kX32Bit = 0x40000000;
  EXPECT_EQ(Try([] { return syscall(kX32Bit | SYS_getpid); }), "killed by SIGSYS");
  // The filter kills a 32-bit syscall where the kernel has the entry; a kernel without IA32
  // emulation faults `int $0x80` before any filter runs. Both mean no 32-bit syscall runs.
  EXPECT_EQ(Try([] {
              long ret = 20;  // getpid in the i386 table
              asm volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
              return 0L;
            }),
            HasIa32SyscallEntry() ? "killed by SIGSYS" : "killed by SIGSEGV");
}

TEST_F(SeccompPolicyTest, RunsDebianPython) {
  constexpr const char* kScript = R"script(
import asyncio, hashlib, json, multiprocessing, os, socket, ssl, subprocess, tempfile, threading
t = threading.Thread(target=hashlib.sha256, args=(b"x",)); t.start(); t.join()
assert subprocess.run(["/bin/true"]).returncode == 0
with socket.create_server(("127.0.0.1", 0)) as srv:
    with socket.create_connection(srv.getsockname()) as c:
        s, _ = srv.accept(); c.sendall(b"ping"); assert s.recv(4) == b"ping"; s.close()
socket.getaddrinfo("localhost", 80)
ssl.create_default_context()
async def main(): await asyncio.sleep(0.001)
asyncio.run(main())
with tempfile.NamedTemporaryFile() as f: f.write(json.dumps({"a": 1}).encode())
p = multiprocessing.get_context("fork").Process(target=os.getpid); p.start(); p.join()
assert p.exitcode == 0
print("OK")
)script";
  auto r = Run({"/usr/bin/python3", "-c", kScript});
  EXPECT_EQ(r.outcome, "ok") << r.output;
  EXPECT_EQ(r.output, "OK\n");
}

TEST_F(SeccompPolicyTest, RunsNode) {
  if (access("/usr/bin/node", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/node";
  constexpr const char* kScript = R"script(
const fs = require('fs'), cp = require('child_process'), net = require('net');
fs.readFileSync('/etc/hostname'); cp.execFileSync('/bin/true'); require('crypto').randomBytes(8);
const srv = net.createServer(s => s.end('x')).listen(0, '127.0.0.1', () => {
  net.connect(srv.address().port, '127.0.0.1').on('data', () => {
    srv.close(); setTimeout(() => console.log('OK'), 1);
  });
});
)script";
  auto r = Run({"/usr/bin/node", "-e", kScript});
  EXPECT_EQ(r.outcome, "ok") << r.output;
  EXPECT_EQ(r.output, "OK\n");
}

TEST_F(SeccompPolicyTest, RunsShellCoreutilsAndCurl) {
  constexpr const char* kScript = R"script(set -e
d=$(mktemp -d); echo hi > "$d/f"; test "$(cat "$d/f" | tr a-z A-Z)" = HI
ls / > /dev/null; date > /dev/null; sort /etc/passwd | head -n1 > /dev/null; rm -r "$d"
if [ -x /usr/bin/curl ]; then curl -fsS -o /dev/null file:///etc/hostname; fi
echo OK)script";
  auto r = Run({"/bin/bash", "-c", kScript});
  EXPECT_EQ(r.outcome, "ok") << r.output;
  EXPECT_EQ(r.output, "OK\n");
}

}  // namespace
}  // namespace forklet::sandbox
