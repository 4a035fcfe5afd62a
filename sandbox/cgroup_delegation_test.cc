// Tests for entering the supervisor leaf of a delegated v2 cgroup, on this host's real unified
// hierarchy: a test cgroup stands in for the one systemd would delegate.
#include "sandbox/cgroup_delegation.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_internal.h"

namespace forklet::sandbox {
namespace {

std::string OwnV2Line() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return {};
}

class CgroupDelegationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto all = DiscoverCgroupHierarchies();
    ASSERT_TRUE(all) << all.error().ToString();
    const CgroupHierarchy* unified = FindV2Hierarchy(*all);
    if (!unified) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
    home_dir_ = unified->own_dir;
    home_path_ = unified->cgroup_path;
    name_ = "forklet-delegation-test-" + std::to_string(getpid());
    delegated_ = home_dir_ + "/" + name_;
    ASSERT_EQ(mkdir(delegated_.c_str(), 0755), 0) << delegated_;
    // Stand in for systemd: this process starts inside "its" delegated cgroup.
    ASSERT_TRUE(cgroupfs::Write(delegated_ + "/cgroup.procs", "0"));
  }
  void TearDown() override {
    if (delegated_.empty()) return;
    (void)cgroupfs::Write(home_dir_ + "/cgroup.procs", "0");  // back where the test started
    rmdir((delegated_ + "/" + kSupervisorCgroup).c_str());
    rmdir(delegated_.c_str());
  }
  std::string home_dir_, home_path_, name_, delegated_;
};

TEST_F(CgroupDelegationTest, MovesIntoTheSupervisorLeafAndEnablesWhatIsOffered) {
  auto d = EnterSupervisorCgroup(delegated_);
  ASSERT_TRUE(d) << d.error().ToString();
  std::string base = home_path_ == "/" ? "" : home_path_;
  EXPECT_EQ(OwnV2Line(), base + "/" + name_ + "/supervisor");

  // Every wanted controller is either enabled below the delegated cgroup or named as missing.
  auto enabled = cgroupfs::Read(delegated_ + "/cgroup.subtree_control");
  ASSERT_TRUE(enabled);
  for (std::string c : {"memory", "pids", "cpu"}) {
    bool on = (" " + d->enabled + " ").find(" " + c + " ") != std::string::npos;
    bool off = (" " + d->missing + " ").find(" " + c + " ") != std::string::npos;
    EXPECT_NE(on, off) << c;
    if (on) {
      EXPECT_NE(enabled->find(c), std::string::npos) << c << " not in subtree_control";
    }
  }

  // The tree's owner is the delegated cgroup while this process sits in the leaf...
  std::string path = OwnV2Line(), dir = delegated_ + "/supervisor";
  ApplyDelegation(&path, &dir);
  EXPECT_EQ(path, base + "/" + name_);
  EXPECT_EQ(dir, delegated_);
  // ...and the v2 tree is created there, beside the leaf.
  auto tree = OpenCgroupTree("delegationtest", CgroupVersion::kV2);
  ASSERT_TRUE(tree) << tree.error().ToString();
  EXPECT_EQ(tree->get()->root_description(),
            "0::" + base + "/" + name_ + "/forklet.delegationtest");
  struct stat st {};
  EXPECT_EQ(stat((delegated_ + "/forklet.delegationtest").c_str(), &st), 0);
  EXPECT_TRUE(tree->get()->RemoveRoot());
}

TEST_F(CgroupDelegationTest, IsIdempotent) {
  ASSERT_TRUE(EnterSupervisorCgroup(delegated_));
  auto again = EnterSupervisorCgroup(delegated_);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(OwnV2Line().substr(OwnV2Line().rfind('/') + 1), "supervisor");
}

TEST_F(CgroupDelegationTest, OtherCgroupsAreLeftAlone) {
  ASSERT_TRUE(EnterSupervisorCgroup(delegated_));
  std::string path = "/elsewhere/supervisor", dir = "/sys/fs/cgroup/elsewhere/supervisor";
  ApplyDelegation(&path, &dir);
  EXPECT_EQ(path, "/elsewhere/supervisor");
  EXPECT_EQ(dir, "/sys/fs/cgroup/elsewhere/supervisor");
}

TEST(CgroupDelegation, NamesTheCgroupItCannotUse) {
  auto d = EnterSupervisorCgroup("/sys/fs/cgroup/no-such-forklet-cgroup");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().ToString().find("/sys/fs/cgroup/no-such-forklet-cgroup"), std::string::npos);
}

}  // namespace
}  // namespace forklet::sandbox
