// CRIU as forklet uses it: detected once at start, then run (posix_spawn, never a fork of the
// daemon) to checkpoint an initialized instance and to restore copies of it.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/error.h"

namespace forklet::snapshot {

// What was found at start; reported in health.
struct CriuInfo {
  bool available = false;
  std::string path;       // the criu executable (or the set-up script's wrapper)
  std::string version;    // "4.2.1"
  std::string reason;     // why it is not available
  std::string self_test;  // the start-up checkpoint and restore of a trivial process: how it went
};

// One instance to checkpoint. It must be quiet: blocked reading its channel (fd 3), its log on
// fds 1 and 2, its own pid, mount, net, ipc, uts and cgroup namespaces.
struct DumpRequest {
  pid_t pid = 0;           // the instance: its pid namespace's init
  std::string images_dir;  // empty, private
  // Mount points whose mounts come from the host (binds: /usr, /etc, /var/task, /dev/null...).
  // The checkpoint names them; a restore says which host path each one binds again.
  std::vector<std::string> host_mounts;
  int timeout_ms = 30000;  // then criu is killed with its helpers, and the dump fails
};

// Where a restored copy's host-side resources come from.
struct RestoreRequest {
  std::string images_dir;
  std::string root_dir;  // a directory laid out like the template root (mount points only)
  std::map<std::string, std::string> mount_sources;  // mount point -> host path, for host_mounts
  int channel_fd = -1;   // replaces the checkpointed channel (fd 3)
  int log_fd = -1;       // replaces the checkpointed log pipe (fds 1, 2)
  int net_fd = -1;       // a fresh net namespace to restore into
  std::vector<int> cgroup_procs_fds;  // criu joins these before it makes the copy's processes
};

class Criu {
 public:
  // `path`: a criu executable; empty: the set-up script's (/opt/forklet/criu/bin/criu), then
  // $PATH. Usable when `criu check` passes and it really checkpoints and restores a trivial
  // process in `scratch_dir` (each step under a deadline): `criu check` alone is no proof (4.1.1
  // passes it on kernels where its dump hangs). Takes a few hundred ms: call it off the start path.
  // `preload`: a library for criu's LD_PRELOAD (libforklet_criu_shim.so), empty for none.
  static std::unique_ptr<Criu> Detect(const std::string& path, const std::string& preload,
                                      const std::string& scratch_dir);

  const CriuInfo& info() const { return info_; }
  bool available() const { return info_.available; }

  // Checkpoints the instance into images_dir and kills it (the caller reaps it).
  Status Dump(const DumpRequest& request);
  // Restores a copy as a child of the daemon (criu's sibling) in the cgroups of
  // cgroup_procs_fds. Returns its pid (the daemon's pid namespace).
  Result<pid_t> Restore(const RestoreRequest& request);

 private:
  // Runs criu with `args` and waits for it, killing it past timeout_ms. `keep` are dup'd to fds
  // 10, 11, ... in criu; it first joins the cgroups whose cgroup.procs fds are `join`. Fails
  // quoting criu's errors from `log`.
  Status Run(const std::vector<std::string>& args, const std::vector<int>& keep,
             const std::vector<int>& join, const std::string& log, int timeout_ms);
  // Checkpoints a `sleep` of the daemon's and restores it, in `dir`: "" when both worked.
  std::string SelfTest(const std::string& dir);

  CriuInfo info_;
  std::string preload_;
};

// The mount points of a live instance whose mounts come from the host: everything but its own
// tmpfs and proc mounts and what lies below /proc (masks: binds of those already named).
Result<std::vector<std::string>> HostMounts(pid_t pid);

// What a dump of the process tree rooted at `pid` will write, about: the resident memory of its
// processes (criu writes their private pages). Checked against the store's bound and the disk
// before a dump starts, so that a large function cannot fill the disk with its snapshot.
uint64_t EstimateDumpBytes(pid_t pid);

}  // namespace forklet::snapshot
