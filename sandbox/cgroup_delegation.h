// systemd's cgroup v2 delegation (Delegate=yes): the daemon moves itself into a "supervisor" leaf
// of the cgroup delegated to it, so that this cgroup, left without processes of its own, may
// enable memory, pids and cpu for forklet's tree beside the leaf (v2's no-internal-processes rule).
#pragma once

#include <string>

#include "sandbox/error.h"

namespace forklet::sandbox {

inline constexpr const char* kSupervisorCgroup = "supervisor";

struct Delegation {
  std::string delegated_dir;  // e.g. /sys/fs/cgroup/system.slice/forkletd.service
  std::string enabled;        // wanted controllers now enabled below it, e.g. "memory pids cpu"
  std::string missing;        // wanted controllers its parent does not offer
};

// This process's v2 cgroup directory when forklet's tree will be on cgroup v2 (no v1 memory
// controller is mounted) and that cgroup was delegated to it: systemd marks a Delegate=yes cgroup
// with the xattr trusted.delegate (or user.delegate) "1". Empty otherwise.
Result<std::string> DelegatedV2CgroupDir();

// Moves this whole process into <delegated_dir>/supervisor (creating it), then enables in
// <delegated_dir>/cgroup.subtree_control the wanted controllers its cgroup.controllers offers.
// Call before any child process exists: one left in the delegated cgroup blocks the enabling.
// Afterwards OpenCgroupTree puts forklet.<tag> in the delegated cgroup, beside the leaf.
Result<Delegation> EnterSupervisorCgroup(const std::string& delegated_dir);

// For OpenCgroupTree: while this process sits in the supervisor leaf it entered, its v2 cgroup
// (path as /proc/self/cgroup shows it, and directory) is the delegated one, one level up.
void ApplyDelegation(std::string* cgroup_path, std::string* own_dir);

}  // namespace forklet::sandbox
