// Instance cgroups on cgroup v1: one directory in each of the memory, pids, cpu and cpuacct
// hierarchies, all with the same name below "<own cgroup>/forklet.<tag>".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_internal.h"

namespace forklet::sandbox {
namespace {

constexpr const char* kControllers[] = {"memory", "pids", "cpu", "cpuacct"};

// Index of each controller's hierarchy among the distinct directories (cpu and cpuacct are
// often mounted together, and then share one).
struct V1Layout {
  size_t memory = 0, pids = 0, cpu = 0, cpuacct = 0;
};

class CgroupV1 final : public Cgroup {
 public:
  CgroupV1(std::string name, std::vector<std::string> dirs, const V1Layout& at)
      : name_(std::move(name)),
        dirs_(std::move(dirs)),
        // File paths are built once: SetLimits and ReadStats run on the invocation path.
        memory_limit_(dirs_[at.memory] + "/memory.limit_in_bytes"),
        memsw_limit_(dirs_[at.memory] + "/memory.memsw.limit_in_bytes"),
        memory_peak_(dirs_[at.memory] + "/memory.max_usage_in_bytes"),
        memory_usage_(dirs_[at.memory] + "/memory.usage_in_bytes"),
        oom_control_(dirs_[at.memory] + "/memory.oom_control"),
        pids_max_(dirs_[at.pids] + "/pids.max"),
        cpu_shares_(dirs_[at.cpu] + "/cpu.shares"),
        cpu_usage_(dirs_[at.cpuacct] + "/cpuacct.usage") {
    for (const auto& dir : dirs_) procs_.push_back(dir + "/cgroup.procs");
  }

  ~CgroupV1() override {
    if (!destroyed_) (void)Destroy();
  }

  const std::string& name() const override { return name_; }
  const std::vector<std::string>& paths() const override { return dirs_; }

  Status SetLimits(const CgroupLimits& limits) override {
    if (auto s = SetMemory(limits.memory_bytes); !s) return s;
    if (auto s = cgroupfs::Write(pids_max_, cgroupfs::Decimal(limits.pids_max).view()); !s)
      return s;
    const uint32_t shares = std::clamp<uint32_t>(limits.cpu_weight, 2, 262144);
    return cgroupfs::Write(cpu_shares_, cgroupfs::Decimal(shares).view());
  }

  Result<std::vector<int>> OpenProcsFds() override {
    std::vector<int> fds;
    for (const auto& path : procs_) {
      int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        for (int f : fds) close(f);
        return SysError("open " + path, err);
      }
      fds.push_back(fd);
    }
    return fds;
  }

  Result<CgroupStats> ReadStats() override {
    CgroupStats st;
    auto peak = cgroupfs::ReadNumber(memory_peak_);
    if (!peak) return peak.error();
    auto current = cgroupfs::ReadNumber(memory_usage_);
    if (!current) return current.error();
    auto cpu = cgroupfs::ReadNumber(cpu_usage_);
    if (!cpu) return cpu.error();
    auto ooms = cgroupfs::ReadKeyed(oom_control_, "oom_kill");
    if (!ooms) return ooms.error();
    st.memory_peak_bytes = *peak;
    st.memory_current_bytes = *current;
    st.cpu_usage_ns = *cpu;
    st.oom_kills = *ooms;
    return st;
  }

  Status ResetPeak() override { return cgroupfs::Write(memory_peak_, "0"); }

  Result<CgroupStats> TakeUsage() override {
    CgroupStats st;
    auto peak = peak_file_.ReadNumber();
    if (!peak) return peak.error();
    auto cpu = cpu_file_.ReadNumber();
    if (!cpu) return cpu.error();
    st.memory_peak_bytes = *peak;
    st.cpu_usage_ns = *cpu;
    if (auto s = peak_file_.Write("0"); !s) return s.error();
    return st;
  }

  Result<std::vector<int>> Pids() override {
    // A task may sit in some hierarchies only (a half-done attach): report the union.
    std::vector<int> all;
    for (const auto& path : procs_) {
      auto pids = cgroupfs::ReadPids(path);
      if (!pids) return pids.error();
      all.insert(all.end(), pids->begin(), pids->end());
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
  }

  Status Destroy() override {
    if (destroyed_) return {};
    peak_file_.Close();
    cpu_file_.Close();
    if (auto s = cgroupfs::KillAndRemove(dirs_, /*use_kill_file=*/false); !s) return s;
    destroyed_ = true;
    return {};
  }

 private:
  // memsw (memory + swap) must stay >= the memory limit. On a fresh cgroup both are unlimited,
  // so the limit goes first; raising an existing limit above memsw fails with EINVAL, and then
  // memsw goes first.
  Status SetMemory(uint64_t bytes) {
    const cgroupfs::Decimal value(bytes);
    int err = cgroupfs::WriteControl(memory_limit_, value.view());
    if (err == 0) return SetMemsw(value);
    if (err != EINVAL)
      return SysError("write " + std::string(value.view()) + " to " + memory_limit_, err);
    if (auto s = SetMemsw(value); !s) return s;
    return cgroupfs::Write(memory_limit_, value.view());
  }

  // Absent without swap accounting (swapaccount=0): then the memory limit alone applies.
  Status SetMemsw(const cgroupfs::Decimal& value) {
    int err = cgroupfs::WriteControl(memsw_limit_, value.view());
    if (err == 0 || err == ENOENT) return {};
    return SysError("write " + std::string(value.view()) + " to " + memsw_limit_, err);
  }

  const std::string name_;
  const std::vector<std::string> dirs_;
  const std::string memory_limit_, memsw_limit_, memory_peak_, memory_usage_, oom_control_;
  const std::string pids_max_, cpu_shares_, cpu_usage_;
  cgroupfs::ControlFile peak_file_{memory_peak_}, cpu_file_{cpu_usage_};  // kept open: hot path
  std::vector<std::string> procs_;
  bool destroyed_ = false;
};

class CgroupTreeV1 final : public CgroupTree {
 public:
  CgroupTreeV1(std::vector<std::string> roots, V1Layout layout, std::string description)
      : roots_(std::move(roots)), layout_(layout), description_(std::move(description)) {}

  const char* version() const override { return "v1"; }
  std::string root_description() const override { return description_; }

  Result<std::unique_ptr<Cgroup>> Create(const std::string& name) override {
    if (!IsValidCgroupName(name)) return Error{"create cgroup \"" + name + "\"", EINVAL, {}};
    std::vector<std::string> dirs;
    for (const auto& root : roots_) {
      std::string dir = root + "/" + name;
      if (auto s = cgroupfs::MakeDir(dir); !s) {
        for (const auto& made : dirs) rmdir(made.c_str());  // fresh and empty: plain rmdir
        return s.error();
      }
      dirs.push_back(std::move(dir));
    }
    return std::unique_ptr<Cgroup>(new CgroupV1(name, std::move(dirs), layout_));
  }

  Result<int> RemoveStale() override {
    return cgroupfs::RemoveDescendants(roots_, /*use_kill_file=*/false);
  }

  Status RemoveRoot() override {
    Status result;
    for (const auto& root : roots_)
      if (rmdir(root.c_str()) != 0 && errno != ENOENT && result.ok())
        result = SysError("rmdir " + root);
    return result;
  }

 private:
  const std::vector<std::string> roots_;  // "<own dir>/forklet.<tag>", one per hierarchy
  const V1Layout layout_;
  const std::string description_;
};

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

Result<std::unique_ptr<CgroupTree>> OpenCgroupTreeV1(const std::vector<CgroupHierarchy>& all,
                                                     const std::string& tag) {
  const std::string leaf = "forklet." + tag;
  std::vector<const CgroupHierarchy*> used;  // distinct, memory first
  size_t index[std::size(kControllers)];
  for (size_t c = 0; c < std::size(kControllers); ++c) {
    const CgroupHierarchy* h = FindV1Hierarchy(all, kControllers[c]);
    if (h == nullptr)
      return MakeError("open cgroup v1 tree",
                       std::string("the ") + kControllers[c] + " controller is not mounted");
    auto it = std::find(used.begin(), used.end(), h);
    index[c] = static_cast<size_t>(it - used.begin());
    if (it == used.end()) used.push_back(h);
  }
  V1Layout layout{index[0], index[1], index[2], index[3]};

  std::vector<std::string> roots, described;
  for (const CgroupHierarchy* h : used) {
    std::string root = h->own_dir + "/" + leaf;
    // An existing root is a crashed predecessor's (same tag): adopt it, RemoveStale cleans it.
    if (mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) {
      Error e = SysError("mkdir " + root);
      for (size_t i = 0; i < roots.size(); ++i) rmdir(roots[i].c_str());  // fails if in use: fine
      return e;
    }
    roots.push_back(std::move(root));
    described.push_back(Join(h->controllers, ",") + ":" +
                        (h->cgroup_path == "/" ? "" : h->cgroup_path) + "/" + leaf);
  }
  return std::unique_ptr<CgroupTree>(
      new CgroupTreeV1(std::move(roots), layout, Join(described, " ")));
}

}  // namespace forklet::sandbox
