// The child's setup steps. Everything here runs between clone() and the runner: only
// async-signal-safe calls, no allocation, no locks, no logging.
#include "sandbox/child_setup.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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
      "attach_cgroup", "fault_ahead", "cgroup_ns", "mount_code", "mount_tmp", "mount_proc",
      "network",        "hostname",  "fds",        "rlimits",      "drop_bounding",
      "set_ids",       "drop_caps", "no_new_privs", "seccomp"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(SetupStep::kCount));
  auto i = static_cast<size_t>(step);
  return i < static_cast<size_t>(SetupStep::kCount) ? kNames[i] : "unknown";
}

namespace {

// Each returns 0 or errno.
int Errno(int rc) { return rc == 0 ? 0 : errno; }

int AttachCgroup(const ChildResources& res) {
  for (int i = 0; i < res.n_cgroup_fds; ++i) {
    if (write(res.cgroup_fds[i], "0", 1) != 1) return errno;
    close(res.cgroup_fds[i]);
  }
  return 0;
}

// Never fails the setup: a kernel without MADV_POPULATE_* (before 5.14) answers EINVAL, and a
// range the child no longer maps (or cannot be charged for) only means those pages fault later.
int FaultAhead(const ChildResources& res) {
  for (int i = 0; i < res.n_fault_ahead; ++i) {
    const FaultAheadRange& r = res.fault_ahead[i];
    constexpr int kPopulateRead = 22, kPopulateWrite = 23;  // MADV_POPULATE_READ/WRITE, Linux 5.14
    if (madvise(reinterpret_cast<void*>(r.start), uintptr_t{r.pages} << 12,
                r.write ? kPopulateWrite : kPopulateRead) != 0 &&
        errno == EINVAL)
      break;
  }
  return 0;
}

// The code arrives as a detached read-only mount (the zygote's root does not contain it). A
// stem cell (code_fd -1) boots with an empty /var/task and gets its code later (zygote/protocol.h
// kMountCode).
int MountCode(const ChildResources& res) {
  if (res.code_fd < 0) return 0;
  if (move_mount(res.code_fd, "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH) != 0) return errno;
  if (res.opt_fd >= 0 && move_mount(res.opt_fd, "", AT_FDCWD, "/opt", MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return errno;
  return Errno(chdir("/var/task"));
}

int MountTmp(const ChildSpec& spec, const ChildResources& res) {
  if (res.tmp_fd >= 0) return Errno(move_mount(res.tmp_fd, "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH));
  // size=<bytes> with a hand-rolled integer format (no snprintf after fork).
  char opts[64] = "mode=1777,size=";
  char digits[24];
  int n = 0;
  uint64_t v = spec.tmp_size_bytes;
  do { digits[n++] = static_cast<char>('0' + v % 10); v /= 10; } while (v && n < 23);
  size_t at = strlen(opts);
  while (n) opts[at++] = digits[--n];
  opts[at] = 0;
  return Errno(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts));
}

int MountProc() {
  // Over the zygote's /proc, which stays hidden below it: the instance has no way to unmount.
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) return errno;
  // Masked like Docker does: kernel memory, keys, timers, the sysrq trigger; and the host's boot
  // line (it named the VM's kernel, root device and console).
  static constexpr const char* kMasked[] = {"/proc/kcore",         "/proc/keys",
                                            "/proc/timer_list",    "/proc/sysrq-trigger",
                                            "/proc/latency_stats", "/proc/cmdline"};
  for (const char* p : kMasked) {
    if (access(p, F_OK) != 0) continue;
    if (mount("/dev/null", p, nullptr, MS_BIND, nullptr) != 0) return errno;
  }
  if (mount("/proc/sys", "/proc/sys", nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
  return Errno(mount(nullptr, "/proc/sys", nullptr,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
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
  if (!run(S::kFaultAhead, [&] { return FaultAhead(res); })) return;
  if (!run(S::kCgroupNs, [&] { return Errno(unshare(CLONE_NEWCGROUP)); })) return;
  if (!run(S::kMountCode, [&] { return MountCode(res); })) return;
  if (!run(S::kMountTmp, [&] { return MountTmp(spec, res); })) return;
  if (!run(S::kMountProc, [&] { return MountProc(); })) return;
  if (!run(S::kNetwork, [&] {
        if (res.net_fd < 0) return NetLoopback();  // clone made the namespace
        int rc = Errno(setns(res.net_fd, CLONE_NEWNET));
        close(res.net_fd);
        return rc;
      }))
    return;
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
