// The disk-backed /tmp: bounded by its size, empty and world-writable, and nothing of it (loop
// device, image) left once its mount is closed.
#include "sandbox/tmp_area.h"

#include <fcntl.h>
#include <sys/stat.h>
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

TEST_F(TmpAreaTest, LeftoversOfAKilledMakerAreRemoved) {
  std::ofstream(dir_ + "/area-1-2.img") << "half made";
  // At least that one; SetUp's probe area (made in dir_) may still hold its loop device for a
  // moment after its mount was closed, and is removed with it.
  EXPECT_GE(RemoveTmpAreaLeftovers(dir_), 1);
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace forklet::sandbox
