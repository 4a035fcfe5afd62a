// File operations for the state dir: owned fds, full writes, fsync'd atomic replacement, and
// errors that say "disk full" the way the Lambda API reports it. Internal to the registry.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "sandbox/error.h"

namespace forklet::registry {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes now and reports the error close() returned (delayed write errors show up here).
  int Close();

 private:
  int fd_ = -1;
};

// ENOSPC/EDQUOT become CodeStorageExceededException "state dir: No space left on device";
// other errnos keep op as the failed operation (the API turns those into a ServiceException).
Error StorageError(const std::string& op, int err);

// Writes all of data, retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view data, const std::string& what);

// Creates path (must not exist) with data and mode; no fsync (callers syncfs once before publishing).
Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode);

// Replaces dir/name with data: dir/name.tmp is written, fsync'd, renamed over dir/name, and dir
// is fsync'd, so a crash leaves the old or the new content.
Status WriteFileAtomic(const std::string& dir, const std::string& name, std::string_view data);

// Creates a directory with exactly this mode (regardless of umask).
Status MakeDir(const std::string& path, mode_t mode);

Status FsyncPath(const std::string& path);
// Flushes every dirty page of the filesystem holding path.
Status SyncFilesystem(const std::string& path);

// Reads a regular file (not following a final symlink) of at most max_bytes.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

// Removes path and everything below it, never following symlinks; logs and ignores failures.
void RemoveTree(const std::string& path);

}  // namespace forklet::registry
