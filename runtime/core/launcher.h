// Makes new instances: picks or boots the runtime's zygote, prepares the sandbox spec and the
// cgroup, asks the zygote to fork, and waits for the instance to be ready.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/core/instance.h"
#include "runtime/core/zygote_supervisor.h"
#include "runtime/core/netns_pool.h"
#include "runtime/core/runners.h"
#include "runtime/registry/registry.h"
#include "sandbox/cgroup.h"
#include "sandbox/seccomp_policy.h"
#include "zygote/zygote_client.h"

namespace forklet::core {

struct LauncherOptions {
  std::string state_dir;       // sandbox/ below it holds the root mount point and the /etc
  RunnerPaths runners;         // each runtime family's zygote (runners.h)
  std::string cgroup_tag;      // forklet.<tag> below the daemon's cgroup
  size_t cgroup_pool_size = 8;
  uint64_t tmp_size_bytes = 512ull << 20;
  uint32_t pids_max = 1024;
  // Keeps the kernel's cgroup migration lock in its writer-ready state with a no-op migration
  // every few ms, so an instance's cgroup attach costs ~30 us instead of an RCU grace period
  // (~10 ms) after idle. The cost: one small write every 4 ms and a memory barrier in every
  // fork/exit on the host, the trade-off cgroup2's `favordynmods` makes.
  bool cgroup_warmer = true;
  size_t netns_pool_size = 4;  // net namespaces made ahead of time; 0: each clone makes its own
};

struct Launched {
  std::unique_ptr<Instance> instance;  // null when init failed (see init_error)
  StartKind start = StartKind::kZygote;
  Stages stages;
  double init_ms = 0;
  ChannelResult init_error;            // outcome != kSuccess when the function's init failed
};

// Identifies one deployment of a function: an instance only ever serves its own generation.
std::string Generation(const registry::FunctionConfig& config);

struct ZygoteInfo {
  std::string runtime;
  pid_t pid = 0;
  double boot_ms = 0;
  uint64_t forks = 0;
};

class Launcher {
 public:
  static Result<std::unique_ptr<Launcher>> Create(const LauncherOptions& options);
  ~Launcher();

  Result<Launched> Launch(const registry::Deployed& fn);

  // Starts the Python zygote ahead of the first request (the C++ zygotes boot in about a
  // millisecond: they start on first use).
  Status WarmUp();
  // Stops a runtime's zygote: the next new instance of that runtime is a cold start.
  bool DropZygote(const std::string& family);
  std::vector<ZygoteInfo> Zygotes();
  // Boots a successor for every zygote that died (one dropped on purpose is not rebooted); returns
  // how many. The supervisor calls it in the background; an invocation never waits on a dead one.
  size_t RebootDeadZygotes();
  const sandbox::CgroupTree& cgroups() const { return *tree_; }

 private:
  explicit Launcher(LauncherOptions options) : options_(std::move(options)) {}
  Status PrepareSandboxFiles();
  // The runtime's zygote, booting one (a cold start) if none is alive.
  Result<zygote::ZygoteProcess*> ZygoteFor(const std::string& family, bool* booted, Stages* stages);

  LauncherOptions options_;
  sandbox::SeccompProgram seccomp_;
  std::unique_ptr<sandbox::CgroupTree> tree_;
  std::unique_ptr<sandbox::CgroupPool> pool_;
  std::unique_ptr<NetnsPool> netns_;
  std::unique_ptr<sandbox::Cgroup> zygote_cgroup_;  // where zygotes live (own accounting, cleanup)
  std::vector<int> zygote_procs_fds_;
  void WarmerLoop();
  // A live, unreaped zygote to re-attach to its own cgroup (0: none). Cleared under warm_mu_
  // before any zygote is reaped, so the warmer never writes a pid that could be reused.
  std::mutex warm_mu_;
  pid_t warm_pid_ = 0;
  void SetWarmPid(pid_t pid);
  std::atomic<bool> stopping_{false};
  std::thread warmer_;
  std::string root_dir_, etc_dir_;

  std::mutex zygotes_mu_;  // held while booting one, so concurrent cold starts share a boot
  std::map<std::string, std::unique_ptr<zygote::ZygoteProcess>> zygotes_;
  std::map<std::string, uint64_t> forks_;
  std::atomic<uint64_t> next_uid_{0};
  std::unique_ptr<ZygoteSupervisor> supervisor_;  // last: stopped first
};

}  // namespace forklet::core
