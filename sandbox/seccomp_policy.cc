// The default seccomp policy: a Docker-style allowlist compiled once with libseccomp, and its
// async-signal-safe installer.
#include "sandbox/seccomp_policy.h"

#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace forklet::sandbox {
namespace {

// Allowed unconditionally: Docker's default list for x86-64 without its 32-bit-only names and
// without adjtimex and clock_adjtime (time is the host's), name_to_handle_at (half of the
// open_by_handle_at escape), fanotify_mark (fanotify_init is denied), modify_ldt (old bug source,
// unused by our runtimes), statmount/listmount and epoll_*_old (unimplemented). Names this
// libseccomp does not know (Debian 12's: mseal, uretprobe, *xattrat) are skipped: EPERM.
constexpr const char* kAllowed[] = {
    // files, directories, descriptors
    "access", "cachestat", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "flock",
    "fstat", "fstatfs", "fsync", "ftruncate", "futimesat", "getcwd", "getdents", "getdents64",
    "lchown", "link", "linkat", "lseek", "lstat", "mkdir", "mkdirat", "mknod", "mknodat",
    "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "rename",
    "renameat", "renameat2", "rmdir", "sendfile", "splice", "stat", "statfs", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "umask", "unlink",
    "unlinkat", "utime", "utimensat", "utimes", "vmsplice", "write", "writev",
    // extended attributes
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat", "lgetxattr",
    "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr", "removexattr",
    "removexattrat", "setxattr", "setxattrat",
    // notification, polling, event descriptors
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "eventfd", "eventfd2", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "pipe", "pipe2", "poll", "ppoll", "pselect6", "select", "signalfd",
    "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_settime",
    // I/O priority (Linux AIO and io_uring are not here: denied)
    "ioprio_get", "ioprio_set",
    // memory
    "brk", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mremap", "mseal", "msync", "munlock",
    "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
    // processes and threads (clone is argument-checked below)
    "arch_prctl", "execve", "execveat", "exit", "exit_group", "fork", "get_robust_list",
    "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getrlimit", "getrusage", "getsid", "gettid", "pidfd_open", "prctl",
    "prlimit64", "process_mrelease", "restart_syscall", "rseq", "set_robust_list",
    "set_thread_area", "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid",
    "sysinfo", "times", "uname", "uretprobe", "vfork", "wait4", "waitid",
    // futexes and scheduling
    "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield",
    // self-restriction only: no_new_privs is set, capabilities are gone
    "capget", "capset", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "seccomp",
    // identity: without capabilities only no-ops and reductions succeed
    "getegid", "geteuid", "getgid", "getgroups", "getresgid", "getresuid", "getuid", "setfsgid",
    "setfsuid", "setgid", "setgroups", "setregid", "setresgid", "setresuid", "setreuid", "setuid",
    // signals (the pid namespace confines who can be signalled)
    "alarm", "getitimer", "kill", "pause", "pidfd_send_signal", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_tgsigqueueinfo", "setitimer", "sigaltstack", "tgkill", "tkill",
    // clocks and timers: reading and sleeping, never setting
    "clock_getres", "clock_gettime", "clock_nanosleep", "gettimeofday", "nanosleep", "time",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
    // sockets (socket itself is family-checked below)
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
    // System V and POSIX IPC, private to the instance's IPC namespace
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
    "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop", "shmat",
    "shmctl", "shmdt", "shmget",
    // every request except TIOCSTI and TIOCLINUX (see IoctlPrefix)
    "ioctl",
};

constexpr const char* kDenied[] = {
    // mounts, roots, namespaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig",
    "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "sethostname",
    "setdomainname",
    // other processes' memory, descriptors and state
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd",
    // kernel attack surface
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "modify_ldt", "lookup_dcookie",
    // the host: kernel, modules, devices, clock, accounting, logs
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "create_module", "get_kernel_syms", "query_module", "reboot", "swapon", "swapoff", "acct",
    "quotactl", "quotactl_fd", "syslog", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "iopl", "ioperm", "nfsservctl", "uselib", "vm86", "vm86old", "vhangup",
    "_sysctl", "sysfs", "ustat",
    // Linux AIO: its contexts come from one host-wide table (fs.aio-max-nr, 65536 events), which
    // four io_setup calls of one instance used up; no runtime we serve uses it (libuv, Python
    // and Node do file I/O on threads)
    "io_setup", "io_submit", "io_getevents", "io_pgetevents", "io_cancel", "io_destroy",
    // file handles (the "shocker" escape), fanotify
    "open_by_handle_at", "name_to_handle_at", "fanotify_init",
    // NUMA placement: Docker allows it with CAP_SYS_NICE only; neither CPython nor Node uses it
    "mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node", "migrate_pages",
    "move_pages",
};

consteval bool AllDistinct() {
  auto same = [](const char* a, const char* b) { return std::string_view(a) == b; };
  for (const char* a : kAllowed) {
    int seen = 0;
    for (const char* b : kAllowed) seen += same(a, b);
    for (const char* d : kDenied) seen += same(a, d);
    if (seen != 1) return false;
  }
  return true;
}
static_assert(AllDistinct(), "a syscall is listed twice, or both allowed and denied");

// clone() may create a process or thread, never a namespace (as Docker without CAP_SYS_ADMIN).
constexpr scmp_datum_t kCloneNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                              CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                              CLONE_NEWCGROUP;

// personality(): Linux, Linux32, UNAME26, both, and the 0xffffffff query. No READ_IMPLIES_EXEC,
// ADDR_NO_RANDOMIZE and the like, which weaken the process's own hardening.
constexpr scmp_datum_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// What a function needs: local IPC, the network, and netlink for getaddrinfo and `ip`.
constexpr scmp_datum_t kSocketFamilies[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
// socketpair reaches a family's code as socket does (AF_VSOCK answered ENODEV from the vsock
// module while socket(AF_VSOCK) was denied); only AF_UNIX makes pairs among the families above.
constexpr scmp_datum_t kSocketPairFamilies[] = {AF_UNIX};

struct CtxRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxRelease>;

struct OwnedFd {
  int fd;
  ~OwnedFd() {
    if (fd >= 0) close(fd);
  }
};

Error LibError(std::string op, int rc) { return SysError("seccomp: " + std::move(op), -rc); }

// A rule for a syscall this policy depends on: a name libseccomp cannot resolve is an error.
Status AddRule(scmp_filter_ctx ctx, uint32_t action, const char* name,
               std::initializer_list<scmp_arg_cmp> args) {
  int rc = seccomp_rule_add_array(ctx, action, seccomp_syscall_resolve_name(name), args.size(),
                                  args.begin());
  if (rc != 0) return LibError(std::string("rule for ") + name, rc);
  return {};
}

Status AddRules(scmp_filter_ctx ctx) {
  for (const char* name : kAllowed) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr < 0) continue;  // unknown to this libseccomp, or not an x86-64 syscall
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc != 0)
      return LibError(std::string("allow ") + name, rc);
  }
  if (Status s = AddRule(ctx, SCMP_ACT_ALLOW, "clone",
                         {SCMP_A0(SCMP_CMP_MASKED_EQ, kCloneNamespaceFlags, 0)});
      !s)
    return s;
  // clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes glibc use clone.
  if (Status s = AddRule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", {}); !s) return s;
  for (scmp_datum_t p : kPersonalities) {
    if (Status s = AddRule(ctx, SCMP_ACT_ALLOW, "personality", {SCMP_A0(SCMP_CMP_EQ, p)}); !s)
      return s;
  }
  for (scmp_datum_t family : kSocketFamilies) {
    if (Status s = AddRule(ctx, SCMP_ACT_ALLOW, "socket", {SCMP_A0(SCMP_CMP_EQ, family)}); !s)
      return s;
  }
  for (scmp_datum_t family : kSocketPairFamilies) {
    if (Status s = AddRule(ctx, SCMP_ACT_ALLOW, "socketpair", {SCMP_A0(SCMP_CMP_EQ, family)}); !s)
      return s;
  }
  return {};
}

// libseccomp cannot say "allow ioctl unless the request is TIOCSTI or TIOCLINUX" under an EPERM
// default (a rule may not repeat the default action, one argument takes one comparison, and an
// unconditional allow overrides conditional rules). The kernel also reads the request as 32 bits,
// so a check must ignore the upper half (the CVE-2019-10063 bypass). This prefix runs before
// libseccomp's program and refuses those two requests; everything else falls through to it.
std::vector<sock_filter> IoctlPrefix() {
  static_assert(std::endian::native == std::endian::little, "args[1] low half is at +0");
  constexpr uint32_t kArch = offsetof(seccomp_data, arch), kNr = offsetof(seccomp_data, nr),
                     kRequestLow = offsetof(seccomp_data, args) + sizeof(uint64_t);
  const uint32_t native_arch = seccomp_arch_native();  // SCMP_ARCH_* are AUDIT_ARCH_* values
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, native_arch, 0, 6),  // other ABIs: libseccomp decides
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kRequestLow),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  };
}

// seccomp_export_bpf writes to a descriptor; a memfd keeps the bytes off the disk.
Result<std::vector<sock_filter>> ExportBpf(scmp_filter_ctx ctx) {
  OwnedFd mem{memfd_create("forklet-seccomp", MFD_CLOEXEC)};
  if (mem.fd < 0) return SysError("seccomp: memfd_create");
  if (int rc = seccomp_export_bpf(ctx, mem.fd); rc != 0) return LibError("export_bpf", rc);
  struct stat st;
  if (fstat(mem.fd, &st) != 0) return SysError("seccomp: fstat exported filter");
  if (st.st_size <= 0 || st.st_size % sizeof(sock_filter) != 0)
    return MakeError("seccomp: export_bpf", "odd size " + std::to_string(st.st_size));
  std::vector<sock_filter> out(st.st_size / sizeof(sock_filter));
  auto* dst = reinterpret_cast<char*>(out.data());
  for (off_t done = 0; done < st.st_size;) {
    ssize_t n = pread(mem.fd, dst + done, st.st_size - done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return SysError("seccomp: read exported filter", n < 0 ? errno : EIO);
    done += n;
  }
  return out;
}

}  // namespace

Result<SeccompProgram> CompileDefaultPolicy() {
  Ctx ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return MakeError("seccomp: init", "libseccomp could not allocate a filter");
  // Only the native ABI is in the filter; 32-bit and x32 calls kill the process.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS))
    return LibError("set bad-arch action", rc);
  // A binary search over syscall numbers instead of a linear chain of ~300 comparisons.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2))
    return LibError("set optimize level", rc);
  if (Status s = AddRules(ctx.get()); !s) return s.error();
  auto body = ExportBpf(ctx.get());
  if (!body) return body.error();

  SeccompProgram prog{IoctlPrefix()};
  prog.instructions.insert(prog.instructions.end(), body->begin(), body->end());
  if (prog.instructions.size() > BPF_MAXINSNS)
    return MakeError("seccomp: compile", "filter has " + std::to_string(prog.instructions.size()) +
                                             " instructions, the kernel takes " +
                                             std::to_string(BPF_MAXINSNS));
  return prog;
}

std::span<const char* const> DeniedSyscallNames() { return kDenied; }

int InstallSeccompInChild(const sock_fprog* prog) {
  if (prog == nullptr || prog->len == 0) return -EINVAL;
  // No SECCOMP_FILTER_FLAG_SPEC_ALLOW: since Linux 5.16 installing a filter no longer forces the
  // SSBD/STIBP mitigations on x86 unless the operator boots with spec_store_bypass_disable=seccomp
  // (or spectre_v2_user=seccomp), and then that choice is the operator's to keep, as in Docker.
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) == 0) return 0;
  if (errno != ENOSYS) return -errno;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) == 0 ? 0 : -errno;
}

}  // namespace forklet::sandbox
