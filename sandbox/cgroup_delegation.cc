// systemd's cgroup v2 delegation (Delegate=yes): the daemon moves itself into a "supervisor" leaf
#include "sandbox/cgroup_delegation.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>
#include <mutex>

#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_internal.h"

namespace forklet::sandbox {
namespace {

constexpr const char* kWanted[] = {"memory", "pids", "cpu"};

// The supervisor leaf this process entered (its /proc/self/cgroup path); empty before.
std::mutex g_mu;
std::string g_supervisor_path;

bool HasWord(const std::string& list, const std::string& word) {
  size_t pos = 0;
  while ((pos = list.find(word, pos)) != std::string::npos) {
    size_t end = pos + word.size();
    bool starts = pos == 0 || list[pos - 1] == ' ';
    if (starts && (end == list.size() || list[end] == ' ' || list[end] == '\n')) return true;
    pos = end;
  }
  return false;
}

bool MarkedDelegated(const std::string& dir) {
  for (const char* name : {"trusted.delegate", "user.delegate"}) {
    char value[8] = {};
    ssize_t n = getxattr(dir.c_str(), name, value, sizeof(value) - 1);
    if (n > 0 && value[0] == '1') return true;
  }
  return false;
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  return slash == 0 ? "/" : path.substr(0, slash);
}

// This process's path in the v2 hierarchy ("0::PATH" in /proc/self/cgroup).
Result<std::string> OwnV2Path() {
  auto all = DiscoverCgroupHierarchies();
  if (!all) return all.error();
  const CgroupHierarchy* unified = FindV2Hierarchy(*all);
  if (!unified) return MakeError("cgroup delegation", "no cgroup v2 hierarchy is mounted");
  return unified->cgroup_path;
}

}  // namespace

Result<std::string> DelegatedV2CgroupDir() {
  auto all = DiscoverCgroupHierarchies();
  if (!all) return all.error();
  if (FindV1Hierarchy(*all, "memory") != nullptr) return std::string();  // the tree is v1
  const CgroupHierarchy* unified = FindV2Hierarchy(*all);
  if (!unified || !MarkedDelegated(unified->own_dir)) return std::string();
  return unified->own_dir;
}

Result<Delegation> EnterSupervisorCgroup(const std::string& delegated_dir) {
  const std::string leaf = delegated_dir + "/" + kSupervisorCgroup;
  if (mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) return SysError("mkdir " + leaf);
  // "0" is the writer: on v2 the whole process moves, every thread with it.
  if (auto s = cgroupfs::Write(leaf + "/cgroup.procs", "0"); !s) return s.error();

  Delegation d;
  d.delegated_dir = delegated_dir;
  auto available = cgroupfs::Read(delegated_dir + "/cgroup.controllers");
  if (!available) return available.error();
  std::string enable;
  for (const char* c : kWanted) {
    std::string& list = HasWord(*available, c) ? d.enabled : d.missing;
    list += (list.empty() ? "" : " ") + std::string(c);
    if (HasWord(*available, c)) enable += (enable.empty() ? "+" : " +") + std::string(c);
  }
  if (!enable.empty()) {
    if (int err = cgroupfs::WriteControl(delegated_dir + "/cgroup.subtree_control", enable);
        err != 0)
      return Error{"write \"" + enable + "\" to " + delegated_dir + "/cgroup.subtree_control", err,
                   err == EBUSY ? "a process other than forkletd is still in " + delegated_dir
                                : std::string()};
  }
  auto path = OwnV2Path();
  if (!path) return path.error();
  std::lock_guard lock(g_mu);
  g_supervisor_path = *path;
  return d;
}

void ApplyDelegation(std::string* cgroup_path, std::string* own_dir) {
  std::lock_guard lock(g_mu);
  if (g_supervisor_path.empty() || *cgroup_path != g_supervisor_path) return;
  *cgroup_path = Parent(*cgroup_path);
  *own_dir = Parent(*own_dir);
}

}  // namespace forklet::sandbox
