// The template root built once and joined (sandbox::JoinTemplateRoot), in real mount namespaces:
// a joiner sees what a builder sees, and what one joiner mounts no other process sees.
#include "sandbox/template_root.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace forklet::sandbox {
namespace {
namespace fs = std::filesystem;

class TemplateRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forklet-template-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ + "/root");
    fs::create_directories(dir_ + "/etc");
    fs::create_directories(dir_ + "/runners/python");
    std::ofstream(dir_ + "/etc/hostname") << "forklet\n";
    std::ofstream(dir_ + "/runners/python/runner.py") << "pass\n";
    fs::permissions(dir_, fs::perms(0755));
    snprintf(spec_.root, sizeof(spec_.root), "%s/root", dir_.c_str());
    snprintf(spec_.etc_dir, sizeof(spec_.etc_dir), "%s/etc", dir_.c_str());
    snprintf(spec_.runtime_dir, sizeof(spec_.runtime_dir), "%s/runners", dir_.c_str());
  }
  void TearDown() override {
    if (builder_ > 0) {
      kill(builder_, SIGKILL);
      waitpid(builder_, nullptr, 0);
    }
    if (ns_fd_ >= 0) close(ns_fd_);
    fs::remove_all(dir_);
  }

  // A process that enters the template root and waits: its namespace, held by ns_fd_, as the
  // daemon holds the one its builder zygote made.
  void Build() {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    builder_ = fork();
    ASSERT_GE(builder_, 0);
    if (builder_ == 0) {
      char ok = EnterTemplateRoot(spec_).ok() ? 1 : 0;
      (void)!write(ready[1], &ok, 1);
      pause();
      _exit(0);
    }
    close(ready[1]);
    char ok = 0;
    ASSERT_EQ(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    ASSERT_EQ(ok, 1) << "EnterTemplateRoot failed in the builder";
    ns_fd_ = open(("/proc/" + std::to_string(builder_) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ns_fd_, 0) << strerror(errno);
    // The builder goes, as the daemon's does: the namespace lives on through the fd.
    kill(builder_, SIGKILL);
    waitpid(builder_, nullptr, 0);
    builder_ = -1;
  }

  // Runs `probe` in a forked child that joined the template; its exit code (100 + errno-ish
  // codes for a failed join).
  template <typename Probe>
  int InJoined(Probe probe, int go_fd = -1, int done_fd = -1) {
    pid_t pid = fork();
    if (pid == 0) {
      if (!JoinTemplateRoot(ns_fd_).ok()) _exit(100);
      _exit(probe(go_fd, done_fd));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string dir_;
  TemplateSpec spec_{};
  pid_t builder_ = -1;
  int ns_fd_ = -1;
};

TEST_F(TemplateRootTest, AJoinerSeesTheTemplateAndNothingOfTheHost) {
  Build();
  std::ofstream(dir_ + "/etc/hostname") << "changed after the build\n";  // a copy was taken
  int rc = InJoined([host_dir = dir_](int, int) {
    std::ifstream hostname("/etc/hostname");
    std::string line;
    if (!std::getline(hostname, line) || line != "forklet") return 1;
    if (access("/var/runtime/python/runner.py", R_OK) != 0) return 2;
    if (access("/usr/bin", X_OK) != 0) return 3;
    if (access("/dev/null", F_OK) != 0) return 4;
    struct stat st;
    if (stat("/var/task", &st) != 0 || !S_ISDIR(st.st_mode)) return 5;
    if (access("/etc/shadow", F_OK) == 0) return 6;       // the host's /etc is not there
    if (access(host_dir.c_str(), F_OK) == 0) return 7;   // nor the host's /tmp
    int fd = open("/etc/new", O_CREAT | O_WRONLY, 0644);  // read-only, as built
    if (fd >= 0) return 8;
    char cwd[64];
    if (!getcwd(cwd, sizeof(cwd)) || std::string(cwd) != "/") return 9;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "probe step " << rc << " failed in a process that joined the template";
}

TEST_F(TemplateRootTest, WhatOneJoinerMountsNoOtherSees) {
  Build();
  int go[2], done[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  // The first joiner mounts a tmpfs on /var/task (as a zygote's code mount would) and holds it
  // until the second has looked.
  pid_t first = fork();
  if (first == 0) {
    if (!JoinTemplateRoot(ns_fd_).ok()) _exit(100);
    if (mount("tmpfs", "/var/task", "tmpfs", 0, "size=64k") != 0) _exit(101);
    std::ofstream("/var/task/mine") << "x";
    char c = 1;
    (void)!write(go[1], &c, 1);
    (void)!read(done[0], &c, 1);
    _exit(access("/var/task/mine", F_OK) == 0 ? 0 : 102);
  }
  char c = 0;
  ASSERT_EQ(read(go[0], &c, 1), 1);
  int second = InJoined([](int, int) { return access("/var/task/mine", F_OK) == 0 ? 1 : 0; });
  EXPECT_EQ(second, 0) << "a second joiner saw the first one's mount";
  // Nor does the template itself: a third joiner after the first is gone sees an empty /var/task.
  (void)!write(done[1], &c, 1);
  int status = 0;
  waitpid(first, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "first joiner: " << status;
  int third = InJoined([](int, int) {
    return fs::is_empty("/var/task") ? 0 : 1;
  });
  EXPECT_EQ(third, 0);
  for (int fd : {go[0], go[1], done[0], done[1]}) close(fd);
}

TEST_F(TemplateRootTest, JoiningSomethingThatIsNotAMountNamespaceFails) {
  int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  pid_t pid = fork();
  if (pid == 0) _exit(JoinTemplateRoot(fd).ok() ? 1 : 0);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fd);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "a net namespace fd was accepted as the template";
}

}  // namespace
}  // namespace forklet::sandbox
