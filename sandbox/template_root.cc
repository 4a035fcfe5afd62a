// Building the template root in the zygote's own mount namespace, once.
#include "sandbox/template_root.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/prctl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace forklet::sandbox {
namespace {

Status Mkdir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return SysError("template: mkdir " + path);
  return {};
}

Status Touch(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return SysError("template: create " + path);
  close(fd);
  return {};
}

// A plain bind ignores MS_RDONLY: the flags take effect on the remount.
Status BindReadOnly(const std::string& src, const std::string& dst, unsigned long extra = 0) {
  if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return SysError("template: bind " + src);
  if (mount(nullptr, dst.c_str(), nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra, nullptr) != 0)
    return SysError("template: read-only " + dst);
  return {};
}

// A read-only tmpfs at dst holding a copy of the host directory src. A bind would show the
// host's path of src (the state dir, the build tree) as its root in every instance's
// /proc/self/mountinfo; a tmpfs shows "/" and "tmpfs". For the small trees only (/etc, runners).
Status CopyReadOnly(const std::string& src, const std::string& dst, unsigned long extra = 0) {
  constexpr const char* kOptions = "size=16m,mode=0755";
  if (mount("tmpfs", dst.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | extra, kOptions) != 0)
    return SysError("template: mount tmpfs on " + dst);
  std::error_code ec;
  std::filesystem::copy(src, dst,
                        std::filesystem::copy_options::recursive |
                            std::filesystem::copy_options::copy_symlinks,
                        ec);
  if (ec) return SysError("template: copy " + src, ec.value());
  if (mount(nullptr, dst.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | extra,
            kOptions) != 0)
    return SysError("template: read-only " + dst);
  return {};
}

Status BuildDev(const std::string& root) {
  const std::string dev = root + "/dev";
  if (auto s = Mkdir(dev); !s) return s;
  if (mount("tmpfs", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") != 0)
    return SysError("template: mount /dev");
  for (const char* node : {"null", "zero", "full", "random", "urandom"}) {
    const std::string dst = dev + "/" + node;
    if (auto s = Touch(dst); !s) return s;
    if (mount(("/dev/" + std::string(node)).c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0)
      return SysError("template: bind /dev/" + std::string(node));
  }
  // Python's multiprocessing wants /dev/shm; the instance's private /tmp serves, with its limit.
  const char* links[][2] = {{"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                            {"/tmp", "shm"}};
  for (const auto& l : links)
    if (symlink(l[0], (dev + "/" + l[1]).c_str()) != 0) return SysError("template: symlink /dev/" + std::string(l[1]));
  if (mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
            "size=64k,mode=0755") != 0)
    return SysError("template: read-only /dev");
  return {};
}

// Lambda's Amazon Linux has bash as /bin/sh: the scripts AWS's docs show (a custom runtime's
// `#!/bin/sh` bootstrap with `source`, `set -o pipefail` and `function`) rely on it. Debian's sh
// is dash, so the template's /usr/bin/sh (a symlink) is covered by a read-only bind of bash.
// move_mount, unlike mount(2), does not follow the symlink: /usr/bin/dash stays dash.
Status ShIsBash(const std::string& root) {
  struct stat st;
  const std::string sh = root + "/usr/bin/sh";
  if (lstat("/usr/bin/bash", &st) != 0 || lstat(sh.c_str(), &st) != 0) return {};  // no bash, or no sh
  int fd = open_tree(AT_FDCWD, "/usr/bin/bash", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return SysError("template: open_tree /usr/bin/bash");
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  Status s;
  if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0)
    s = SysError("template: read-only /usr/bin/bash");
  else if (move_mount(fd, "", AT_FDCWD, sh.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    s = SysError("template: bash as " + sh);
  close(fd);
  return s;
}

}  // namespace

Status EnterTemplateRoot(const TemplateSpec& spec) {
  const std::string root = spec.root;
  if (unshare(CLONE_NEWNS) != 0) return SysError("template: unshare mount namespace");
  // Nothing mounted here may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return SysError("template: make / private");
  if (mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0)
    return SysError("template: mount tmpfs on " + root);
  // Host directories, read-only. On merged-/usr systems /bin, /sbin, /lib* are symlinks into
  // /usr: mirror them as symlinks, bind the real directories.
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"}) {
    struct stat st;
    if (lstat(dir, &st) != 0) continue;  // absent on this host
    const std::string dst = root + dir;
    if (S_ISLNK(st.st_mode)) {
      char target[256];
      ssize_t n = readlink(dir, target, sizeof(target) - 1);
      if (n < 0) return SysError(std::string("template: readlink ") + dir);
      target[n] = 0;
      if (symlink(target, dst.c_str()) != 0) return SysError("template: symlink " + dst);
    } else {
      if (auto s = Mkdir(dst); !s) return s;
      if (auto s = BindReadOnly(dir, dst); !s) return s;
    }
  }
  if (auto s = ShIsBash(root); !s) return s;
  if (auto s = Mkdir(root + "/etc"); !s) return s;
  if (auto s = CopyReadOnly(spec.etc_dir, root + "/etc"); !s) return s;
  if (auto s = BuildDev(root); !s) return s;
  // Mount points every instance covers with its own: code, /tmp, /proc; /opt (its layers, if it
  // has any; else empty, as on Lambda).
  for (const char* d : {"/var", "/var/task", "/opt", "/tmp", "/proc"})
    if (auto s = Mkdir(root + d); !s) return s;
  // The runners a runtime executes inside the sandbox (Node's runner script), as Lambda's
  // LAMBDA_RUNTIME_DIR. Forklet's own code, no secrets: every instance may read it.
  if (spec.runtime_dir[0] != 0) {
    if (auto s = Mkdir(root + "/var/runtime"); !s) return s;
    if (auto s = CopyReadOnly(spec.runtime_dir, root + "/var/runtime", MS_NOEXEC); !s) return s;
  }
  // The zygote's own /proc: children resolve /proc/self/fd/N through it before theirs is up.
  if (mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return SysError("template: mount /proc");
  // Into the template; the host's tree is detached and gone from this namespace.
  if (chdir(root.c_str()) != 0) return SysError("template: chdir " + root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) return SysError("template: pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return SysError("template: detach the host root");
  if (chdir("/") != 0) return SysError("template: chdir /");
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return SysError("template: read-only /");
  return {};
}

Status JoinTemplateRoot(int template_ns_fd) {
  if (setns(template_ns_fd, CLONE_NEWNS) != 0) return SysError("template: join its namespace");
  // Root and working directory are now the template's; the copy keeps this process's mounts
  // (the code it mounts for a function, say) to itself.
  if (unshare(CLONE_NEWNS) != 0) return SysError("template: copy its namespace");
  if (chdir("/") != 0) return SysError("template: chdir /");
  return {};
}

Status NeutralCommandLine(std::string_view name) {
  // arg_start and arg_end are fields 48 and 49 of /proc/self/stat, counted after the ")" that
  // closes the command name (field 2, which may itself hold spaces and parentheses).
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return MakeError("command line", "cannot parse /proc/self/stat");
  std::istringstream fields(stat.substr(paren + 2));
  std::vector<unsigned long> f;
  std::string word;
  while (fields >> word) f.push_back(strtoul(word.c_str(), nullptr, 10));
  if (f.size() < 47) return MakeError("command line", "/proc/self/stat has too few fields");
  const unsigned long start = f[45], end = f[46];  // fields 48 and 49
  if (end <= start) return MakeError("command line", "no argument area");
  const size_t len = std::min(name.size(), static_cast<size_t>(end - start - 1));
  char* area = reinterpret_cast<char*>(start);
  memset(area, 0, end - start);
  memcpy(area, name.data(), len);
  // Shrink the area to the name: /proc/PID/cmdline then ends there instead of listing empty
  // arguments. Needs CAP_SYS_RESOURCE; without it the name is followed by NULs, still neutral.
  (void)prctl(PR_SET_MM, PR_SET_MM_ARG_END, start + len + 1, 0, 0);
  return {};
}

Result<int> DetachedReadOnlyTree(const std::string& dir) {
  int fd = open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return SysError("open_tree " + dir);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    int e = errno;
    close(fd);
    return SysError("mount_setattr read-only " + dir, e);
  }
  return fd;
}

}  // namespace forklet::sandbox
