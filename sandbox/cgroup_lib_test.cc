// libcgroup behind forklet's lock: locating cgroup directories, following mount changes, and
// creating/removing cgroups from several threads at once.
#include "sandbox/cgroup_lib.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/cgroup.h"

namespace forklet::sandbox::cglib {
namespace {

MountTable HybridTable() {
  MountTable t;
  t.controllers = {{"cpu", "/sys/fs/cgroup/cpu,cpuacct", false},
                   {"cpuacct", "/sys/fs/cgroup/cpu,cpuacct", false},
                   {"memory", "/sys/fs/cgroup/memory", false},
                   {"hugetlb", "/sys/fs/cgroup/unified", true}};
  t.mode = Mode::kHybrid;
  return t;
}

TEST(CgroupLib, LocatesADirectoryBelowTheLongestMountAndNamesCoMountedControllers) {
  auto t = HybridTable();
  auto loc = Locate(t, "/sys/fs/cgroup/cpu,cpuacct/process_api/44ca/forklet.x");
  ASSERT_TRUE(loc.ok()) << loc.error().ToString();
  EXPECT_EQ(loc->rel, "process_api/44ca/forklet.x");
  EXPECT_EQ(loc->controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_FALSE(loc->v2);
  auto mem = Locate(t, "/sys/fs/cgroup/memory");
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(mem->rel, "");
  EXPECT_TRUE(Locate(t, "/sys/fs/cgroup/unified/a")->v2);
  // A prefix of a mount point's name is not below it.
  EXPECT_EQ(Locate(t, "/sys/fs/cgroup/memoryx/a").error().err, ENOENT);
  EXPECT_EQ(Locate(t, "/elsewhere").error().err, ENOENT);
}

TEST(CgroupLib, ListsThisHostsControllersAndMode) {
  auto t = Mounts();
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  if (t->controllers.empty()) GTEST_SKIP() << "no cgroup controller mounted";
  EXPECT_NE(t->mode, Mode::kNone);
  for (const auto& m : t->controllers) {
    struct stat st;
    EXPECT_EQ(stat(m.mount_point.c_str(), &st), 0) << m.controller << " at " << m.mount_point;
  }
}

// In a private mount namespace (a forked child): an unmount and a mount after the first look are
// seen by the next one, without restarting anything.
TEST(CgroupLib, FollowsMountsThatChangeAfterInit) {
  auto t = Mounts();
  ASSERT_TRUE(t.ok());
  const ControllerMount* pids = t->Find("pids");
  if (pids == nullptr || pids->v2) GTEST_SKIP() << "needs the pids controller on cgroup v1";
  const std::string was = pids->mount_point;
  char dir[] = "/tmp/forklet-cglib-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  pid_t child = fork();
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      _exit(10);
    auto before = Mounts();
    if (!before || !before->Find("pids") || before->Find("pids")->mount_point != was) _exit(11);
    if (umount2(was.c_str(), MNT_DETACH) != 0) _exit(12);
    auto gone = Mounts();
    if (!gone || gone->Find("pids") != nullptr) _exit(13);  // a stale table still lists it
    if (mount("cgroup", dir, "cgroup", 0, "pids") != 0) _exit(14);
    auto moved = Mounts();
    if (!moved || !moved->Find("pids") || moved->Find("pids")->mount_point != dir) _exit(15);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  rmdir(dir);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: no private namespace, 11: first table, 12: umount, 13: the unmount was not seen, "
         "14: mount, 15: the new mount point was not seen";
}

// The pool's filler and Acquire's inline creation call libcgroup from different threads.
TEST(CgroupLib, CreatesAndRemovesFromManyThreadsAtOnce) {
  auto tree = OpenCgroupTree("cglib" + std::to_string(getpid()));
  if (!tree) GTEST_SKIP() << tree.error().ToString();
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto cg = (*tree)->Create("t" + std::to_string(t) + "-" + std::to_string(i));
        Status s = cg.ok() ? (*cg)->Destroy() : Status(cg.error());
        if (!s) {
          ++failures;
          std::lock_guard lock(mu);
          if (first_error.empty()) first_error = s.error().ToString();
        }
        (void)Mounts();
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  auto stale = (*tree)->RemoveStale();
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(*stale, 0);  // every cgroup was removed by its Destroy
  EXPECT_TRUE((*tree)->RemoveRoot().ok());
}

}  // namespace
}  // namespace forklet::sandbox::cglib
