// Private to the cgroup library: what discovery finds and how the tree hands it to a backend.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/error.h"

namespace forklet::sandbox {

// One line of /proc/self/cgroup, resolved to a directory through /proc/self/mountinfo.
struct CgroupHierarchy {
  bool v2 = false;                       // the unified hierarchy ("0::<path>")
  std::vector<std::string> controllers;  // v1: e.g. {"cpu", "cpuacct"} or {"name=systemd"}
  std::string cgroup_path;               // this process's cgroup, e.g. "/process_api/44ca"
  std::string own_dir;                   // where it is mounted; empty when not mounted here
  bool Has(std::string_view controller) const;
};

// Pure parsing, so layouts of other hosts can be tested with their file contents.
std::vector<CgroupHierarchy> ParseCgroupHierarchies(std::string_view proc_self_cgroup,
                                                    std::string_view proc_self_mountinfo);
// The same for this process, from /proc/self.
Result<std::vector<CgroupHierarchy>> DiscoverCgroupHierarchies();

// The mounted v1 hierarchy holding `controller`, or the mounted v2 one; nullptr when absent.
const CgroupHierarchy* FindV1Hierarchy(const std::vector<CgroupHierarchy>& all,
                                       std::string_view controller);
const CgroupHierarchy* FindV2Hierarchy(const std::vector<CgroupHierarchy>& all);

// Backends: create (or adopt, after a crash) "<own_dir>/forklet.<tag>" and serve cgroups below it.
Result<std::unique_ptr<CgroupTree>> OpenCgroupTreeV1(const std::vector<CgroupHierarchy>& all,
                                                     const std::string& tag);
Result<std::unique_ptr<CgroupTree>> OpenCgroupTreeV2(const CgroupHierarchy& unified,
                                                     const std::string& tag);

// A cgroup directory name we accept: one path component, not "." or "..".
bool IsValidCgroupName(std::string_view name);

}  // namespace forklet::sandbox
