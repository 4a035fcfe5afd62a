// The code image: what goes in comes out, read-only, and a broken input is a clear error.
#include "sandbox/code_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace forklet::sandbox {
namespace {

namespace fs = std::filesystem;

class CodeImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!CodeImagesSupported(&why)) GTEST_SKIP() << "no code images on this host: " << why;
    char tmpl[] = "/tmp/forklet-code-image-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

std::string ReadAt(int dirfd, const char* path) {
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<" + std::string(strerror(errno)) + ">";
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  return n < 0 ? "<read error>" : std::string(buf, static_cast<size_t>(n));
}

TEST_F(CodeImageTest, HoldsTheTreeReadOnlyWithItsModes) {
  const std::string src = dir_ + "/src";
  fs::create_directories(src + "/pkg");
  std::ofstream(src + "/app.py") << "def handler(e, c): return 1\n";
  std::ofstream(src + "/pkg/data.txt") << "data";
  std::ofstream(src + "/run.sh") << "#!/bin/sh\n";
  chmod((src + "/run.sh").c_str(), 0755);
  ASSERT_TRUE(BuildCodeImage(src, dir_ + "/code.erofs").ok());
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  auto mnt = MountCodeImage(dir_ + "/code.erofs");
  ASSERT_TRUE(mnt.ok()) << mnt.error().ToString();
  EXPECT_EQ(ReadAt(*mnt, "app.py"), "def handler(e, c): return 1\n");
  EXPECT_EQ(ReadAt(*mnt, "pkg/data.txt"), "data");
  struct stat st {};
  ASSERT_EQ(fstatat(*mnt, "run.sh", &st, 0), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_EQ(st.st_uid, 0u);
  errno = 0;
  EXPECT_LT(openat(*mnt, "app.py", O_WRONLY | O_CLOEXEC), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_LT(openat(*mnt, "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644), 0);
  // The image may go from the directory once mounted: the mount holds it.
  fs::remove(dir_ + "/code.erofs");
  EXPECT_EQ(ReadAt(*mnt, "pkg/data.txt"), "data");
  close(*mnt);
}

TEST_F(CodeImageTest, AMissingDirectoryOrImageIsAClearError) {
  auto built = BuildCodeImage(dir_ + "/nothing-here", dir_ + "/x.erofs");
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.error().ToString().find("nothing-here"), std::string::npos) << built.error().ToString();
  for (const auto& e : fs::directory_iterator(dir_))
    ADD_FAILURE() << "left behind: " << e.path();
  auto mounted = MountCodeImage(dir_ + "/absent.erofs");
  ASSERT_FALSE(mounted.ok());
  EXPECT_NE(mounted.error().ToString().find("absent.erofs"), std::string::npos);
  std::ofstream(dir_ + "/garbage.erofs") << std::string(8192, 'x');
  EXPECT_FALSE(MountCodeImage(dir_ + "/garbage.erofs").ok());
}

}  // namespace
}  // namespace forklet::sandbox
