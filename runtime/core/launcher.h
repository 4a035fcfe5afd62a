// Makes new instances: picks or boots the runtime's zygote, prepares the sandbox spec and the
// cgroup, asks the zygote to fork, and waits for the instance to be ready.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "runtime/core/code_mounts.h"
#include "runtime/core/instance.h"
#include "runtime/core/zygote_bank.h"
#include "runtime/core/zygote_supervisor.h"
#include "runtime/core/netns_cache.h"
#include "runtime/core/netns_pool.h"
#include "runtime/core/runners.h"
#include "runtime/core/preforks.h"
#include "runtime/core/stem_cells.h"
#include "runtime/core/tmp_area_pool.h"
#include "runtime/registry/registry.h"
#include "runtime/snapshot/criu.h"
#include "runtime/snapshot/snapshot_store.h"
#include "sandbox/cgroup.h"
#include "sandbox/seccomp_policy.h"
#include "zygote/zygote_client.h"

namespace forklet::core {

// Whether a function's new instances may be restored from a CRIU snapshot of an initialized one
// (the function's FORKLET_SNAPSHOT, else the daemon's default). auto: only functions whose init
// takes kAutoMinInitMs or more are checkpointed, and a restore is chosen while it measures faster
// than a zygote start with init.
enum class SnapshotPolicy { kOff, kOn, kAuto };
constexpr double kAutoMinInitMs = 50;
// Failed checkpoints of one deployment after which it is not tried again (the reason is in health).
constexpr uint64_t kMaxSnapshotFailures = 3;
std::optional<SnapshotPolicy> ParseSnapshotPolicy(const std::string& text);

struct LauncherOptions {
  std::string state_dir;       // sandbox/ below it holds the root mount point and the /etc
  RunnerPaths runners;         // each runtime family's zygote (runners.h)
  std::string cgroup_tag;      // forklet.<tag> below the daemon's cgroup
  size_t cgroup_pool_size = 8;
  // A stem cell's /tmp (a tmpfs) until a function takes it, and every instance's /tmp when the host
  // cannot make disk-backed areas (tmp_area_pool.h).
  uint64_t tmp_size_bytes = 512ull << 20;
  // Disk-backed /tmp areas kept ready per EphemeralStorage size in use; 0: instances' /tmp is a
  // tmpfs of the function's size, whose pages count against its memory.
  size_t tmp_pool_size = 4;
  uint32_t pids_max = 1024;
  // All of forklet's cgroups together (instances and zygotes) hold at most this many tasks;
  // 0: sandbox::SubtreePidsMax of the host's pid_max and memory_budget_mb.
  uint64_t subtree_pids_max = 0;
  // The CPU weight of all instances and zygotes together against the daemon's own threads
  // (CgroupTree::WeighSubtreeCpu; cpu.shares scale, 1024 = one busy thread). At 1024 the whole
  // tree weighs as one connection thread, and with 8 keep-alive connections on 2 cores a warm
  // runner waits behind the daemon's threads (p99 2.9-15.9 ms against 0.96-1.9 ms at 4096); but
  // a heavier tree also lets what runs there beside a start (an instance retired then) hold the
  // daemon back: with a retired instance killed 2 ms after its answer, zygote starts measured
  // 0.97 and 1.24 ms at 4096 against 0.77 and 0.94 at 1024 (docs/design.md, CPU). The default
  // stays the kernel's; each instance stays bounded by its own CPU quota either way.
  uint32_t instances_cpu_weight = 1024;
  uint64_t memory_budget_mb = 8192;  // the scheduler's, for sizing the subtree's pids limit
  // Keeps the kernel's cgroup migration lock in its writer-ready state with a no-op migration
  // every few ms, so an instance's cgroup attach costs ~30 us instead of an RCU grace period
  // (~10 ms) after idle. The cost: one small write every 4 ms and a memory barrier in every
  // fork/exit on the host, the trade-off cgroup2's `favordynmods` makes.
  bool cgroup_warmer = true;
  size_t netns_pool_size = 4;  // net namespaces made ahead of time; 0: each clone makes its own
  // Namespaces of ended instances kept for their function version's next new instance
  // (netns_cache.h): per function version, and for all together; 0: none is reused.
  size_t netns_reuse_per_function = 8;
  size_t netns_reuse_max = 64;
  // Instances' network for functions without FORKLET_NETWORK (sandbox/net/egress_network.h): egress
  // gives each an eth0 on the daemon's bridge with NAT out; none keeps loopback only. The bridge
  // and its rules are made at start-up when this is egress, else at the first egress function.
  sandbox::net::NetworkMode network = sandbox::net::NetworkMode::kEgress;
  sandbox::net::EgressOptions egress;  // id: derived from cgroup_tag when empty
  // Snapshots (runtime/snapshot): need CRIU and the net namespace pool.
  SnapshotPolicy snapshot_policy = SnapshotPolicy::kAuto;  // for functions that set none
  std::string criu;            // criu executable; empty: the set-up script's, then $PATH
  std::string criu_preload;    // libforklet_criu_shim.so
  uint64_t snapshot_max_bytes = 2ull << 30;  // all snapshots together (LRU)
  // Pre-booted Node instances kept ready (stem_cells.h); 0: every new Node instance is cold.
  size_t node_stem_cells = 1;
  // A stem cell's memory limit (MB) until a function takes it; what it counts against the
  // memory budget. A stem cell using more than a function's MemorySize is not given to it.
  uint64_t stem_cell_mb = 128;
  // Instances forked ahead of demand per recently started function whose runtime has a zygote per
  // function (preforks.h): how many per function (0: off) and what each counts against the
  // memory budget while it waits for its INIT.
  size_t preforked = 1;
  uint64_t prefork_mb = 8;
  // Zygotes serve one function each (zygote_bank.h): spares per runtime family kept ready, what
  // each zygote counts against the memory budget, how long one outlives its function's last instance.
  ZygoteBankOptions zygotes;
};

struct Launched {
  std::unique_ptr<Instance> instance;  // null when init failed (see init_error)
  StartKind start = StartKind::kZygote;
  Stages stages;
  double init_ms = 0;
  ChannelResult init_error;            // outcome != kSuccess when the function's init failed
};

// CPU in proportion to memory, as Lambda: one full core (1000) at 1,769 MB. The shares' weight
// and, once init is done, the quota (sandbox::Cgroup::LimitCpu).
uint32_t CpuPermilleFor(uint64_t memory_mb);
// The quota: that proportion, but never below a quarter of a core (proportional from 442 MB up).
// Lambda's 128/1769 would make a 128 MB function's out-of-memory take ~7 s on hosts whose
// first-touch page faults are slow (this VM: ~0.5 s of CPU to fault 128 MB in), past its timeout.
constexpr uint32_t kMinCpuQuotaPermille = 250;
uint32_t CpuQuotaPermilleFor(uint64_t memory_mb);

// A function's network: its FORKLET_NETWORK (egress or none), else the daemon's default.
sandbox::net::NetworkMode NetworkOf(const registry::FunctionConfig& config, sandbox::net::NetworkMode fallback);

// Identifies one deployment of a function: an instance only ever serves its own generation.
std::string Generation(const registry::FunctionConfig& config);

struct ZygoteInfo {
  std::string runtime;
  std::string function;  // the function it serves; empty: a spare (or Node's fork server)
  long instances = 0;    // of that function, alive
  pid_t pid = 0;
  double boot_ms = 0;
  uint64_t forks = 0;
  uint64_t fault_ahead_pages = 0;  // learned pages its children populate (zygote/fault_ahead.h)
};

class Launcher {
 public:
  static Result<std::unique_ptr<Launcher>> Create(const LauncherOptions& options);
  ~Launcher();

  // A new instance: restored from the function's snapshot when there is one and its policy
  // allows (start kind restore; a failed restore falls back), else forked from the zygote. A
  // zygote start of a function that should have a snapshot queues one, made in the background.
  Result<Launched> Launch(const registry::Deployed& fn);
  // The function's code or configuration changed, or it was deleted: its snapshot goes.
  void ForgetSnapshot(const std::string& function);
  // CRIU, the store and each function's snapshot state and restore decision (health).
  nlohmann::json SnapshotReport();

  // The function's code or configuration changed, or it was deleted: its snapshot and its zygote
  // go (a zygote never carries one revision's state to another).
  void ForgetFunction(const std::string& function);

  // Boots a spare Python zygote ahead of the first request (the C++ runtimes' spares boot, in
  // about a millisecond, once a function of theirs exists).
  Status WarmUp();
  // A function of this runtime family exists (deployed, or found at start-up): its spare
  // zygotes, or its stem cells, boot now in the background. A host without Node functions runs no Node.
  void Prepare(const std::string& family);
  // fn's code as the filesystem its instances mount (runtime/core/code_mounts.h), made ahead of
  // its first start, in the background.
  void PrepareCode(const registry::Deployed& fn);
  // Stops a runtime's zygotes, spare and bound: the next new instance of that runtime is a cold
  // start, and no spare boots until it. For a runtime with stem cells (nodejs) it drops those
  // and pauses their pool until that start.
  bool DropZygote(const std::string& family);
  std::vector<ZygoteInfo> Zygotes();
  // Stem cells per runtime family (health, capacity).
  std::map<std::string, StemCellCounts> StemCells();
  // Preforked instances (health, capacity).
  PreforkCounts Preforked();
  // Instances' /tmp areas made, emptied for reuse and discarded so far (health); all 0 with a tmpfs /tmp.
  TmpAreaPool::Counts TmpAreas() { return tmp_areas_ ? tmp_areas_->counts() : TmpAreaPool::Counts{}; }
  // Net namespaces made (both pools, and on the request path when the egress pool ran dry), and
  // those of ended instances reused, discarded and cached (health).
  struct NetnsReport {
    uint64_t made = 0;
    NetnsCounts reuse;
  };
  NetnsReport Netns();
  // The memory (MB) stem cells hold against the budget, and how much they may hold: the
  // scheduler's budget minus what instances reserve. The scheduler sets it after every start,
  // which also has the pools boot successors of the stem cells taken (stem_cells.h).
  uint64_t StandbyMemoryMb();
  void SetStandbyAllowance(uint64_t mb);
  // Boots a successor for every zygote that died (one dropped on purpose is not rebooted); returns
  // how many. The supervisor calls it in the background; an invocation never waits on a dead one.
  size_t RebootDeadZygotes();
  const sandbox::CgroupTree& cgroups() const { return *tree_; }
  uint64_t subtree_pids() const { return subtree_pids_; }

 private:
  explicit Launcher(LauncherOptions options) : options_(std::move(options)) {}
  Status PrepareSandboxFiles();
  // The limits on forklet's whole subtree: pids (from pid_max and the budget), and on v1 the
  // socket buffers of all instances together. Failures are logged: the host may not delegate.
  void LimitSubtree();
  uint64_t subtree_pids_ = 0, subtree_socket_bytes_ = 0;
  Status PrepareSnapshots();
  struct InstanceCgroup {
    std::unique_ptr<sandbox::Cgroup> cgroup;
    std::vector<int> procs;  // its cgroup.procs files, open for the child (the caller closes them)
  };
  // A pooled cgroup with these limits (timed as the stage "cgroup").
  Result<InstanceCgroup> AcquireCgroup(const sandbox::CgroupLimits& limits, Stages* stages);
  SnapshotPolicy SnapshotPolicyOf(const registry::FunctionConfig& cfg) const;
  // A new instance of fn forked from its runtime's zygote, started (INIT sent, ready awaited).
  // exec_runner: the child execs a fresh runner in its sandbox (a snapshot's source).
  Result<Launched> ForkAndStart(const registry::Deployed& fn, bool exec_runner);
  Result<Launched> RestoreInstance(const registry::Deployed& fn, const std::string& images);
  bool ChooseRestore(const std::string& function, SnapshotPolicy policy);
  // The function's snapshot restored, when it has one and the policy chooses it; nullopt: start
  // it another way (a failed restore is logged, counted and its snapshot removed).
  std::optional<Result<Launched>> TryRestore(const registry::Deployed& fn, SnapshotPolicy policy);
  // After a zygote or stem-cell start: its time for auto's decision; queues a snapshot if wanted.
  void RecordStart(const registry::Deployed& fn, SnapshotPolicy policy, bool snapshots,
                   const Result<Launched>& out);
  // Detects criu and proves it with a checkpoint and restore (snapshot thread): false when off.
  bool DetectCriu();
  void SnapshotLoop();
  Status TakeSnapshot(const registry::Deployed& fn, uint64_t change);
  // Spawns a zygote of the family into the zygotes' cgroup; the deleter reaps it.
  Result<ZygoteBank::Zygote> SpawnZygote(const std::string& family);
  // The runtime's shared fork server (a runtime with stem cells: its instances exec their
  // interpreter), booting one (a cold start) if none is alive.
  Result<ZygoteBank::Zygote> ZygoteFor(const std::string& family, bool* booted, Stages* stages);
  // What fn's new instance forks from: its own zygote (bank), or, for stem cells (fn null), the
  // runtime's fork server. retry: the last one died under a fork.
  void LearnFaultsFrom(Instance* instance, const std::shared_ptr<zygote::ZygoteProcess>& z,
                       const sandbox::ChildSpec& spec);
  // on_demand: a start waits for this fork; when fn's family has a cold-start fork server
  // (ColdExecFamily) and no zygote of fn is ready, the instance forks from that server (its child
  // execs the interpreter) and fn's own zygote boots once that start has ended: *banked is then
  // false.
  Result<ZygoteBank::Zygote> ForkSource(const std::string& family, const registry::FunctionConfig* fn,
                                        bool retry, bool* booted, Stages* stages, bool on_demand,
                                        bool* banked);

  // A new sandboxed child in a cgroup with these limits, not yet started: of fn's own zygote, or
  // (fn null) a stem cell of the family's fork server. code_fd: the code (a detached mount), or -1
  // for a stem cell; opt_fd: its layers for /opt (a detached mount), or -1. booted: the zygote had to boot (or reboot) for it. exec_runner: see ForkAndStart.
  struct Forked {
    std::unique_ptr<Instance> instance;
    uint32_t uid = 0, gid = 0;
    std::string veth;  // the host end of its eth0; empty: loopback only
  };
  // tmp_fd: fn's /tmp (TakeTmpArea), or -1 for a tmpfs.
  Result<Forked> ForkInstance(const std::string& family, const registry::FunctionConfig* fn,
                              const sandbox::CgroupLimits& limits,
                              int code_fd, bool exec_runner, bool* booted, Stages* stages,
                              int opt_fd = -1, int tmp_fd = -1, bool on_demand = false);
  // ForkInstance of fn with what its sandbox mounts: its code, its layers and (unless exec_runner:
  // a checkpointed instance keeps a tmpfs) its /tmp area. The one way a function's instance is
  // forked, on demand (ForkAndStart) or ahead of it (MakePreforked).
  Result<Forked> ForkDeployed(const registry::Deployed& fn, bool exec_runner, bool* booted, Stages* stages,
                              bool on_demand = false);
  // One instance of fn forked ahead of demand, its sandbox set up (the prefork pool's maker).
  Result<std::unique_ptr<Instance>> MakePreforked(const registry::Deployed& fn);
  // A start from a preforked instance of fn, or nullopt when none is ready (or it failed to start).
  std::optional<Result<Launched>> StartPreforked(const registry::Deployed& fn);
  // A stem cell of the family, booted (the stem-cell pool's maker).
  Result<StemCell> MakeStemCell(const std::string& family);
  // The family's stem-cell pool (made on first use), or null when the family has none.
  StemCellPool* StemCellsFor(const std::string& family);
  // Gives a stem cell to fn: its limits, its code, INIT. Fails (and the stem cell goes) when it
  // cannot take the function: the start is then cold.
  Status StartStemCell(const registry::Deployed& fn, const StemCell& cell, Launched* out);
  // A function's (or a stem cell's) limits from its memory size.
  sandbox::CgroupLimits LimitsFor(uint64_t memory_mb) const;
  Status StartInstance(const registry::FunctionConfig& cfg, Instance* instance, Launched* out);

  LauncherOptions options_;
  sandbox::SeccompProgram seccomp_;
  std::unique_ptr<sandbox::CgroupTree> tree_;
  std::unique_ptr<sandbox::CgroupPool> pool_;
  std::unique_ptr<NetnsPool> netns_;  // loopback-only namespaces
  std::shared_ptr<TmpAreaPool> tmp_areas_;  // null: /tmp is a tmpfs (tmp_pool_size 0, or the host cannot)
  // fn's /tmp as a detached mount (fd -1: the child mounts a tmpfs of its size), timed as the stage
  // "tmp_area" ("tmp_area_made" when none was ready). A failure is logged and falls back to tmpfs.
  // The instance keeps the lease (Instance::KeepTmp) so that its area is reused after it.
  TmpLease TakeTmpArea(const registry::FunctionConfig& fn, Stages* stages);
  std::atomic<uint64_t> tmp_fallbacks_{0};
  // A namespace for an instance with this network: a pooled one, or for egress one made now when
  // the pool ran dry (never a loopback-only one instead); fd -1 (none only): the clone makes one.
  // wait: off the request path, worth waiting for the pool's filler.
  // made_now: set when the egress pool ran dry and the namespace was made on this thread.
  Result<PooledNetns> TakeNetns(sandbox::net::NetworkMode mode, bool wait, bool* made_now = nullptr);
  Result<NetnsPool*> EgressPool();  // made on first use
  sandbox::net::EgressOptions EgressOptions() const;  // with the daemon's id
  std::mutex egress_mu_;
  std::unique_ptr<sandbox::net::EgressNetwork> egress_;
  std::unique_ptr<NetnsPool> egress_netns_;
  // Ended instances' namespaces by function version; null: none is reused (netns_reuse_per_function 0).
  std::shared_ptr<NetnsCache> netns_cache_;
  std::unique_ptr<sandbox::Cgroup> zygote_cgroup_;  // where zygotes live (own accounting, cleanup)
  // The template root, built once (by a native zygote, gone since): every zygote joins a copy of
  // this mount namespace instead of building its own. -1: they build their own.
  int template_ns_fd_ = -1;
  std::atomic<bool> join_failure_logged_{false};
  void BuildTemplateNamespace();
  std::vector<int> zygote_procs_fds_;
  void WarmerLoop();
  // Live, unreaped zygotes, one of which the warmer re-attaches to its own cgroup. A zygote's
  // pid leaves it under warm_mu_ before the zygote is reaped, so the warmer never writes a pid
  // that could be reused.
  std::unique_ptr<CodeMounts> code_mounts_;
  std::mutex warm_mu_;
  std::set<pid_t> warm_pids_;
  std::atomic<bool> stopping_{false};
  std::thread warmer_;
  std::string root_dir_, etc_dir_;

  std::mutex zygotes_mu_;  // held while booting one, so concurrent cold starts share a boot
  std::map<std::string, ZygoteBank::Zygote> zygotes_;  // runtimes with stem cells: one fork server
  std::map<std::string, uint64_t> forks_;
  std::atomic<uint64_t> next_uid_{0};
  // Snapshots: what was detected, the store, and per function its measurements and decision.
  std::unique_ptr<snapshot::Criu> criu_;  // set (under snap_mu_) once detected and self-tested
  std::atomic<bool> criu_ready_{false};  // criu_ passed its self-test: snapshots may be taken
  std::string criu_off_reason_;          // why there is no detection at all
  std::unique_ptr<snapshot::SnapshotStore> snapshots_;  // null: snapshots are off
  std::string restore_root_;  // mount points laid out like the template root, for criu --root
  struct SnapshotState {
    bool queued = false;  // a snapshot is being made
    uint64_t restores = 0, failures = 0;
    uint64_t dump_failures = 0;  // of this deployment: kMaxSnapshotFailures stop the attempts
    double restore_ms = 0, zygote_start_ms = 0, dump_ms = 0;  // moving averages (ms)
    std::string decision, last_error;
  };
  std::mutex snap_mu_;
  std::condition_variable snap_cv_;
  std::map<std::string, SnapshotState> snap_;
  std::map<std::string, uint64_t> changes_;  // ForgetSnapshot count per function
  std::deque<registry::Deployed> snapshot_queue_;
  std::thread snapshotter_;
  std::mutex stem_mu_;
  std::map<std::string, std::unique_ptr<StemCellPool>> stem_cells_;  // stopped before the zygotes go
  uint64_t standby_allowance_mb_ = UINT64_MAX;
  std::unique_ptr<ZygoteBank> bank_;  // every other runtime: a zygote per function
  std::unique_ptr<PreforkPool> preforks_;  // of the functions of bank_'s runtimes
  std::unique_ptr<ZygoteSupervisor> supervisor_;  // last: stopped first
};

}  // namespace forklet::core
