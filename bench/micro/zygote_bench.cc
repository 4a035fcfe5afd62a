// The zygote fork round trip with the real Python zygote of the build tree: the daemon's fork
// request to the zygote's reply (ZygoteProcess::Fork), and on to the child's setup report (the
// sandbox built: namespaces, cgroup, mounts, identity, seccomp).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <benchmark/benchmark.h>

#include "sandbox/cgroup.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/template_root.h"
#include "zygote/channel.h"
#include "zygote/zygote_client.h"

namespace {

namespace fs = std::filesystem;
using namespace forklet;

// Beside this binary in the build tree: bin/forklet-micro, lib/, share/forklet/lang-runners/.
std::string InBuildTree(const std::string& relative) {
  std::error_code ec;
  return (fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / relative).string();
}

void Copy(char* dst, size_t cap, const std::string& s) {
  strncpy(dst, s.c_str(), cap - 1);
  dst[cap - 1] = 0;
}

// A zygote in its template root, a file layout like the daemon's (template mount point, /etc,
// code) and a cgroup, made once for all iterations and removed at exit.
struct Fixture {
  std::string error;
  std::string dir;
  std::unique_ptr<sandbox::CgroupTree> tree;
  std::unique_ptr<sandbox::Cgroup> cgroup;
  std::unique_ptr<zygote::ZygoteProcess> zygote;
  sandbox::ChildSpec spec{};
  std::string code_dir;

  Fixture() {
    char tmpl[] = "/tmp/forklet-micro-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error = "mkdtemp";
      return;
    }
    dir = tmpl;
    chmod(dir.c_str(), 0711);
    for (const char* d : {"/root", "/etc", "/code"}) {
      fs::create_directories(dir + d);
      chmod((dir + d).c_str(), 0755);
    }
    std::ofstream(dir + "/etc/passwd") << "sbx_user:x:100000:100000::/tmp:/usr/sbin/nologin\n";
    std::ofstream(dir + "/code/app.py") << "def handler(event, context):\n    return None\n";
    auto seccomp = sandbox::CompileDefaultPolicy();
    if (!seccomp) {
      error = seccomp.error().ToString();
      return;
    }
    auto t = sandbox::OpenCgroupTree("microzyg" + std::to_string(getpid()));
    if (!t) {
      error = t.error().ToString();
      return;
    }
    tree = std::move(t.value());
    auto cg = tree->Create("instance");
    if (!cg) {
      error = cg.error().ToString();
      return;
    }
    cgroup = std::move(cg.value());
    zygote::ZygoteCommand cmd;
    cmd.argv = {"/usr/bin/python3", "-I", "-S", "-B",
                InBuildTree("share/forklet/lang-runners/python/forklet_zygote.py"),
                InBuildTree("lib/libforklet_zygote.so")};
    cmd.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    sandbox::TemplateSpec root{};
    Copy(root.root, sizeof(root.root), dir + "/root");
    Copy(root.etc_dir, sizeof(root.etc_dir), dir + "/etc");
    auto z = zygote::ZygoteProcess::Spawn(cmd, root, *seccomp);
    if (!z) {
      error = z.error().ToString() + " (build the python_runner and forklet_zygote targets)";
      return;
    }
    zygote = std::move(z.value());
    code_dir = dir + "/code";
    Copy(spec.hostname, sizeof(spec.hostname), "forklet");
    spec.tmp_size_bytes = 64ull << 20;
    spec.uid = 100000;
    spec.gid = 100000;
    spec.nofile_limit = 1024;
  }
  ~Fixture() {
    zygote.reset();
    if (cgroup) (void)cgroup->Destroy();
    if (tree) (void)tree->RemoveRoot();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

Fixture& TheFixture() {
  static Fixture f;
  return f;
}

// One child: forked by the zygote, optionally waited for until its sandbox is built, then
// killed and reaped outside the timed part.
void ZygoteFork(benchmark::State& state, bool until_setup) {
  Fixture& f = TheFixture();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  uint64_t zygote_us = 0;
  for (auto _ : state) {
    state.PauseTiming();
    int channel[2], log[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0 || pipe2(log, O_CLOEXEC) != 0)
      return state.SkipWithError("socketpair/pipe");
    auto procs = f.cgroup->OpenProcsFds();
    if (!procs) return state.SkipWithError(procs.error().ToString().c_str());
    auto code = sandbox::DetachedReadOnlyTree(f.code_dir);  // per instance in the daemon too
    if (!code) return state.SkipWithError(code.error().ToString().c_str());
    state.ResumeTiming();

    auto child = f.zygote->Fork(f.spec, channel[1], log[1], *code, /*net_fd=*/-1, *procs);
    bool ok = child.ok();
    if (ok && until_setup) {  // the setup report: the first frame on the channel
      pollfd p{channel[0], POLLIN, 0};
      zygote::FrameHeader h{};
      ok = poll(&p, 1, 5000) == 1 && read(channel[0], &h, sizeof(h)) == sizeof(h) &&
           h.type == static_cast<uint32_t>(zygote::FrameType::kSetup);
      if (ok) {
        sandbox::SetupReport report{};
        ok = read(channel[0], &report, sizeof(report)) == sizeof(report) && report.ok;
      }
    }

    state.PauseTiming();
    for (int fd : *procs) close(fd);
    close(*code);
    close(channel[1]);
    close(log[1]);
    if (child.ok()) {
      zygote_us += child->zygote_fork_us;
      kill(child->pid, SIGKILL);
      waitpid(child->pid, nullptr, 0);
    }
    close(channel[0]);
    close(log[0]);
    if (!ok) return state.SkipWithError(child.ok() ? "the child's sandbox setup failed" : child.error().ToString().c_str());
    state.ResumeTiming();
  }
  state.counters["clone_in_zygote_us"] =
      benchmark::Counter(static_cast<double>(zygote_us) / static_cast<double>(state.iterations()));
}

void BM_ZygoteForkRoundTrip(benchmark::State& state) { ZygoteFork(state, false); }
BENCHMARK(BM_ZygoteForkRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_ZygoteForkToSandboxReady(benchmark::State& state) { ZygoteFork(state, true); }
BENCHMARK(BM_ZygoteForkToSandboxReady)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
