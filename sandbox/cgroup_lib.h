// libcgroup (Debian 12's libcgroup2 2.0.2) behind one lock: its mount table kept current, and the
// cgroup operations forklet hands to it (which ones, and why not the others: docs/design.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sandbox/error.h"

namespace forklet::sandbox::cglib {

// How the host mounts cgroups, as libcgroup's mount table shows it.
enum class Mode { kNone, kV1, kV2, kHybrid };  // hybrid: v1 hierarchies beside a cgroup2 mount
const char* ModeName(Mode mode);                // "none", "v1", "v2", "hybrid"

struct ControllerMount {
  std::string controller;   // e.g. "memory"
  std::string mount_point;  // e.g. /sys/fs/cgroup/memory
  bool v2 = false;
};

struct MountTable {
  std::vector<ControllerMount> controllers;
  Mode mode = Mode::kNone;
  const ControllerMount* Find(const std::string& controller) const;
};

// libcgroup's table of mounted controllers. cgroup_init() reads /proc/mounts once; this runs it
// again whenever this process's mount table changed since (poll() on /proc/self/mounts reports
// each change), so a long-running daemon follows mounts and unmounts (a forked child watches its
// own table; a process that unshares its mount namespace after the first call does not see the
// new one's changes). Thread-safe: every call of
// this file holds one process-wide lock around libcgroup (its init rewrites global state).
// libcgroup 2.0.2 does not list a cgroup2 mount without controllers (this machine's
// /sys/fs/cgroup/unified shows only hugetlb), nor a mount's root below the hierarchy's root.
Result<MountTable> Mounts();

// Where libcgroup reaches the cgroup directory `dir`: its path below the mount point of the
// longest matching mount of `table`, and every controller mounted there (co-mounted cpu and
// cpuacct both). ENOENT when no mount of the table holds it.
struct Location {
  std::string rel;
  std::vector<std::string> controllers;
  bool v2 = false;
};
Result<Location> Locate(const MountTable& table, const std::string& dir);

// The cgroup at `rel` (a path below each controller's mount point, e.g.
// "process_api/44ca/forklet.ab12/p3") in the hierarchies holding `controllers`, all created by
// libcgroup (cgroup_create_cgroup, ownership left alone). libcgroup creates missing parents and
// accepts an existing directory; `exclusive` fails with EEXIST when the first one exists already.
// Only for v1 hierarchies: on v2, libcgroup 2.0.2 enables each controller in the
// cgroup.subtree_control of every ancestor up to the mount root, cgroups forklet does not own.
Status Create(const std::string& rel, const std::vector<std::string>& controllers, bool exclusive);

// Writes control files of that cgroup through cgroup_modify_cgroup, in the given order:
// {controller, {file, value}}.
struct Setting {
  std::string controller, file, value;
};
Status Modify(const std::string& rel, const std::vector<Setting>& settings);

// Removes the (empty) cgroup from the hierarchies of `controllers`: cgroup_delete_cgroup_ext with
// CGFLAG_DELETE_EMPTY_ONLY, so libcgroup never moves tasks into the parent (its default). A
// cgroup that is gone already counts as removed; one with tasks or children fails with EBUSY
// (libcgroup 2.0.2 itself reports success then: the directory is looked for afterwards).
Status Remove(const std::string& rel, const std::vector<std::string>& controllers);

// Where libcgroup reaches a cgroup tree's roots (one per hierarchy, same index), so that cgroups
// below them are removed through it. Empty `where` when some root is not in its mount table.
struct Reach {
  std::vector<std::string> roots;
  std::vector<Location> where;
  bool on() const { return !where.empty() && where.size() == roots.size(); }
  // The libcgroup path of `dir`, roots[i] or a directory below it.
  std::string Rel(const std::string& dir, size_t i) const;
  // Remove(Rel(dir, i)) as an errno (0: removed or gone), the shape cgroupfs::Remover wants.
  int RemoveBelow(const std::string& dir, size_t i) const;
};
// Locates each root's parent (which exists) and appends the roots' common last component.
Reach ReachRoots(const std::vector<std::string>& parents, const std::string& leaf);

// Moves the process/thread `tid` into the cgroup (cgroup_attach_task_pid: on v1 it writes the tid
// to each hierarchy's "tasks", which moves that one thread). For the benchmark only: forklet's
// child attaches itself, after fork, through pre-opened cgroup.procs fds (cgroup.h).
Status Attach(const std::string& rel, const std::vector<std::string>& controllers, int tid);

}  // namespace forklet::sandbox::cglib
