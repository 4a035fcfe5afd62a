// The child's setup steps. Everything here runs between clone() and the runner: only
// async-signal-safe calls, no allocation, no locks, no logging.
#include "sandbox/child_setup.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/seccomp_policy.h"

namespace forklet::sandbox {

const char* SetupStepName(SetupStep step) {
  static constexpr const char* kNames[] = {
      "attach_cgroup", "cgroup_ns",  "mount_root", "mount_code",    "mount_tmp", "mount_dev",
      "mount_proc",    "pivot_root", "net_lo",     "hostname",      "fds",       "rlimits",
      "drop_bounding", "set_ids",    "drop_caps",  "no_new_privs",  "seccomp"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(SetupStep::kCount));
  auto i = static_cast<size_t>(step);
  return i < static_cast<size_t>(SetupStep::kCount) ? kNames[i] : "unknown";
}

namespace {

// A small fixed buffer path joiner: no allocation after fork.
struct Path {
  char buf[768];
  Path(const char* a, const char* b) {
    size_t n = 0;
    for (const char* s : {a, b})
      while (*s && n + 1 < sizeof(buf)) buf[n++] = *s++;
    buf[n] = 0;
  }
  operator const char*() const { return buf; }
};

// Each returns 0 or errno.
int Errno(int rc) { return rc == 0 ? 0 : errno; }

int MkdirP(const char* path) {
  return (mkdir(path, 0755) == 0 || errno == EEXIST) ? 0 : errno;
}

int TouchFile(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// Bind src onto dst (created as a dir or file), then remount it read-only: a plain bind
// ignores MS_RDONLY, so the flags only take effect on the remount.
int BindReadOnly(const char* src, const char* dst, bool is_dir, unsigned long extra = 0) {
  int rc = is_dir ? MkdirP(dst) : TouchFile(dst);
  if (rc) return rc;
  if (mount(src, dst, nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
  return Errno(mount(nullptr, dst, nullptr,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra, nullptr));
}

int AttachCgroup(const ChildResources& res) {
  for (int i = 0; i < res.n_cgroup_fds; ++i) {
    if (write(res.cgroup_fds[i], "0", 1) != 1) return errno;
    close(res.cgroup_fds[i]);
  }
  return 0;
}

int MountRoot(const ChildSpec& spec) {
  // Nothing we mount may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  const char* root = spec.new_root;
  if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0) return errno;
  // Host directories, read-only. On merged-/usr systems /bin, /sbin, /lib* are symlinks
  // into /usr: mirror them as symlinks, bind the real directories.
  static constexpr const char* kHostDirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"};
  for (const char* dir : kHostDirs) {
    struct stat st;
    if (lstat(dir, &st) != 0) continue;  // absent on this host
    Path dst(root, dir);
    if (S_ISLNK(st.st_mode)) {
      char target[256];
      ssize_t n = readlink(dir, target, sizeof(target) - 1);
      if (n < 0) return errno;
      target[n] = 0;
      if (symlink(target, dst) != 0) return errno;
    } else if (int rc = BindReadOnly(dir, dst, true)) {
      return rc;
    }
  }
  return BindReadOnly(spec.etc_dir, Path(root, "/etc"), true);
}

int MountTmp(const ChildSpec& spec) {
  Path dst(spec.new_root, "/tmp");
  if (int rc = MkdirP(dst)) return rc;
  // size=<bytes> with a hand-rolled integer format (no snprintf after fork).
  char opts[64] = "mode=1777,size=";
  char digits[24];
  int n = 0;
  uint64_t v = spec.tmp_size_bytes;
  do { digits[n++] = static_cast<char>('0' + v % 10); v /= 10; } while (v && n < 23);
  size_t at = strlen(opts);
  while (n) opts[at++] = digits[--n];
  opts[at] = 0;
  return Errno(mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, opts));
}

int MountDev(const ChildSpec& spec) {
  Path dev(spec.new_root, "/dev");
  if (int rc = MkdirP(dev)) return rc;
  if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") != 0) return errno;
  static constexpr const char* kNodes[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                           "/dev/urandom"};
  for (const char* node : kNodes) {
    Path dst(spec.new_root, node);
    if (int rc = TouchFile(dst)) return rc;
    if (mount(node, dst, nullptr, MS_BIND, nullptr) != 0) return errno;
  }
  // Python's multiprocessing wants /dev/shm; the private /tmp serves, with its size limit.
  static constexpr const char* kLinks[][2] = {{"/proc/self/fd", "/dev/fd"},
                                              {"/proc/self/fd/0", "/dev/stdin"},
                                              {"/proc/self/fd/1", "/dev/stdout"},
                                              {"/proc/self/fd/2", "/dev/stderr"},
                                              {"/tmp", "/dev/shm"}};
  for (const auto& link : kLinks) {
    if (symlink(link[0], Path(spec.new_root, link[1])) != 0) return errno;
  }
  return Errno(mount(nullptr, dev, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
                     "size=64k,mode=0755"));
}

int MountProc(const ChildSpec& spec) {
  Path proc(spec.new_root, "/proc");
  if (int rc = MkdirP(proc)) return rc;
  if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) return errno;
  // Masked like Docker does: kernel memory, keys, timers, the sysrq trigger.
  static constexpr const char* kMasked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                            "/proc/sysrq-trigger", "/proc/latency_stats"};
  Path null_dev(spec.new_root, "/dev/null");
  for (const char* p : kMasked) {
    Path dst(spec.new_root, p);
    if (access(dst, F_OK) != 0) continue;
    if (mount(null_dev, dst, nullptr, MS_BIND, nullptr) != 0) return errno;
  }
  Path sys(spec.new_root, "/proc/sys");
  if (mount(sys, sys, nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
  return Errno(mount(nullptr, sys, nullptr,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
}

int PivotRoot(const ChildSpec& spec) {
  if (chdir(spec.new_root) != 0) return errno;
  // pivot_root(".", ".") stacks the old root under the new one; detaching "." then drops it.
  if (syscall(SYS_pivot_root, ".", ".") != 0) return errno;
  if (umount2(".", MNT_DETACH) != 0) return errno;
  if (chdir("/") != 0) return errno;
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return errno;
  return Errno(chdir("/var/task"));
}

int NetLoopback() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, "lo", 3);
  int rc = 0;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    rc = errno;
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) rc = errno;
  }
  close(fd);
  return rc;
}

int Rlimits(const ChildSpec& spec) {
  struct rlimit nofile = {spec.nofile_limit, spec.nofile_limit};
  struct rlimit core = {0, 0};
  if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) return errno;
  return Errno(setrlimit(RLIMIT_CORE, &core));
}

int ArrangeFds(const ChildResources& res) {
  // Move both fds out of the way first so the dup2s below cannot clobber either.
  int channel = fcntl(res.channel_fd, F_DUPFD_CLOEXEC, 100);
  int log = fcntl(res.log_fd, F_DUPFD_CLOEXEC, 100);
  if (channel < 0 || log < 0) return errno;
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0) return errno;
  if (dup2(null_fd, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0 ||
      dup2(channel, kChannelFd) < 0)
    return errno;
  return Errno(static_cast<int>(syscall(SYS_close_range, kChannelFd + 1, ~0U, 0)));
}

int DropBounding() {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (cap_drop_bound(static_cast<cap_value_t>(cap)) != 0 && errno != EINVAL) return errno;
  }
  return 0;
}

int SetIds(const ChildSpec& spec) {
  gid_t gid = spec.gid;
  if (setgroups(1, &gid) != 0) return errno;
  if (setresgid(spec.gid, spec.gid, spec.gid) != 0) return errno;
  return Errno(setresuid(spec.uid, spec.uid, spec.uid));
}

int DropCaps(const ChildResources& res) {
  if (cap_set_proc(res.empty_caps) != 0) return errno;
  return Errno(cap_reset_ambient());
}

uint64_t NowMicros() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

void ApplyInChild(const ChildSpec& spec, const ChildResources& res, SetupReport* report) {
  report->ok = 0;
  report->n_timings = 0;
  auto run = [&](SetupStep step, auto&& fn) -> bool {
    uint64_t t0 = NowMicros();
    int err = fn();
    report->timings[report->n_timings++] = {static_cast<uint32_t>(step),
                                            static_cast<uint32_t>(NowMicros() - t0)};
    if (err != 0) {
      report->failed_step = static_cast<uint32_t>(step);
      report->err = err;
      return false;
    }
    return true;
  };
  using S = SetupStep;
  // The order is the design: see child_setup.h. Each line is one named step.
  if (!run(S::kAttachCgroup, [&] { return AttachCgroup(res); })) return;
  if (!run(S::kCgroupNs, [&] { return Errno(unshare(CLONE_NEWCGROUP)); })) return;
  if (!run(S::kMountRoot, [&] { return MountRoot(spec); })) return;
  if (!run(S::kMountCode, [&] {
        int rc = MkdirP(Path(spec.new_root, "/var"));
        return rc ? rc : BindReadOnly(spec.code_dir, Path(spec.new_root, "/var/task"), true);
      }))
    return;
  if (!run(S::kMountTmp, [&] { return MountTmp(spec); })) return;
  if (!run(S::kMountDev, [&] { return MountDev(spec); })) return;
  if (!run(S::kMountProc, [&] { return MountProc(spec); })) return;
  if (!run(S::kPivotRoot, [&] { return PivotRoot(spec); })) return;
  if (!run(S::kNetLoopback, [&] { return NetLoopback(); })) return;
  if (!run(S::kHostname, [&] {
        return Errno(sethostname(spec.hostname, strnlen(spec.hostname, sizeof(spec.hostname))));
      }))
    return;
  if (!run(S::kFds, [&] { return ArrangeFds(res); })) return;
  if (!run(S::kRlimits, [&] { return Rlimits(spec); })) return;
  if (!run(S::kDropBounding, [&] { return DropBounding(); })) return;
  if (!run(S::kSetIds, [&] { return SetIds(spec); })) return;
  if (!run(S::kDropCaps, [&] { return DropCaps(res); })) return;
  if (!run(S::kNoNewPrivs, [&] { return Errno(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)); })) return;
  if (!run(S::kSeccomp, [&] { return res.seccomp ? -InstallSeccompInChild(res.seccomp) : 0; }))
    return;
  report->ok = 1;
}

}  // namespace forklet::sandbox
