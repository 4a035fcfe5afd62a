// Makes new instances: picks or boots the runtime's zygote, prepares the sandbox spec and the
// cgroup, asks the zygote to fork, and waits for the instance to be ready.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/core/instance.h"
#include "runtime/registry/registry.h"
#include "sandbox/cgroup.h"
#include "sandbox/seccomp_policy.h"
#include "zygote/zygote_client.h"

namespace forklet::core {

struct LauncherOptions {
  std::string state_dir;       // sandbox/ below it holds the root mount point and the /etc
  std::string runners_dir;     // lang-runners/ as installed (python/forklet_zygote.py ...)
  std::string zygote_library;  // libforklet_zygote.so
  std::string python = "/usr/bin/python3";
  std::string cgroup_tag;      // forklet.<tag> below the daemon's cgroup
  size_t cgroup_pool_size = 8;
  uint64_t tmp_size_bytes = 512ull << 20;
  uint32_t pids_max = 1024;
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

  // Starts the zygote of every runtime ahead of the first request.
  Status WarmUp();
  // Stops a runtime's zygote: the next new instance of that runtime is a cold start.
  bool DropZygote(const std::string& family);
  std::vector<ZygoteInfo> Zygotes();
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
  std::string root_dir_, etc_dir_;

  std::mutex zygotes_mu_;  // held while booting one, so concurrent cold starts share a boot
  std::map<std::string, std::unique_ptr<zygote::ZygoteProcess>> zygotes_;
  std::map<std::string, uint64_t> forks_;
  std::atomic<uint64_t> next_uid_{0};
};

}  // namespace forklet::core
