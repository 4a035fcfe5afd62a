// Instance cgroups behind one interface for cgroup v1 and v2, always below the daemon's own cgroup.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/error.h"

namespace forklet::sandbox {

struct CgroupLimits {
  uint64_t memory_bytes = 128ull << 20;  // memory + swap limit (swap included where the kernel can)
  uint32_t pids_max = 256;
  uint32_t cpu_weight = 1024;  // v1 cpu.shares scale (2..262144); mapped to cpu.weight on v2
};

struct CgroupStats {
  uint64_t memory_peak_bytes = 0;  // since creation or the last ResetPeak()
  uint64_t memory_current_bytes = 0;
  uint64_t cpu_usage_ns = 0;       // cumulative CPU time of the cgroup
  uint64_t oom_kills = 0;          // times the kernel OOM-killed a task of this cgroup
};

// One instance's cgroup: a directory per hierarchy (v1) or a single directory (v2).
// Owned by exactly one instance; Destroy() (or the destructor) kills what is left and removes it.
class Cgroup {
 public:
  virtual ~Cgroup() = default;
  virtual const std::string& name() const = 0;
  // Its directories, one per hierarchy (v1) or one (v2): for diagnostics and tests.
  virtual const std::vector<std::string>& paths() const = 0;
  virtual Status SetLimits(const CgroupLimits& limits) = 0;
  // A CPU quota in thousandths of one core (1000: a full core), per 100 ms period (v1
  // cpu.cfs_quota_us, v2 cpu.max), at least 1 ms; 0 removes it. Shares divide what is contended,
  // the quota caps what is taken even from an idle host.
  virtual Status LimitCpu(uint32_t permille) = 0;
  // Stops every task (v1 freezer.state FROZEN, v2 cgroup.freeze 1) and returns without waiting
  // for them to stop; Thaw lets them run again. Both cost one write to a file kept open. An idle
  // instance is frozen between invocations; Destroy thaws what it kills (v1 frozen tasks do not
  // die before). Where the tree cannot freeze (can_freeze()), both do nothing.
  virtual Status Freeze() = 0;
  virtual Status Thaw() = 0;
  // Opens (O_WRONLY|O_CLOEXEC) each hierarchy's cgroup.procs. A forked child writes "0" to every
  // fd to move itself in; the caller owns and closes the fds.
  virtual Result<std::vector<int>> OpenProcsFds() = 0;
  virtual Result<CgroupStats> ReadStats() = 0;
  // The invocation path's read: memory_peak_bytes and cpu_usage_ns only, through control files
  // kept open (pread); nothing written. A few microseconds instead of tens.
  virtual Result<CgroupStats> TakeUsage() = 0;
  // The peak counts from now (v1: max_usage_in_bytes; v2: memory.peak where writable): once,
  // after an instance's init, so that its peak is that of its invocations, as Lambda's
  // "Max Memory Used" (the execution environment's high-water mark, never lowered while warm).
  virtual Status ResetPeak() = 0;
  virtual Result<std::vector<int>> Pids() = 0;
  // SIGKILL every task (v2: cgroup.kill when present), wait until empty, remove the directories.
  virtual Status Destroy() = 0;
};

// The subtree forklet owns: <own cgroup>/forklet.<tag>/ in every hierarchy it uses.
class CgroupTree {
 public:
  virtual ~CgroupTree() = default;
  virtual const char* version() const = 0;  // "v1" or "v2"
  virtual std::string root_description() const = 0;  // e.g. "memory:/process_api/x/forklet.ab12"
  // Creates <root>/<name>. Fails with EEXIST if it exists.
  virtual Result<std::unique_ptr<Cgroup>> Create(const std::string& name) = 0;
  // Start-up cleanup: kill every process in, and remove, every cgroup below the root (what a
  // crashed predecessor left). Returns how many cgroups it removed.
  virtual Result<int> RemoveStale() = 0;
  // Removes the root itself (daemon shutdown); fails if children remain.
  virtual Status RemoveRoot() = 0;
  // At most this many tasks in the whole subtree (the root's pids.max): instances and zygotes
  // together, so that many busy instances never take the host's last pids.
  virtual Status LimitSubtreePids(uint64_t max) = 0;
  // v1 only: the socket buffers of every instance together (the root's memory.kmem.tcp limit,
  // which each instance's charges count against). v2 charges sockets to memory: nothing to do.
  virtual Status LimitSubtreeSocketMemory(uint64_t bytes) = 0;
  // The whole subtree's CPU weight against its siblings, on the v1 cpu.shares scale (1024: one
  // busy nice-0 thread). Its siblings are the daemon's own threads (v1, and v2 without
  // delegation: each thread weighs 1024) or the daemon's supervisor leaf (delegated v2). On v2 it
  // is written as cpu.weight in proportion (1024 -> 100), not through the per-instance mapping.
  virtual Status WeighSubtreeCpu(uint32_t shares) = 0;
  // Whether Cgroup::Freeze stops anything (v1: a freezer hierarchy is mounted).
  virtual bool can_freeze() const = 0;
};

enum class CgroupVersion { kAuto, kV1, kV2 };

// The subtree's pids limit: what the budget's instances may hold (budget_mb / 128 instances of
// per_instance pids, plus the zygotes'), never more than pid_max less a quarter (at least 1024)
// left to the host.
uint64_t SubtreePidsMax(uint64_t pid_max, uint64_t budget_mb, uint64_t per_instance);
// The subtree's socket-buffer limit on v1: half of the host's TCP pressure threshold
// (net.ipv4.tcp_mem's middle value, in pages), so that forklet's instances together never push
// the host's TCP into pressure, let alone to its hard limit.
uint64_t SubtreeSocketBytes(uint64_t tcp_mem_pressure_pages, uint64_t page_size);

// Discovers the hierarchies of this process (/proc/self/cgroup, mounts), picks v1 when the memory
// controller is on a v1 hierarchy, else v2, and creates the root "forklet.<tag>" below this
// process's own cgroup. Never writes to a cgroup it did not create.
// v2 limits need memory, pids and cpu enabled in the own cgroup's cgroup.subtree_control, else
// SetLimits names what is missing; under systemd's delegation the daemon first moves itself into
// "<own>/supervisor" (cgroup_delegation.h), and the root then goes beside that leaf.
// `version` forces a backend (tests; hosts with both mounted); kAuto picks as described above.
Result<std::unique_ptr<CgroupTree>> OpenCgroupTree(const std::string& tag,
                                                   CgroupVersion version = CgroupVersion::kAuto);

// Ready-made cgroups created ahead of time in the background (cgroup mkdir is ~40 us per
// hierarchy), so the invocation path only sets limits. Thread-safe.
class CgroupPool {
 public:
  CgroupPool(CgroupTree* tree, size_t target);
  ~CgroupPool();  // stops the filler and destroys unused cgroups
  // A fresh cgroup with these limits: from the pool when one is ready, else created inline.
  Result<std::unique_ptr<Cgroup>> Acquire(const CgroupLimits& limits);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace forklet::sandbox
