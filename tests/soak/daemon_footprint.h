// What a running forkletd holds on the host, read from /proc and the cgroup file systems: its
// descriptors, threads, memory, zombie children, cgroups and the processes in them, and the
// mounts in its namespace below its state dir. Leak checks compare two footprints.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace forklet::testing {

class Daemon;

struct DaemonFootprint {
  int fds = 0;
  int threads = 0;
  long rss_kb = 0;
  std::vector<pid_t> zombie_children;  // exited children the daemon has not reaped
  std::vector<std::string> cgroups;    // directories below forklet.<tag>, in every hierarchy
  std::vector<pid_t> cgroup_pids;      // processes in those cgroups (zygotes and instances)
  int state_dir_mounts = 0;            // mounts at or below the state dir, in the daemon's namespace
};

// The tag of the daemon's cgroups (forklet.<tag>), from its ready line.
std::string CgroupTag(const Daemon& d);
// daemon_pid 0 (a daemon that is gone): only the cgroups and the processes in them are read.
DaemonFootprint Footprint(pid_t daemon_pid, const std::string& tag, const std::string& state_dir);

// Processes in the daemon's cgroups running as uid (an instance and whatever it left behind).
std::vector<pid_t> ProcessesOfUid(const std::string& tag, uid_t uid);
// True when the process exists and is not a zombie.
bool Running(pid_t pid);

}  // namespace forklet::testing
