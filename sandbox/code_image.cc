// A function's code as a read-only EROFS image mounted from its file (sandbox/code_image.h).
#include "sandbox/code_image.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

extern char** environ;

namespace forklet::sandbox {
namespace {

constexpr const char* kMkfs = "/usr/bin/mkfs.erofs";

bool KernelHasErofs() {
  std::ifstream f("/proc/filesystems");
  for (std::string line; std::getline(f, line);)
    if (line.size() >= 5 && line.compare(line.size() - 5, 5, "erofs") == 0) return true;
  return false;
}

}  // namespace

Status BuildCodeImage(const std::string& dir, const std::string& image) {
  const std::string tmp = image + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(gettid());
  unlink(tmp.c_str());
  std::vector<std::string> args = {kMkfs, "--quiet", "--all-root", "-x-1", tmp, dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, kMkfs, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return SysError("code image: run " + std::string(kMkfs), rc);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    unlink(tmp.c_str());
    return MakeError("code image", std::string(kMkfs) + " of " + dir + " failed (status " +
                                       std::to_string(status) + ")");
  }
  if (rename(tmp.c_str(), image.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return SysError("code image: rename to " + image, e);
  }
  return {};
}

Result<int> MountCodeImage(const std::string& image) {
  int file = open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return SysError("code image: open " + image);
  int fs = fsopen("erofs", FSOPEN_CLOEXEC);
  if (fs < 0) {
    int e = errno;
    close(file);
    return SysError("code image: fsopen erofs", e);
  }
  // The kernel opens the source itself, in this process: the descriptor's path stands in for
  // the image's, and is all that /proc/self/mountinfo will ever show of it.
  const std::string source = "/proc/self/fd/" + std::to_string(file);
  int mnt = -1;
  int e = 0;
  if (fsconfig(fs, FSCONFIG_SET_STRING, "source", source.c_str(), 0) != 0 ||
      fsconfig(fs, FSCONFIG_SET_FLAG, "ro", nullptr, 0) != 0 ||
      fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    e = errno;
  } else {
    mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (mnt < 0) e = errno;
  }
  close(fs);
  close(file);  // the mount holds the file
  if (mnt < 0) return SysError("code image: mount " + image, e);
  return mnt;
}

bool CodeImagesSupported(std::string* why) {
  static std::once_flag once;
  static bool supported = false;
  static std::string reason;
  std::call_once(once, [] {
    if (access(kMkfs, X_OK) != 0) {
      reason = std::string(kMkfs) + " is missing (Debian: erofs-utils)";
      return;
    }
    if (!KernelHasErofs()) {
      reason = "the kernel has no EROFS";
      return;
    }
    char tmpl[] = "/tmp/forklet-erofs-probe-XXXXXX";
    if (!mkdtemp(tmpl)) {
      reason = "mkdtemp failed";
      return;
    }
    const std::string dir = std::string(tmpl) + "/d", image = std::string(tmpl) + "/i.erofs";
    mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/probe") << "probe\n";
    if (auto s = BuildCodeImage(dir, image); !s) {
      reason = s.error().ToString();
    } else if (auto m = MountCodeImage(image); !m) {
      reason = m.error().ToString() + " (file-backed EROFS needs Linux 6.12+)";
    } else {
      int fd = openat(*m, "probe", O_RDONLY | O_CLOEXEC);
      supported = fd >= 0;
      if (fd >= 0) close(fd);
      if (!supported) reason = "the probe image mounted but its file cannot be read";
      close(*m);
    }
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
  });
  if (why) *why = reason;
  return supported;
}

}  // namespace forklet::sandbox
