// Tests of snapshot_store.h: The snapshots on disk: one per function and deployment, readable by ... (see snapshot_store.h).
#include "runtime/snapshot/snapshot_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace forklet::snapshot {
namespace {
namespace fs = std::filesystem;

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forklet-snapshot-store-XXXXXX";
    root_ = mkdtemp(tmpl);
    dir_ = root_ + "/snapshots";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Dump(SnapshotStore& store, const std::string& fn, size_t bytes) {
    auto dir = store.Prepare(fn);
    EXPECT_TRUE(dir.ok());
    std::ofstream(*dir + "/pages.img") << std::string(bytes, 'x');
    return *dir;
  }
  std::string root_, dir_;
};

TEST_F(SnapshotStoreTest, IsPrivateAndStartsEmpty) {
  fs::create_directories(dir_ + "/stale/1");
  auto store = SnapshotStore::Open(dir_, 1 << 20);
  ASSERT_TRUE(store.ok());
  struct stat st;
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_FALSE(fs::exists(dir_ + "/stale"));
}

TEST_F(SnapshotStoreTest, FindsOnlyTheSameDeployment) {
  auto store = std::move(SnapshotStore::Open(dir_, 1 << 20).value());
  auto d = Dump(*store, "f", 100);
  ASSERT_TRUE(store->Commit("f", "gen1", d).ok());
  EXPECT_EQ(store->Find("f", "gen1"), d);
  EXPECT_FALSE(store->Find("f", "gen2"));
  EXPECT_FALSE(store->Find("g", "gen1"));
  auto d2 = Dump(*store, "f", 100);
  ASSERT_TRUE(store->Commit("f", "gen2", d2).ok());
  EXPECT_FALSE(fs::exists(d));  // the older deployment's snapshot is gone
  store->Remove("f");
  EXPECT_FALSE(store->Find("f", "gen2"));
  EXPECT_FALSE(fs::exists(d2));
}

TEST_F(SnapshotStoreTest, EvictsTheLeastRecentlyUsedPastTheBound) {
  auto store = std::move(SnapshotStore::Open(dir_, 250).value());
  auto a = Dump(*store, "a", 100);
  ASSERT_TRUE(store->Commit("a", "1", a).ok());
  auto b = Dump(*store, "b", 100);
  ASSERT_TRUE(store->Commit("b", "1", b).ok());
  ASSERT_TRUE(store->Find("a", "1"));  // a is now the more recently used
  auto c = Dump(*store, "c", 100);
  ASSERT_TRUE(store->Commit("c", "1", c).ok());
  EXPECT_TRUE(store->Find("a", "1"));
  EXPECT_FALSE(store->Find("b", "1"));
  EXPECT_TRUE(store->Find("c", "1"));
  EXPECT_LE(store->Usage().bytes, 250u);
  auto big = Dump(*store, "d", 300);
  EXPECT_FALSE(store->Commit("d", "1", big).ok());
  EXPECT_FALSE(fs::exists(big));
}

}  // namespace
}  // namespace forklet::snapshot
