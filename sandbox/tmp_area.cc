// An instance's disk-backed /tmp: sparse ext4 image, loop device, detached mount (sandbox/tmp_area.h).
#include "sandbox/tmp_area.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <vector>

extern char** environ;

namespace forklet::sandbox {
namespace {

const char* Mkfs() {
  for (const char* p : {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"})
    if (access(p, X_OK) == 0) return p;
  return nullptr;
}

// The dirty pages one area may hold before its writer is throttled to the disk's pace: a
// function's write burst then never fills its memory cgroup with pages it cannot drop yet.
constexpr uint64_t kMaxDirtyBytes = 16ull << 20;

Status RunMkfs(const std::string& image) {
  const char* mkfs = Mkfs();
  if (!mkfs) return MakeError("tmp area", "mkfs.ext4 is missing (Debian: e2fsprogs)");
  // No journal (nothing in /tmp outlives its instance), nothing reserved for root, inode tables
  // left to be initialised lazily (the mount says noinit_itable: they are never written), no
  // discard of a sparse file.
  std::vector<std::string> args = {mkfs, "-q", "-F", "-m", "0", "-b", "4096",
                                   "-O", "^has_journal,^resize_inode",
                                   "-E", "nodiscard,lazy_itable_init=1", image};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, mkfs, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return SysError(std::string("tmp area: run ") + mkfs, rc);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return MakeError("tmp area", std::string(mkfs) + " failed (status " + std::to_string(status) + ")");
  return {};
}

// A free loop device bound to file (autoclear, direct I/O: no second copy of the pages in the
// image's own page cache). Returns its fd and number.
Result<int> AttachLoop(int file, int* number) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return SysError("tmp area: open /dev/loop-control");
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      int e = errno;
      close(ctl);
      return SysError("tmp area: LOOP_CTL_GET_FREE", e);
    }
    const std::string dev = "/dev/loop" + std::to_string(n);
    int loop = open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (loop < 0) continue;  // its node may appear a moment later
    struct loop_config config{};
    config.fd = static_cast<uint32_t>(file);
    config.block_size = 4096;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    if (ioctl(loop, LOOP_CONFIGURE, &config) == 0) {
      close(ctl);
      *number = n;
      return loop;
    }
    int e = errno;
    close(loop);
    if (e != EBUSY) {  // another process took it between GET_FREE and CONFIGURE: try the next
      close(ctl);
      return SysError("tmp area: LOOP_CONFIGURE " + dev, e);
    }
  }
  close(ctl);
  return MakeError("tmp area", "no free loop device after 16 attempts");
}

// An empty filesystem of size_mb, made once per size by mkfs (~20-50 ms) and copied for each area:
// its data is ~128 KB, and copying the extents that hold data takes well under a millisecond.
Result<std::string> Template(const std::string& dir, uint64_t size_mb) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  const std::string path = dir + "/template-" + std::to_string(size_mb) + ".img";
  if (access(path.c_str(), R_OK) == 0) return path;
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("tmp area: create " + tmp);
  int rc = ftruncate(fd, static_cast<off_t>(size_mb << 20));
  int e = errno;
  close(fd);
  if (rc != 0) {
    unlink(tmp.c_str());
    return SysError("tmp area: size " + tmp, e);
  }
  if (auto s = RunMkfs(tmp); !s) {
    unlink(tmp.c_str());
    return s.error();
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    e = errno;
    unlink(tmp.c_str());
    return SysError("tmp area: rename to " + path, e);
  }
  return path;
}

// The data extents of from into to (same size, sparse).
Status CopySparse(const std::string& from, int to) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return SysError("tmp area: open " + from);
  off_t end = lseek(in, 0, SEEK_END), at = 0;
  Status status;
  while (at < end) {
    off_t data = lseek(in, at, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = end;
    loff_t src = data, dst = data;
    size_t left = static_cast<size_t>(hole - data);
    while (left > 0) {
      ssize_t n = copy_file_range(in, &src, to, &dst, left, 0);
      if (n <= 0) {
        status = SysError("tmp area: copy " + from, n < 0 ? errno : EIO);
        break;
      }
      left -= static_cast<size_t>(n);
    }
    if (!status) break;
    at = hole;
  }
  close(in);
  return status;
}

void LimitDirtyPages(int number) {
  const std::string bdi = "/sys/block/loop" + std::to_string(number) + "/bdi/";
  std::ofstream(bdi + "max_bytes") << kMaxDirtyBytes;
  std::ofstream(bdi + "strict_limit") << 1;
}

}  // namespace

Result<TmpArea> MakeTmpArea(const std::string& dir, uint64_t size_mb) {
  static std::atomic<uint64_t> counter{0};
  const std::string image = dir + "/area-" + std::to_string(getpid()) + "-" +
                            std::to_string(counter++) + ".img";
  int file = open(image.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (file < 0) return SysError("tmp area: create " + image);
  struct Cleanup {
    const std::string& image;
    int& file;
    int loop = -1;
    ~Cleanup() {
      if (loop >= 0) close(loop);  // autoclear: detached unless a mount holds it
      if (file >= 0) close(file);
      unlink(image.c_str());
    }
  } cleanup{image, file};
  if (ftruncate(file, static_cast<off_t>(size_mb << 20)) != 0)
    return SysError("tmp area: size " + image);
  auto from = Template(dir, size_mb);
  if (!from) return from.error();
  if (auto s = CopySparse(*from, file); !s) return s.error();
  int number = -1;
  auto loop = AttachLoop(file, &number);
  if (!loop) return loop.error();
  cleanup.loop = *loop;
  const std::string dev = "/dev/loop" + std::to_string(number);
  unlink(image.c_str());  // the loop device holds it; its blocks go when the device does
  LimitDirtyPages(number);

  auto mnt = MountTmpAreaDevice(dev);
  if (!mnt) return mnt.error();
  // Lambda's /tmp: empty and writable by the function's user.
  int root = openat(*mnt, ".", O_DIRECTORY | O_CLOEXEC);
  struct statfs free {};
  if (root < 0 || fchmod(root, 01777) != 0 || (unlinkat(root, "lost+found", AT_REMOVEDIR) != 0 && errno != ENOENT) ||
      fstatfs(root, &free) != 0) {
    int e = errno;
    if (root >= 0) close(root);
    close(*mnt);
    return SysError("tmp area: prepare its root", e);
  }
  close(root);
  return TmpArea{*mnt, size_mb, dev, free.f_bfree, free.f_ffree};
}

Result<int> MountTmpAreaDevice(const std::string& dev) {
  int fs = fsopen("ext4", FSOPEN_CLOEXEC);
  if (fs < 0) return SysError("tmp area: fsopen ext4");
  int mnt = -1, e = 0;
  if (fsconfig(fs, FSCONFIG_SET_STRING, "source", dev.c_str(), 0) != 0 ||
      fsconfig(fs, FSCONFIG_SET_FLAG, "noinit_itable", nullptr, 0) != 0 ||
      fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    e = errno;
  } else {
    mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (mnt < 0) e = errno;
  }
  close(fs);
  if (mnt < 0) return SysError("tmp area: mount ext4 on " + dev, e);
  return mnt;
}

bool TmpAreasSupported(const std::string& dir, std::string* why) {
  static std::once_flag once;
  static bool supported = false;
  static std::string reason;
  std::call_once(once, [&dir] {
    auto area = MakeTmpArea(dir, 16);
    if (!area) {
      reason = area.error().ToString();
      return;
    }
    int fd = openat(area->mount_fd, "probe", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    supported = fd >= 0 && write(fd, "probe", 5) == 5;
    if (!supported) reason = "a file cannot be written on the probe area";
    if (fd >= 0) close(fd);
    close(area->mount_fd);
  });
  if (why) *why = reason;
  return supported;
}

int RemoveTmpAreaLeftovers(const std::string& dir) {
  int removed = 0;
  const std::string prefix = dir + "/";
  if (DIR* d = opendir("/sys/block")) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("loop", 0) != 0) continue;
      std::ifstream f("/sys/block/" + name + "/loop/backing_file");
      std::string backing;
      if (!std::getline(f, backing) || backing.rfind(prefix, 0) != 0) continue;
      int loop = open(("/dev/" + name).c_str(), O_RDWR | O_CLOEXEC);
      if (loop < 0) continue;
      if (ioctl(loop, LOOP_CLR_FD) == 0) ++removed;  // EBUSY: still mounted; autoclear takes it then
      close(loop);
    }
    closedir(d);
  }
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if ((name.rfind("area-", 0) == 0 || name.rfind("template-", 0) == 0) &&
          unlink((prefix + name).c_str()) == 0)
        ++removed;
    }
    closedir(d);
  }
  return removed;
}

}  // namespace forklet::sandbox
