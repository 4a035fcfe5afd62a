// Instance cgroups on cgroup v1: one directory in each of the memory, pids, cpu, cpuacct and
// (when mounted) freezer hierarchies, all with the same name below "<own cgroup>/forklet.<tag>".
// libcgroup creates the root, configures it and removes every cgroup; an instance's creation,
// limits, attach and counters stay hand-written: they are on the start path, where libcgroup
// measured 1.9x to 7x slower (bench/micro/cgroup_lib_bench.cc, docs/design.md "Cgroups").
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_internal.h"
#include "sandbox/cgroup_lib.h"

namespace forklet::sandbox {
namespace {

constexpr const char* kControllers[] = {"memory", "pids", "cpu", "cpuacct"};
constexpr size_t kNoFreezer = SIZE_MAX;
constexpr uint64_t kCpuPeriodUs = 100000;

// Index of each controller's hierarchy among the distinct directories (cpu and cpuacct are
// often mounted together, and then share one). The freezer is optional: kNoFreezer.
struct V1Layout {
  size_t memory = 0, pids = 0, cpu = 0, cpuacct = 0, freezer = kNoFreezer;
};

// Removal through libcgroup when it reaches the tree (off the start path: the scheduler's teardown
// thread; measured 1.3x rmdir), else rmdir.
cgroupfs::Remover Remover(const std::shared_ptr<const cglib::Reach>& lib) {
  if (!lib->on()) return nullptr;
  return [lib](const std::string& dir, size_t i) { return lib->RemoveBelow(dir, i); };
}

class CgroupV1 final : public Cgroup {
 public:
  CgroupV1(std::string name, std::vector<std::string> dirs, const V1Layout& at,
           std::shared_ptr<const cglib::Reach> lib)
      : name_(std::move(name)),
        dirs_(std::move(dirs)),
        lib_(std::move(lib)),
        // File paths are built once: SetLimits and ReadStats run on the invocation path.
        memory_limit_(dirs_[at.memory] + "/memory.limit_in_bytes"),
        memsw_limit_(dirs_[at.memory] + "/memory.memsw.limit_in_bytes"),
        tcp_limit_(dirs_[at.memory] + "/memory.kmem.tcp.limit_in_bytes"),
        memory_peak_(dirs_[at.memory] + "/memory.max_usage_in_bytes"),
        memory_usage_(dirs_[at.memory] + "/memory.usage_in_bytes"),
        oom_control_(dirs_[at.memory] + "/memory.oom_control"),
        pids_max_(dirs_[at.pids] + "/pids.max"),
        cpu_shares_(dirs_[at.cpu] + "/cpu.shares"),
        cpu_period_(dirs_[at.cpu] + "/cpu.cfs_period_us"),
        cpu_quota_(dirs_[at.cpu] + "/cpu.cfs_quota_us"),
        cpu_usage_(dirs_[at.cpuacct] + "/cpuacct.usage"),
        freezer_state_(at.freezer == kNoFreezer ? "" : dirs_[at.freezer] + "/freezer.state") {
    for (const auto& dir : dirs_) procs_.push_back(dir + "/cgroup.procs");
  }

  ~CgroupV1() override {
    if (!destroyed_) (void)Destroy();
  }

  const std::string& name() const override { return name_; }
  const std::vector<std::string>& paths() const override { return dirs_; }

  Status SetLimits(const CgroupLimits& limits) override {
    if (auto s = SetMemory(limits.memory_bytes); !s) return s;
    if (auto s = SetSocketMemory(limits.memory_bytes); !s) return s;
    if (auto s = cgroupfs::Write(pids_max_, cgroupfs::Decimal(limits.pids_max).view()); !s)
      return s;
    const uint32_t shares = std::clamp<uint32_t>(limits.cpu_weight, 2, 262144);
    return cgroupfs::Write(cpu_shares_, cgroupfs::Decimal(shares).view());
  }

  Status LimitCpu(uint32_t permille) override {
    if (permille == 0) return cgroupfs::Write(cpu_quota_, "-1");
    if (auto s = cgroupfs::Write(cpu_period_, cgroupfs::Decimal(kCpuPeriodUs).view()); !s) return s;
    const uint64_t quota = std::max<uint64_t>(1000, kCpuPeriodUs * permille / 1000);
    return cgroupfs::Write(cpu_quota_, cgroupfs::Decimal(quota).view());
  }

  // FROZEN only starts freezing (the state reads FREEZING until every task has stopped); nothing
  // here waits for it.
  Status Freeze() override {
    if (freezer_state_.empty()) return {};
    if (auto s = freezer_file_.Write("FROZEN"); !s) return s;
    frozen_ = true;
    return {};
  }

  Status Thaw() override {
    if (freezer_state_.empty() || !frozen_) return {};
    if (auto s = freezer_file_.Write("THAWED"); !s) return s;
    frozen_ = false;
    return {};
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
    // A frozen task takes SIGKILL only once thawed.
    if (auto s = Thaw(); !s) return s;
    freezer_file_.Close();
    if (auto s = cgroupfs::KillAndRemove(dirs_, /*use_kill_file=*/false, Remover(lib_)); !s)
      return s;
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

  // v1 keeps socket buffers out of memory.usage_in_bytes and does not charge them at all until
  // memory.kmem.tcp has a limit: 100 connections of a 128 MB instance once queued 918 MB in the
  // host's TCP memory. The kernel marks a socket for charging when it is created, so the limit
  // goes on while the cgroup is still empty (the pool's Acquire sets limits before the child
  // joins). The instance's socket buffers may then hold at most its memory size again.
  // (v2 charges socket memory to memory.current: memory.max bounds it, cgroup_v2.cc.)
  Status SetSocketMemory(uint64_t bytes) {
    int err = cgroupfs::WriteControl(tcp_limit_, cgroupfs::Decimal(bytes).view());
    if (err == 0) return {};
    return SysError("write " + std::to_string(bytes) + " to " + tcp_limit_, err);
  }

  const std::string name_;
  const std::vector<std::string> dirs_;
  const std::shared_ptr<const cglib::Reach> lib_;  // shared: an instance may outlive the tree
  const std::string memory_limit_, memsw_limit_, tcp_limit_, memory_peak_, memory_usage_, oom_control_;
  const std::string pids_max_, cpu_shares_, cpu_period_, cpu_quota_, cpu_usage_;
  const std::string freezer_state_;  // "" without a freezer hierarchy
  // Kept open: read or written on every invocation.
  cgroupfs::ControlFile peak_file_{memory_peak_}, cpu_file_{cpu_usage_}, freezer_file_{freezer_state_};
  bool frozen_ = false;
  std::vector<std::string> procs_;
  bool destroyed_ = false;
};

class CgroupTreeV1 final : public CgroupTree {
 public:
  CgroupTreeV1(std::vector<std::string> roots, V1Layout layout, std::string description,
               std::string anchor, std::shared_ptr<const cglib::Reach> lib)
      : roots_(std::move(roots)),
        layout_(layout),
        description_(std::move(description)),
        anchor_(std::move(anchor)),
        lib_(std::move(lib)) {}

  bool can_freeze() const override { return layout_.freezer != kNoFreezer; }

  // Once, at start: through libcgroup when it reaches the roots.
  Status LimitSubtreePids(uint64_t max) override {
    return SetOnRoot(layout_.pids, "pids", "pids.max", max);
  }

  Status LimitSubtreeSocketMemory(uint64_t bytes) override {
    return SetOnRoot(layout_.memory, "memory", "memory.kmem.tcp.limit_in_bytes", bytes);
  }

  Status WeighSubtreeCpu(uint32_t shares) override {
    return SetOnRoot(layout_.cpu, "cpu", "cpu.shares", std::clamp<uint32_t>(shares, 2, 262144));
  }

  const char* version() const override { return "v1"; }
  std::string root_description() const override { return description_; }

  Result<std::unique_ptr<Cgroup>> Create(const std::string& name) override {
    if (!IsValidCgroupName(name)) return Error{"create cgroup \"" + name + "\"", EINVAL, {}};
    std::vector<std::string> dirs;
    // By hand: on the start path when the pool is empty, and libcgroup's cgroup_create_cgroup
    // (a mkdir of every ancestor, then the leaf) measured 1.9x the plain mkdir.
    for (const auto& root : roots_) {
      std::string dir = root + "/" + name;
      if (auto s = cgroupfs::MakeDir(dir); !s) {
        for (const auto& made : dirs) rmdir(made.c_str());  // fresh and empty: plain rmdir
        return s.error();
      }
      dirs.push_back(std::move(dir));
    }
    return std::unique_ptr<Cgroup>(new CgroupV1(name, std::move(dirs), layout_, lib_));
  }

  Result<int> RemoveStale() override {
    return cgroupfs::RemoveDescendants(roots_, /*use_kill_file=*/false, Remover(lib_));
  }

  Status RemoveRoot() override {
    Status result;
    if (!anchor_.empty()) rmdir(anchor_.c_str());
    for (size_t i = 0; i < roots_.size(); ++i) {
      if (lib_->on()) {
        if (int err = lib_->RemoveBelow(roots_[i], i); err != 0 && result.ok())
          result = SysError("remove cgroup " + roots_[i], err);
      } else if (rmdir(roots_[i].c_str()) != 0 && errno != ENOENT && result.ok()) {
        result = SysError("rmdir " + roots_[i]);
      }
    }
    return result;
  }

 private:
  const std::vector<std::string> roots_;  // "<own dir>/forklet.<tag>", one per hierarchy
  const V1Layout layout_;
  const std::string description_;
  const std::string anchor_;  // "<freezer own dir>/forklet.<tag>.frozen", or ""
  const std::shared_ptr<const cglib::Reach> lib_;

  Status SetOnRoot(size_t index, const char* controller, const char* file, uint64_t value) {
    const cgroupfs::Decimal v(value);
    if (!lib_->on()) return cgroupfs::Write(roots_[index] + "/" + file, v.view());
    return cglib::Modify(lib_->where[index].rel, {{controller, file, std::string(v.view())}});
  }
};

// The v1 freezer turns a kernel static key on when the first cgroup of the host starts freezing
// and off when the last thaws: code patching on every CPU, ~150 us for each Freeze and Thaw of an
// instance when it is the only frozen one. An empty cgroup kept frozen for the tree's life keeps
// the key on, so an instance's freeze and thaw only walk its own tasks. (Idle instances keep it
// on most of the time anyway; the cost is a slow-path check in try_to_freeze for the host's tasks.)
std::string MakeFreezerAnchor(const CgroupHierarchy& freezer, const std::string& leaf) {
  std::string anchor = freezer.own_dir + "/" + leaf + ".frozen";
  if (mkdir(anchor.c_str(), 0755) != 0 && errno != EEXIST) return "";
  if (cgroupfs::WriteControl(anchor + "/freezer.state", "FROZEN") != 0) {
    rmdir(anchor.c_str());
    return "";
  }
  return anchor;
}

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
  // The freezer stops idle instances; a host without it runs them idle (can_freeze() says so).
  if (const CgroupHierarchy* h = FindV1Hierarchy(all, "freezer")) {
    auto it = std::find(used.begin(), used.end(), h);
    layout.freezer = static_cast<size_t>(it - used.begin());
    if (it == used.end()) used.push_back(h);
  }

  // libcgroup's mount table names each hierarchy by its mount point; the directory of our own
  // cgroup there (which /proc/self/cgroup and mountinfo give, a subtree mount included) is then a
  // path below it. A hierarchy it does not list leaves the whole tree to the hand-written calls.
  std::vector<std::string> parents;
  for (const CgroupHierarchy* h : used) parents.push_back(h->own_dir);
  auto lib = std::make_shared<cglib::Reach>(cglib::ReachRoots(parents, leaf));
  if (std::any_of(lib->where.begin(), lib->where.end(), [](const auto& w) { return w.v2; }))
    *lib = cglib::Reach{};
  std::vector<std::string> roots, described;
  for (size_t i = 0; i < used.size(); ++i) {
    const CgroupHierarchy* h = used[i];
    std::string root = h->own_dir + "/" + leaf;
    // An existing root is a crashed predecessor's (same tag): adopt it, RemoveStale cleans it.
    Status made = lib->on() ? cglib::Create(lib->where[i].rel, lib->where[i].controllers,
                                            /*exclusive=*/false)
                            : (mkdir(root.c_str(), 0755) != 0 && errno != EEXIST
                                   ? Status(SysError("mkdir " + root))
                                   : Status());
    if (!made) {
      for (size_t j = 0; j < roots.size(); ++j) rmdir(roots[j].c_str());  // fails if in use: fine
      return made.error();
    }
    roots.push_back(std::move(root));
    described.push_back(Join(h->controllers, ",") + ":" +
                        (h->cgroup_path == "/" ? "" : h->cgroup_path) + "/" + leaf);
  }
  std::string anchor;
  if (layout.freezer != kNoFreezer) anchor = MakeFreezerAnchor(*used[layout.freezer], leaf);
  return std::unique_ptr<CgroupTree>(
      new CgroupTreeV1(std::move(roots), layout, Join(described, " "), std::move(anchor),
                       std::move(lib)));
}

}  // namespace forklet::sandbox
