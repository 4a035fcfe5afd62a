// File operations for the state dir.
#include "runtime/registry/durable_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "runtime/log/log.h"

namespace forklet::registry {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() { Close(); }

int UniqueFd::Close() {
  if (fd_ < 0) return 0;
  int rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

Error StorageError(const std::string& op, int err) {
  if (err == ENOSPC || err == EDQUOT)
    return Error{"CodeStorageExceededException", err, "state dir: No space left on device"};
  return Error{op, err, {}};
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return StorageError("write " + what, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return StorageError("create " + path, errno);
  if (auto s = WriteAll(fd.get(), data, path); !s) return s;
  if (::fchmod(fd.get(), mode) != 0) return StorageError("chmod " + path, errno);
  if (int e = fd.Close(); e != 0) return StorageError("close " + path, e);
  return {};
}

Status WriteFileAtomic(const std::string& dir, const std::string& name, std::string_view data) {
  std::string tmp = dir + "/" + name + ".tmp";
  std::string final_path = dir + "/" + name;
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.valid()) return StorageError("create " + tmp, errno);
  auto fail = [&](Error e) -> Status {
    fd.Close();
    ::unlink(tmp.c_str());
    return e;
  };
  if (auto s = WriteAll(fd.get(), data, tmp); !s) return fail(s.error());
  if (::fchmod(fd.get(), 0644) != 0) return fail(StorageError("chmod " + tmp, errno));
  if (::fsync(fd.get()) != 0) return fail(StorageError("fsync " + tmp, errno));
  if (int e = fd.Close(); e != 0) return fail(StorageError("close " + tmp, e));
  if (::rename(tmp.c_str(), final_path.c_str()) != 0)
    return fail(StorageError("rename " + tmp, errno));
  // The new content is in place; a failed directory fsync only weakens crash durability.
  return FsyncPath(dir);
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), 0700) != 0) return StorageError("mkdir " + path, errno);
  if (::chmod(path.c_str(), mode) != 0) return StorageError("chmod " + path, errno);
  return {};
}

Status FsyncPath(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return StorageError("open " + path, errno);
  if (::fsync(fd.get()) != 0) return StorageError("fsync " + path, errno);
  return {};
}

Status SyncFilesystem(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return StorageError("open " + path, errno);
  if (::syncfs(fd.get()) != 0) return StorageError("syncfs " + path, errno);
  return {};
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return SysError("open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return SysError("stat " + path);
  if (!S_ISREG(st.st_mode)) return MakeError("read " + path, "not a regular file");
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("read " + path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return MakeError("read " + path, "larger than " + std::to_string(max_bytes) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);  // removes symlinks themselves, never their targets
  if (ec) log::Warning("registry: cannot remove " + path + ": " + ec.message());
}

}  // namespace forklet::registry
