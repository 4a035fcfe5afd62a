// Finds this process's cgroup hierarchies and opens forklet's tree on the right backend.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_delegation.h"
#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_internal.h"
#include "sandbox/cgroup_lib.h"

namespace forklet::sandbox {
namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    size_t i = s.find(sep);
    out.push_back(s.substr(0, i));
    if (i == std::string_view::npos) return out;
    s.remove_prefix(i + 1);
  }
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      auto oct = [](char c) { return c >= '0' && c <= '7'; };
      if (oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
        out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct CgroupMount {
  bool v2 = false;
  std::vector<std::string_view> options;  // super options: v1 names its controllers here
  std::string root;                       // the cgroup path the mount shows at its mount point
  std::string mount_point;
};

std::vector<CgroupMount> ParseMounts(std::string_view mountinfo) {
  std::vector<CgroupMount> mounts;
  for (std::string_view line : Split(mountinfo, '\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    auto f = Split(line, ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (dash == f.end() || f.end() - dash < 4 || dash - f.begin() < 6) continue;
    std::string_view fstype = dash[1];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    CgroupMount m;
    m.v2 = fstype == "cgroup2";
    m.options = Split(dash[3], ',');
    m.root = Unescape(f[3]);
    m.mount_point = Unescape(f[4]);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

// The directory showing `path` through mount `m`, or "" when the mount does not reach it.
std::string DirThrough(const CgroupMount& m, const std::string& path) {
  if (m.root == "/") return path == "/" ? m.mount_point : m.mount_point + path;
  if (path == m.root) return m.mount_point;
  if (path.size() > m.root.size() && path.compare(0, m.root.size(), m.root) == 0 &&
      path[m.root.size()] == '/')
    return m.mount_point + path.substr(m.root.size());
  return {};
}

bool Mounts(const CgroupMount& m, const CgroupHierarchy& h) {
  if (m.v2 != h.v2) return false;
  return std::all_of(h.controllers.begin(), h.controllers.end(), [&](const std::string& c) {
    return std::find(m.options.begin(), m.options.end(), c) != m.options.end();
  });
}

}  // namespace

bool CgroupHierarchy::Has(std::string_view controller) const {
  return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

bool IsValidCgroupName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.size() < 200 &&
         name.find('/') == std::string_view::npos && name.find('\n') == std::string_view::npos;
}

std::vector<CgroupHierarchy> ParseCgroupHierarchies(std::string_view proc_self_cgroup,
                                                    std::string_view proc_self_mountinfo) {
  const auto mounts = ParseMounts(proc_self_mountinfo);
  std::vector<CgroupHierarchy> out;
  for (std::string_view line : Split(proc_self_cgroup, '\n')) {
    // hierarchy-id:controller-list:cgroup-path (the path itself may contain ':')
    size_t a = line.find(':');
    size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    CgroupHierarchy h;
    std::string_view id = line.substr(0, a), list = line.substr(a + 1, b - a - 1);
    h.v2 = id == "0" && list.empty();
    if (!list.empty())
      for (auto c : Split(list, ',')) h.controllers.emplace_back(c);
    h.cgroup_path = std::string(line.substr(b + 1));
    for (const auto& m : mounts) {
      if (!Mounts(m, h)) continue;
      if (std::string dir = DirThrough(m, h.cgroup_path); !dir.empty()) {
        h.own_dir = std::move(dir);
        break;
      }
    }
    out.push_back(std::move(h));
  }
  return out;
}

Result<std::vector<CgroupHierarchy>> DiscoverCgroupHierarchies() {
  auto cgroup = cgroupfs::Read("/proc/self/cgroup");
  if (!cgroup) return cgroup.error();
  auto mountinfo = cgroupfs::Read("/proc/self/mountinfo");
  if (!mountinfo) return mountinfo.error();
  return ParseCgroupHierarchies(*cgroup, *mountinfo);
}

const CgroupHierarchy* FindV1Hierarchy(const std::vector<CgroupHierarchy>& all,
                                       std::string_view controller) {
  for (const auto& h : all)
    if (!h.v2 && !h.own_dir.empty() && h.Has(controller)) return &h;
  return nullptr;
}

const CgroupHierarchy* FindV2Hierarchy(const std::vector<CgroupHierarchy>& all) {
  for (const auto& h : all)
    if (h.v2 && !h.own_dir.empty()) return &h;
  return nullptr;
}

uint64_t SubtreePidsMax(uint64_t pid_max, uint64_t budget_mb, uint64_t per_instance) {
  const uint64_t host_share = std::max<uint64_t>(pid_max / 4, 1024);
  const uint64_t ceiling = pid_max > host_share + 64 ? pid_max - host_share : 64;
  constexpr uint64_t kSmallestFunctionMb = 128, kZygotes = 4;
  const uint64_t wanted = (budget_mb / kSmallestFunctionMb + kZygotes) * per_instance;
  return std::min(ceiling, std::max<uint64_t>(wanted, 64));
}

uint64_t SubtreeSocketBytes(uint64_t tcp_mem_pressure_pages, uint64_t page_size) {
  return tcp_mem_pressure_pages / 2 * page_size;
}

Result<std::unique_ptr<CgroupTree>> OpenCgroupTree(const std::string& tag, CgroupVersion version) {
  if (tag.empty() || !IsValidCgroupName("forklet." + tag))
    return MakeError("open cgroup tree", "bad tag \"" + tag + "\"");
  auto all = DiscoverCgroupHierarchies();
  if (!all) return all.error();
  // Which version holds the memory controller: libcgroup's mount table says; /proc/self/cgroup
  // and mountinfo then give the directory of our own cgroup in each hierarchy (below a subtree
  // mount too, and in a controller-less cgroup2 mount, which libcgroup 2.0.2 does not list).
  bool v1_memory = FindV1Hierarchy(*all, "memory") != nullptr;
  if (auto mounts = cglib::Mounts(); mounts.ok())
    if (const cglib::ControllerMount* m = mounts->Find("memory"))
      v1_memory = v1_memory && !m->v2;
  if (version == CgroupVersion::kV1 || (version == CgroupVersion::kAuto && v1_memory)) {
    if (!v1_memory)
      return MakeError("open cgroup tree", "the memory controller is not mounted as cgroup v1");
    return OpenCgroupTreeV1(*all, tag);
  }
  const CgroupHierarchy* unified = FindV2Hierarchy(*all);
  if (unified == nullptr)
    return MakeError(
        "open cgroup tree",
        "no cgroup v2 hierarchy is mounted for this process (and no v1 memory controller)");
  CgroupHierarchy owner = *unified;  // below the delegated cgroup, when we entered its leaf
  ApplyDelegation(&owner.cgroup_path, &owner.own_dir);
  return OpenCgroupTreeV2(owner, tag);
}

}  // namespace forklet::sandbox
