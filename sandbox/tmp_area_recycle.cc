// A used /tmp area emptied, trimmed, checked and mounted afresh for the next instance
// (sandbox/tmp_area.h): what makes a churn of new instances cheap (a new area costs a copy, a loop
// device and a mount; a recycled one a few system calls).
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <string>

#include "sandbox/tmp_area.h"

namespace forklet::sandbox {
namespace {

// What one emptying may walk: beyond it the area is discarded, not walked for seconds.
constexpr int kMaxDepth = 64;
constexpr long kMaxEntries = 10000;

// Removes everything below the directory dir (owned by the caller, closed here). Symlinks are
// removed, never followed; nothing but this filesystem is reachable (no mounts: an instance cannot
// mount).
Status Empty(int dir, int depth, long* budget) {
  DIR* d = fdopendir(dir);
  if (!d) {
    close(dir);
    return SysError("tmp area: read a directory");
  }
  Status status;
  while (status) {
    errno = 0;
    dirent* e = readdir(d);
    if (!e) {
      if (errno != 0) status = SysError("tmp area: read a directory");
      break;
    }
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (--*budget < 0) {
      status = MakeError("tmp area", "more than " + std::to_string(kMaxEntries) + " entries");
      break;
    }
    struct stat st {};
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      status = SysError("tmp area: stat " + name);
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth + 1 > kMaxDepth) {
        status = MakeError("tmp area", "directories nested deeper than " + std::to_string(kMaxDepth));
        break;
      }
      int sub = openat(dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        status = SysError("tmp area: open " + name);
        break;
      }
      status = Empty(sub, depth + 1, budget);
      if (status && unlinkat(dirfd(d), name.c_str(), AT_REMOVEDIR) != 0) status = SysError("tmp area: remove " + name);
    } else if (unlinkat(dirfd(d), name.c_str(), 0) != 0) {
      status = SysError("tmp area: remove " + name);
    }
  }
  closedir(d);
  return status;
}

}  // namespace

Result<TmpArea> RecycleTmpArea(const TmpArea& used) {
  int root = openat(used.mount_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return SysError("tmp area: open its root");
  struct stat st {};
  if (fstat(root, &st) != 0 || (st.st_mode & 07777) != 01777 || st.st_uid != 0 || st.st_gid != 0) {
    close(root);
    return MakeError("tmp area", "its root is not the one it was made with");
  }
  long budget = kMaxEntries;
  if (auto s = Empty(dup(root), 0, &budget); !s) {
    close(root);
    return s.error();
  }
  // Blocks the instance wrote stay allocated in the image until the filesystem discards them: the
  // loop device punches them out of the file. A filesystem whose groups had no frees skips them.
  fstrim_range range{0, ULLONG_MAX, 0};
  int trim_errno = ioctl(root, FITRIM, &range) == 0 ? 0 : errno;
  struct statfs free {};
  int stat_rc = fstatfs(root, &free);
  close(root);
  if (stat_rc != 0) return SysError("tmp area: statfs");
  if (trim_errno != 0) return SysError("tmp area: trim", trim_errno);
  if (free.f_flags & ST_RDONLY) return MakeError("tmp area", "its filesystem went read-only");
  if (free.f_bfree != used.free_blocks || free.f_ffree != used.free_inodes)
    return MakeError("tmp area", std::to_string(int64_t(used.free_blocks) - int64_t(free.f_bfree)) + " blocks and " +
                                     std::to_string(int64_t(used.free_inodes) - int64_t(free.f_ffree)) +
                                     " inodes still in use once emptied");
  auto mnt = MountTmpAreaDevice(used.loop);
  if (!mnt) return mnt.error();
  TmpArea fresh = used;
  fresh.mount_fd = *mnt;
  return fresh;
}

}  // namespace forklet::sandbox
