// The steps a freshly cloned child applies to become an instance's sandbox, in order.
// Prepared in the parent (ChildSpec is plain data), applied in the child without allocating.
//
// The zygote prepares once, before any fork (template_root.h): it moves into a private mount
// namespace whose root is a read-only template (host /usr, /lib*, a minimal /etc, /dev). A child
// cloned with CLONE_NEWNS copies only that small tree, so its own steps are few: code, /tmp,
// /proc. No per-instance pivot_root, and no host mount is ever in an instance's namespace.
#pragma once

#include <linux/filter.h>
#include <sys/capability.h>

#include <cstdint>

namespace forklet::sandbox {

// Every step has a name; a failure reports {step, errno}; each step's duration is timed.
enum class SetupStep : uint8_t {
  kAttachCgroup,    // write "0" to the instance cgroup's procs files
  kFaultAhead,      // populate the pages a sibling touched (ChildResources::fault_ahead), in its
                    // cgroup now: a few syscalls instead of hundreds of page faults
  kCgroupNs,        // unshare(CLONE_NEWCGROUP) now that the child sits in its cgroup
  kMountCode,       // function code read-only at /var/task, its layers at /opt (from fds: the
                    // zygote cannot see them)
  kMountTmp,        // private size-limited /tmp: the function's disk area, or a tmpfs
  kMountProc,       // fresh /proc for the new pid namespace, sensitive paths masked
  kNetwork,         // join the pooled net namespace (lo already up), or make one and bring lo up
  kHostname,
  kFds,             // 0=/dev/null, 1,2=log, 3=channel; everything else closed
  kRlimits,         // after kFds: a low nofile limit would refuse the fd shuffle
  kDropBounding,    // empty the capability bounding set (needs CAP_SETPCAP, so before setuid)
  kSetIds,          // unprivileged uid/gid, no supplementary groups
  kDropCaps,        // effective, permitted, inheritable and ambient cleared (libcap)
  kNoNewPrivs,
  kSeccomp,         // last: the filter may deny what the steps above need
  kCount
};

const char* SetupStepName(SetupStep step);

// Namespaces created by clone() itself; the cgroup namespace comes later (kCgroupNs), and the
// net namespace is usually a pooled one joined in kNetwork (then clone leaves out CLONE_NEWNET).
constexpr int kSandboxCloneFlags = 0x20000000 /*CLONE_NEWPID*/ | 0x00020000 /*CLONE_NEWNS*/ |
                                   0x08000000 /*CLONE_NEWIPC*/ | 0x04000000 /*CLONE_NEWUTS*/ |
                                   0x40000000 /*CLONE_NEWNET*/;

constexpr int kCloneNewNet = 0x40000000;
constexpr int kMaxCgroupFds = 8;
constexpr int kChannelFd = 3;  // where the runner finds its channel to the daemon

// Plain data, fixed size: travels in the fork request and is read by the child as is.
struct ChildSpec {
  char hostname[64];
  uint64_t tmp_size_bytes;
  uint32_t uid;
  uint32_t gid;
  uint32_t nofile_limit;
  uint32_t reserved;
};

// Filled by the zygote after receiving a request: the fds (valid in the child after clone) and
// what the zygote prepared once (the seccomp program, an empty capability set).
// Pages of the zygote's address space that its children go on to touch (zygote/fault_ahead.h):
// a child populates them right after joining its cgroup. write: MADV_POPULATE_WRITE (copy the
// zygote's page or allocate a zero page now), else MADV_POPULATE_READ (map a file page).
struct FaultAheadRange {
  uintptr_t start;
  uint32_t pages;
  uint32_t write;
};

struct ChildResources {
  int channel_fd = -1;
  int log_fd = -1;
  int code_fd = -1;  // the function's code as a detached read-only mount (DetachedReadOnlyTree);
                     // -1: none yet (a stem cell), /var/task stays empty
  int opt_fd = -1;   // the function's layers merged, a detached read-only mount for /opt; -1: none
  int net_fd = -1;   // a fresh net namespace from the daemon's pool; -1: clone made one
  int tmp_fd = -1;   // the instance's disk-backed /tmp as a detached mount (sandbox/tmp_area.h);
                     // -1: a tmpfs of ChildSpec::tmp_size_bytes
  int cgroup_fds[kMaxCgroupFds];
  int n_cgroup_fds = 0;
  const sock_fprog* seccomp = nullptr;  // nullptr: no filter (tests only)
  cap_t empty_caps = nullptr;           // from cap_init(), made before fork
  const FaultAheadRange* fault_ahead = nullptr;  // none: every page faults in as touched
  int n_fault_ahead = 0;
};

struct StepTiming {
  uint32_t step;
  uint32_t micros;
};

// The first frame a child writes on its channel: how setup went.
struct SetupReport {
  uint32_t ok;             // 1 or 0
  uint32_t failed_step;    // SetupStep, when !ok
  int32_t err;             // errno of the failed step
  uint32_t n_timings;
  StepTiming timings[static_cast<int>(SetupStep::kCount)];
};

// Runs in the child right after clone(), inside the template root. Async-signal-safe; one-way.
// On success the process is sandboxed, its channel is at kChannelFd, and report holds the step
// timings. On failure it returns with report.ok == 0 and the caller must _exit after sending the
// report.
void ApplyInChild(const ChildSpec& spec, const ChildResources& res, SetupReport* report);

}  // namespace forklet::sandbox
