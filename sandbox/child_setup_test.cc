// The child's setup steps, applied in a real cloned child (no zygote, no daemon).
#include "sandbox/child_setup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/seccomp_policy.h"
#include "sandbox/template_root.h"

namespace forklet::sandbox {
namespace {
namespace fs = std::filesystem;

class ChildSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forklet-childsetup-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ + "/root");
    fs::create_directories(dir_ + "/code");
    fs::create_directories(dir_ + "/etc");
    std::ofstream(dir_ + "/code/app.py") << "x = 1\n";
    std::ofstream(dir_ + "/etc/passwd") << "root:x:0:0::/:/bin/false\n";
    fs::permissions(dir_, fs::perms(0755));
  }
  void TearDown() override { fs::remove_all(dir_); }

  ChildSpec Spec() {
    ChildSpec spec{};
    snprintf(spec.hostname, sizeof(spec.hostname), "sbx");
    spec.tmp_size_bytes = 4 << 20;
    spec.uid = 100123;
    spec.gid = 100000;
    spec.nofile_limit = 64;
    return spec;
  }

  // Plays the zygote: a forked helper enters the template root (as forklet's zygote does once),
  // then clones a sandboxed child that runs `probe` after setup. Returns the probe's exit code
  // (or 200 + the failed step when setup failed) and the setup report. with_code false: a stem
  // cell's child, forked without code.
  template <typename Probe>
  int RunInSandbox(Probe probe, SetupReport* report_out, bool with_seccomp = false, bool with_code = true) {
    int sv[2], logp[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    EXPECT_EQ(pipe2(logp, O_CLOEXEC), 0);
    SeccompProgram prog;
    sock_fprog fprog{};
    if (with_seccomp) {
      auto p = CompileDefaultPolicy();
      EXPECT_TRUE(p.ok());
      prog = std::move(p.value());
      fprog = prog.fprog();
    }
    ChildSpec spec = Spec();
    TemplateSpec root{};
    snprintf(root.root, sizeof(root.root), "%s/root", dir_.c_str());
    snprintf(root.etc_dir, sizeof(root.etc_dir), "%s/etc", dir_.c_str());
    auto code = DetachedReadOnlyTree(dir_ + "/code");
    constexpr int kNotAnFd = 999;  // no code dir: mount_code gets a descriptor that is not open
    int code_fd = !with_code ? -1 : code.ok() ? *code : kNotAnFd;
    if (!with_code && code.ok()) close(*code);
    pid_t zygote = fork();
    if (zygote == 0) {
      if (!EnterTemplateRoot(root).ok()) _exit(199);
      ChildResources res;
      res.channel_fd = sv[1];
      res.log_fd = logp[1];
      res.code_fd = code_fd;
      res.empty_caps = cap_init();
      res.seccomp = with_seccomp ? &fprog : nullptr;
      long pid = syscall(SYS_clone, kSandboxCloneFlags | SIGCHLD, 0, 0, 0, 0);
      if (pid == 0) {
        SetupReport report{};
        ApplyInChild(spec, res, &report);
        int fd = report.ok ? kChannelFd : sv[1];
        (void)!write(fd, &report, sizeof(report));
        if (!report.ok) _exit(200 + static_cast<int>(report.failed_step));
        _exit(probe());
      }
      int status = 0;
      waitpid(static_cast<pid_t>(pid), &status, 0);
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    if (code_fd >= 0 && code_fd != kNotAnFd) close(code_fd);
    close(sv[1]);
    close(logp[1]);
    (void)!read(sv[0], report_out, sizeof(*report_out));
    int status = 0;
    waitpid(zygote, &status, 0);
    close(sv[0]);
    close(logp[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string dir_;
};

TEST_F(ChildSetupTest, EveryStepRunsAndIsTimed) {
  SetupReport report{};
  int rc = RunInSandbox([] { return 0; }, &report);
  ASSERT_EQ(rc, 0) << "failed at " << SetupStepName(static_cast<SetupStep>(report.failed_step))
                   << ": " << strerror(report.err);
  EXPECT_EQ(report.ok, 1u);
  EXPECT_EQ(report.n_timings, static_cast<uint32_t>(SetupStep::kCount));
}

TEST_F(ChildSetupTest, ChildIsUnprivilegedAndSeesOnlyItsOwnWorld) {
  SetupReport report{};
  int rc = RunInSandbox(
      [] {
        if (getuid() != 100123 || getgid() != 100000) return 1;
        if (access("/var/task/app.py", R_OK) != 0) return 2;
        if (open("/var/task/new", O_CREAT | O_WRONLY, 0644) >= 0) return 3;  // code is read-only
        if (open("/etc/owned", O_CREAT | O_WRONLY, 0644) >= 0) return 4;
        int fd = open("/tmp/scratch", O_CREAT | O_WRONLY, 0644);
        if (fd < 0) return 5;
        close(fd);
        if (access("/etc/shadow", F_OK) == 0) return 6;  // the host's /etc is not there
        DIR* d = opendir("/proc");
        int pids = 0;
        while (dirent* e = d ? readdir(d) : nullptr)
          if (e->d_name[0] >= '0' && e->d_name[0] <= '9') ++pids;
        if (d) closedir(d);
        if (pids != 1) return 7;  // only itself: pid namespace
        char host[64] = {};
        gethostname(host, sizeof(host));
        if (strcmp(host, "sbx") != 0) return 8;
        std::ifstream status("/proc/self/status");
        std::string line;
        while (std::getline(status, line)) {
          if (line.rfind("Cap", 0) == 0 && line.find("0000000000000000") == std::string::npos)
            return 9;  // a capability survived
          if (line.rfind("NoNewPrivs:", 0) == 0 && line.find('1') == std::string::npos) return 10;
        }
        return 0;
      },
      &report);
  EXPECT_EQ(rc, 0);
}

TEST_F(ChildSetupTest, SeccompIsOnLastAndDeniesMount) {
  SetupReport report{};
  int rc = RunInSandbox(
      [] {
        if (mount("none", "/tmp", "tmpfs", 0, nullptr) == 0) return 1;
        if (errno != EPERM) return 2;
        std::ifstream status("/proc/self/status");
        std::string line;
        while (std::getline(status, line))
          if (line.rfind("Seccomp:", 0) == 0) return line.find('2') != std::string::npos ? 0 : 3;
        return 4;
      },
      &report, /*with_seccomp=*/true);
  EXPECT_EQ(rc, 0);
}

TEST_F(ChildSetupTest, AStemCellIsSandboxedWithAnEmptyVarTask) {
  SetupReport report{};
  int rc = RunInSandbox(
      [] {
        DIR* d = opendir("/var/task");
        if (!d) return 1;
        int entries = 0;
        while (dirent* e = readdir(d))
          if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++entries;
        closedir(d);
        if (entries != 0) return 2;  // no code until the zygote mounts it (kMountCode)
        return getuid() == 100123 ? 0 : 3;
      },
      &report, /*with_seccomp=*/true, /*with_code=*/false);
  EXPECT_EQ(rc, 0) << "failed at " << SetupStepName(static_cast<SetupStep>(report.failed_step));
  EXPECT_EQ(report.n_timings, static_cast<uint32_t>(SetupStep::kCount));
}

TEST_F(ChildSetupTest, AFailingStepIsNamed) {
  SetupReport report{};
  fs::remove_all(dir_ + "/code");  // the code directory is gone: mount_code must fail
  int rc = RunInSandbox([] { return 0; }, &report);
  EXPECT_EQ(rc, 200 + static_cast<int>(SetupStep::kMountCode));
  EXPECT_EQ(report.ok, 0u);
  EXPECT_STREQ(SetupStepName(static_cast<SetupStep>(report.failed_step)), "mount_code");
  EXPECT_NE(report.err, 0);
}

}  // namespace
}  // namespace forklet::sandbox
