// The disk-backed /tmp: bounded by its size, empty and world-writable, and nothing of it (loop
// device, image) left once its mount is closed.
#include "sandbox/tmp_area.h"

#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace forklet::sandbox {
namespace {

namespace fs = std::filesystem;

// Loop devices whose backing file lies in dir.
int LoopsBackedIn(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/sys/block")) {
    std::ifstream f(e.path() / "loop/backing_file");
    std::string backing;
    if (std::getline(f, backing) && backing.rfind(dir + "/", 0) == 0) ++n;
  }
  return n;
}

class TmpAreaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forklet-tmp-area-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string why;
    if (!TmpAreasSupported(dir_, &why)) GTEST_SKIP() << "no disk-backed /tmp on this host: " << why;
  }
  void TearDown() override {
    RemoveTmpAreaLeftovers(dir_);
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(TmpAreaTest, IsEmptyWritableAndBoundedBySize) {
  auto area = MakeTmpArea(dir_, 64);
  ASSERT_TRUE(area.ok()) << area.error().ToString();
  for (const auto& e : fs::directory_iterator(dir_))  // the size's template only
    EXPECT_EQ(e.path().filename().string().rfind("template-", 0), 0u) << e.path();
  struct stat st{};
  ASSERT_EQ(fstatat(area->mount_fd, "", &st, AT_EMPTY_PATH), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  int root = openat(area->mount_fd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  struct statvfs vfs{};
  ASSERT_EQ(fstatvfs(root, &vfs), 0);
  const uint64_t total = uint64_t{vfs.f_blocks} * vfs.f_frsize;
  EXPECT_GT(total, 56ull << 20);
  EXPECT_LE(total, 64ull << 20);
  EXPECT_EQ(faccessat(root, "lost+found", F_OK, 0), -1) << "Lambda's /tmp starts empty";
  int fd = openat(root, "fill", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  std::string chunk(1 << 20, 'x');
  uint64_t written = 0;
  int err = 0;
  for (int i = 0; i < 100; ++i) {
    ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n < 0) {
      err = errno;
      break;
    }
    written += static_cast<uint64_t>(n);
  }
  EXPECT_EQ(err, ENOSPC);
  EXPECT_GT(written, 50ull << 20);
  close(fd);
  close(root);
  EXPECT_EQ(LoopsBackedIn(dir_), 1);
  close(area->mount_fd);
  // The loop device clears itself once its filesystem is unmounted (the kernel may take a moment).
  for (int i = 0; i < 100 && LoopsBackedIn(dir_) > 0; ++i) usleep(20000);
  EXPECT_EQ(LoopsBackedIn(dir_), 0);
  EXPECT_GE(RemoveTmpAreaLeftovers(dir_), 1) << "the template";
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(TmpAreaTest, AreasOfOneTemplateShareNothing) {
  auto a = MakeTmpArea(dir_, 32), b = MakeTmpArea(dir_, 32);
  ASSERT_TRUE(a.ok() && b.ok());
  int fd = openat(a->mount_fd, "mine", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x", 1), 1);
  close(fd);
  EXPECT_EQ(faccessat(b->mount_fd, "mine", F_OK, 0), -1);
  close(a->mount_fd);
  close(b->mount_fd);
}

// What an instance could leave: files of every kind, unreadable directories, a symlink out of the
// area (which must not be followed), data that reached the disk.
void Litter(int mount_fd, const std::string& outside) {
  int root = openat(mount_fd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  ASSERT_EQ(mkdirat(root, "a", 0700), 0);
  ASSERT_EQ(mkdirat(root, "a/b", 0000), 0);
  int fd = openat(root, "a/data", O_CREAT | O_WRONLY | O_CLOEXEC, 0000);
  ASSERT_GE(fd, 0);
  std::string chunk(1 << 20, 's');
  for (int i = 0; i < 4; ++i) ASSERT_EQ(write(fd, chunk.data(), chunk.size()), ssize_t(chunk.size()));
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  ASSERT_EQ(linkat(root, "a/data", root, "hardlink", 0), 0);
  ASSERT_EQ(symlinkat(outside.c_str(), root, "to-host"), 0);
  ASSERT_EQ(symlinkat(outside.c_str(), root, "a/b-link"), 0);
  ASSERT_EQ(mkfifoat(root, "fifo", 0600), 0);
  close(root);
}

std::vector<std::string> Entries(int mount_fd) {
  std::vector<std::string> names;
  int root = openat(mount_fd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (DIR* d = fdopendir(root)) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
    closedir(d);
  }
  return names;
}

TEST_F(TmpAreaTest, ARecycledAreaIsEmptyAsMadeAndWritable) {
  auto area = MakeTmpArea(dir_, 32);
  ASSERT_TRUE(area.ok()) << area.error().ToString();
  const std::string outside = dir_ + "/outside";
  std::ofstream(outside) << "the host's";
  Litter(area->mount_fd, outside);
  ASSERT_FALSE(Entries(area->mount_fd).empty());

  auto fresh = RecycleTmpArea(*area);
  ASSERT_TRUE(fresh.ok()) << fresh.error().ToString();
  close(area->mount_fd);
  EXPECT_NE(fresh->mount_fd, area->mount_fd);
  EXPECT_EQ(fresh->loop, area->loop) << "the same device, not a new one";
  EXPECT_EQ(Entries(fresh->mount_fd), std::vector<std::string>{});
  std::ifstream host(outside);
  std::string kept((std::istreambuf_iterator<char>(host)), {});
  EXPECT_EQ(kept, "the host's") << "a symlink out of the area is removed, never followed";
  int root = openat(fresh->mount_fd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  struct statfs free{};
  ASSERT_EQ(fstatfs(root, &free), 0);
  EXPECT_EQ(free.f_bfree, area->free_blocks);
  EXPECT_EQ(free.f_ffree, area->free_inodes);
  struct stat st{};
  ASSERT_EQ(fstat(root, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  int fd = openat(root, "next", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << "writable again";
  if (fd >= 0) close(fd);
  close(root);
  // And again, as it goes from instance to instance.
  auto again = RecycleTmpArea(*fresh);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  close(fresh->mount_fd);
  EXPECT_EQ(Entries(again->mount_fd), std::vector<std::string>{});
  close(again->mount_fd);
}

TEST_F(TmpAreaTest, AnAreaThatCannotBeEmptiedIsRefused) {
  auto area = MakeTmpArea(dir_, 32);
  ASSERT_TRUE(area.ok()) << area.error().ToString();
  // A file still open (a process of the instance left alive would hold it): its inode stays in
  // use once every name is gone.
  int held = openat(area->mount_fd, "held", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(held, 0);
  ASSERT_EQ(write(held, "x", 1), 1);
  auto refused = RecycleTmpArea(*area);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().ToString().find("still in use"), std::string::npos) << refused.error().ToString();
  close(held);
  // A tree deeper than the walk goes.
  std::string path;
  for (int i = 0; i < 70; ++i) {
    path += (i ? "/d" : "d");
    ASSERT_EQ(mkdirat(area->mount_fd, path.c_str(), 0700), 0) << i;
  }
  auto deep = RecycleTmpArea(*area);
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().ToString().find("deeper"), std::string::npos) << deep.error().ToString();
  close(area->mount_fd);
}

TEST_F(TmpAreaTest, LeftoversOfAKilledMakerAreRemoved) {
  std::ofstream(dir_ + "/area-1-2.img") << "half made";
  // At least that one; SetUp's probe area (made in dir_) may still hold its loop device for a
  // moment after its mount was closed, and is removed with it.
  EXPECT_GE(RemoveTmpAreaLeftovers(dir_), 1);
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace forklet::sandbox
